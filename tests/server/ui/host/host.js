// A minimal MCP Apps host for the browser tests: the host side of @modelcontextprotocol/ext-apps
// (AppBridge over PostMessageTransport) renders a view in a sandboxed iframe under the
// restrictive default policy of the Apps specification, and forwards the view's tool calls to
// the test (window.hostCallTool, which calls the real server through the MCP SDK's client).
import { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";

// The policy a host applies when a ui:// resource declares no `csp`: nothing but inline code.
const DEFAULT_POLICY =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " +
  "img-src data:; media-src data:; connect-src 'none'; frame-src 'none'; object-src 'none'";

window.hostLog = [];

window.startHost = async function startHost({ html, toolArgs, toolResult, hostContext }) {
  const frame = document.createElement("iframe");
  frame.setAttribute("sandbox", "allow-scripts");
  frame.title = "wakecall tasks (MCP App)";
  document.getElementById("slot").append(frame);

  const bridge = new AppBridge(
    null,
    { name: "wakecall-test-host", version: "1.0.0" },
    { serverTools: {}, logging: {} },
    { hostContext },
  );
  bridge.oncalltool = async (params) => {
    window.hostLog.push({ call: params.name, arguments: params.arguments || {} });
    return await window.hostCallTool(params.name, params.arguments || {});
  };
  bridge.onsizechange = ({ height }) => {
    if (height) frame.style.height = `${height}px`;
  };
  bridge.onloggingmessage = (message) => window.hostLog.push({ log: message });
  bridge.oninitialized = async () => {
    window.hostLog.push({ initialized: true });
    await bridge.sendToolInput({ arguments: toolArgs });
    await bridge.sendToolResult(toolResult);
  };
  await bridge.connect(new PostMessageTransport(frame.contentWindow, frame.contentWindow));
  const meta = `<meta http-equiv="Content-Security-Policy" content="${DEFAULT_POLICY}">`;
  frame.srcdoc = html.replace("<head>", `<head>${meta}`);
  window.hostBridge = bridge;
};
