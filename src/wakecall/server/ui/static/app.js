// The MCP App side of the view (MCP Apps, io.modelcontextprotocol/ui, protocol 2026-01-26),
// written from the specification: JSON-RPC 2.0 over postMessage with the host. The view reads
// through the host by calling the server's tools (show_tasks, pause, resume, run_now,
// redeliver); it reaches nothing else.
"use strict";

(function () {
  const PROTOCOL = "2026-01-26";
  const TOOL = "show_tasks";
  const WAIT_SECONDS = 25;
  const host = window.parent;

  class Bridge {
    constructor() {
      this.nextId = 1;
      this.waiting = new Map();
      this.handlers = new Map();
      window.addEventListener("message", (event) => this.receive(event));
    }

    post(message) {
      host.postMessage({ jsonrpc: "2.0", ...message }, "*");
    }

    request(method, params) {
      const id = this.nextId++;
      return new Promise((resolve, reject) => {
        this.waiting.set(id, { resolve, reject });
        this.post({ id, method, params });
      });
    }

    notify(method, params) {
      this.post({ method, params: params || {} });
    }

    on(method, handler) {
      this.handlers.set(method, handler);
    }

    receive(event) {
      if (event.source !== host) return;
      const message = event.data;
      if (!message || message.jsonrpc !== "2.0") return;
      if (message.method === undefined && this.waiting.has(message.id)) {
        const { resolve, reject } = this.waiting.get(message.id);
        this.waiting.delete(message.id);
        if (message.error) reject(new Error(message.error.message || "the host refused"));
        else resolve(message.result);
        return;
      }
      const handler = message.method && this.handlers.get(message.method);
      if (message.id === undefined) {
        if (handler) handler(message.params || {});
        return;
      }
      if (!handler) {
        this.post({ id: message.id, error: { code: -32601, message: `no method ${message.method}` } });
        return;
      }
      Promise.resolve()
        .then(() => handler(message.params || {}))
        .then((result) => this.post({ id: message.id, result: result || {} }))
        .catch((err) => this.post({ id: message.id, error: { code: -32000, message: String(err) } }));
    }
  }

  function applyContext(context, view) {
    if (!context) return;
    if (context.theme) document.documentElement.dataset.theme = context.theme;
    const variables = context.styles && context.styles.variables;
    if (variables) {
      for (const [name, value] of Object.entries(variables)) {
        if (value && name.startsWith("--")) document.documentElement.style.setProperty(name, value);
      }
    }
    if ((context.timeZone || context.locale) && view) view.setViewer(context.timeZone, context.locale);
  }

  function toolText(result) {
    return (result.content || []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
  }

  class AppSource {
    constructor(bridge) {
      this.bridge = bridge;
      this.view = null;
      this.context = null;
      this.lastSize = "";
      this.watching = false;
    }

    zone() {
      return (this.context && this.context.timeZone)
        || Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    }

    async call(name, args) {
      const result = await this.bridge.request("tools/call", { name, arguments: args });
      if (result.isError) throw new Error(toolText(result) || `${name} failed`);
      return result;
    }

    async load(taskId) {
      const result = await this.call(TOOL, taskId ? { task_id: taskId } : {});
      return this.boardOf(result);
    }

    boardOf(result) {
      if (result.structuredContent && Array.isArray(result.structuredContent.tasks)) {
        return result.structuredContent;
      }
      // A host that called the tool without Apps support got text only: show it as it is.
      const fallback = document.getElementById("fallback");
      fallback.textContent = toolText(result);
      fallback.hidden = false;
      throw new Error("this host gave the view no data; the text answer is shown instead");
    }

    act(kind, id) {
      const args = kind === "redeliver" ? { delivery_id: id } : { task_id: id };
      return this.call(kind, args);
    }

    // Ask show_tasks to answer when there is news after the board's cursor, and show it.
    async follow() {
      if (this.watching || !this.view.board) return;
      this.watching = true;
      const live = document.getElementById("live");
      while (this.watching) {
        const board = this.view.board;
        if (!board) break;
        try {
          const args = { after: board.cursor, wait: WAIT_SECONDS };
          if (this.view.selected) args.task_id = this.view.selected;
          live.textContent = "Live";
          live.classList.add("on");
          const fresh = this.boardOf(await this.call(TOOL, args));
          if (fresh.cursor !== board.cursor) this.view.news(fresh);
        } catch (err) {
          live.textContent = "Paused";
          live.classList.remove("on");
          await new Promise((resolve) => setTimeout(resolve, 5000));
        }
      }
    }

    rendered() {
      const root = document.documentElement;
      const size = `${Math.ceil(root.scrollWidth)}x${Math.ceil(root.scrollHeight)}`;
      if (size !== this.lastSize) {
        this.lastSize = size;
        this.bridge.notify("ui/notifications/size-changed", {
          width: Math.ceil(root.scrollWidth), height: Math.ceil(root.scrollHeight),
        });
      }
      this.follow();
    }

    watch(view) {
      this.view = view;
      document.getElementById("sign-out").hidden = true;
      const bridge = this.bridge;
      let shown = false;
      bridge.on("ui/notifications/tool-input", (params) => {
        const args = params.arguments || {};
        if (args.task_id) view.selected = args.task_id;
      });
      bridge.on("ui/notifications/tool-result", (result) => {
        if (result.isError) { view.toast(toolText(result), true); return; }
        try {
          const board = this.boardOf(result);
          shown = true;
          view.render(board);
        } catch (err) {
          view.toast(err.message, true);
        }
      });
      bridge.on("ui/notifications/tool-cancelled", () => view.toast("The call was cancelled.", true));
      bridge.on("ui/notifications/host-context-changed", (context) => {
        this.context = { ...(this.context || {}), ...context };
        applyContext(context, view);
      });
      bridge.on("ui/resource-teardown", () => { this.watching = false; return {}; });
      bridge.on("ping", () => ({}));
      new ResizeObserver(() => this.rendered()).observe(document.body);

      bridge.request("ui/initialize", {
        protocolVersion: PROTOCOL,
        appInfo: { name: "wakecall-tasks", version: "1" },
        appCapabilities: { availableDisplayModes: ["inline", "fullscreen"] },
      }).then((answer) => {
        this.context = (answer && answer.hostContext) || {};
        applyContext(this.context, view);
        bridge.notify("ui/notifications/initialized", {});
        // The host sends the tool's result next; if it never does, read the view ourselves.
        setTimeout(() => { if (!shown && !view.board) view.refresh(); }, 3000);
      }).catch((err) => view.toast(`The host did not start the view: ${err.message}`, true));
    }
  }

  window.WakecallView.start(new AppSource(new Bridge()));
})();
