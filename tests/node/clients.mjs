// wakecall driven by a third-party MCP client: the TypeScript SDK's `client.request` with result
// schemas of our own, for the MCP Events (poll, stream) and Tasks extensions.
//
//   node clients.mjs <poll|stream|tasks> <server URL> <bearer token>
//
// Prints one JSON object: what the scenario saw (tests/e2e/test_typescript_client.py checks it).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { z } from "zod";

const [scenario, url, token] = process.argv.slice(2);

const Occurrence = z.object({
  eventId: z.string(),
  name: z.string(),
  timestamp: z.string(),
  data: z.record(z.string(), z.unknown()),
  cursor: z.string().optional(),
});
const PollResult = z.object({
  events: z.array(Occurrence),
  cursor: z.string().nullable(),
  truncated: z.boolean(),
  hasMore: z.boolean(),
  nextPollMs: z.number().int(),
});
const ListResult = z.object({
  events: z.array(
    z.object({
      name: z.string(),
      delivery: z.array(z.enum(["poll", "push", "webhook"])),
      inputSchema: z.record(z.string(), z.unknown()),
      payloadSchema: z.record(z.string(), z.unknown()),
    }),
  ),
});
const meta = z.object({ "io.modelcontextprotocol/subscriptionId": z.union([z.string(), z.number()]) });
const Active = z.object({
  method: z.literal("notifications/events/active"),
  params: z.object({ cursor: z.string().nullable(), truncated: z.boolean(), _meta: meta }),
});
const EventNote = z.object({
  method: z.literal("notifications/events/event"),
  params: Occurrence.extend({ _meta: meta }),
});
const Heartbeat = z.object({
  method: z.literal("notifications/events/heartbeat"),
  params: z.object({ cursor: z.string().nullable(), _meta: meta }),
});
const Task = z.object({
  taskId: z.string(),
  status: z.enum(["working", "input_required", "completed", "failed", "cancelled"]),
  statusMessage: z.string().optional(),
  createdAt: z.string(),
  lastUpdatedAt: z.string(),
  ttlMs: z.number().int().nullable(),
  pollIntervalMs: z.number().int().optional(),
});
const CreateTaskResult = Task.extend({ resultType: z.literal("task") });
const GetTaskResult = Task.extend({
  result: z
    .object({ content: z.array(z.unknown()), structuredContent: z.unknown(), isError: z.boolean() })
    .optional(),
  error: z.object({ code: z.number(), message: z.string() }).optional(),
});
const Empty = z.object({}).passthrough();

const COMPLETED = "task.run.completed";

async function connect(capabilities = {}) {
  const client = new Client({ name: "wakecall-ts-test", version: "1.0.0" }, { capabilities });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  return client;
}

async function onDemandTask(client, action = { type: "noop" }) {
  const made = await client.callTool({
    name: "create_task",
    arguments: { name: "ts job", schedule: "on demand", action },
  });
  if (made.isError) throw new Error(JSON.stringify(made.content));
  return made.structuredContent.id;
}

async function runNow(client, taskId) {
  const run = await client.callTool({ name: "run_now", arguments: { task_id: taskId } });
  if (run.isError) throw new Error(JSON.stringify(run.content));
  return run.structuredContent;
}

async function until(check, what) {
  for (let i = 0; i < 200; i++) {
    const found = await check();
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}

async function poll() {
  const client = await connect();
  const listed = await client.request({ method: "events/list", params: {} }, ListResult);
  const start = await client.request(
    { method: "events/poll", params: { name: COMPLETED, arguments: {}, cursor: null } },
    PollResult,
  );
  const taskId = await onDemandTask(client);
  await runNow(client, taskId);
  const answer = await until(async () => {
    const got = await client.request(
      { method: "events/poll", params: { name: COMPLETED, cursor: start.cursor, maxEvents: 10 } },
      PollResult,
    );
    return got.events.length ? got : null;
  }, "a polled event");
  await client.close();
  return { listed: listed.events.map((e) => e.name), start, answer, taskId };
}

async function stream() {
  const client = await connect();
  const seen = { active: [], events: [], heartbeats: [] };
  client.setNotificationHandler(Active, (n) => seen.active.push(n.params));
  client.setNotificationHandler(EventNote, (n) => seen.events.push(n.params));
  client.setNotificationHandler(Heartbeat, (n) => seen.heartbeats.push(n.params));
  const taskId = await onDemandTask(client);
  const abort = new AbortController();
  const streaming = client
    .request({ method: "events/stream", params: { name: COMPLETED, cursor: null } }, Empty, {
      signal: abort.signal,
      timeout: 60000,
    })
    .then(
      () => "ended",
      (error) => (abort.signal.aborted ? "cancelled" : `failed: ${error}`),
    );
  await until(async () => seen.active.length > 0, "the stream's confirmation");
  await runNow(client, taskId);
  await until(async () => seen.events.length > 0, "a pushed event");
  await until(async () => seen.heartbeats.length > 0, "a heartbeat");
  abort.abort();
  const ending = await streaming;
  const pushedBefore = seen.events.length;
  await runNow(client, taskId);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const pushedAfter = seen.events.length;
  await client.close();
  return { ...seen, ending, pushedBefore, pushedAfter, taskId };
}

async function tasks() {
  const client = await connect({ extensions: { "io.modelcontextprotocol/tasks": {} } });
  const taskId = await onDemandTask(client);
  const created = await client.request(
    { method: "tools/call", params: { name: "run_now", arguments: { task_id: taskId } } },
    CreateTaskResult,
  );
  const done = await until(async () => {
    const got = await client.request(
      { method: "tasks/get", params: { taskId: created.taskId } },
      GetTaskResult,
    );
    return got.status === "working" ? null : got;
  }, "the task to end");
  const sleeper = await onDemandTask(client, { type: "command", argv: ["sleep", "30"] });
  const long = await client.request(
    { method: "tools/call", params: { name: "run_now", arguments: { task_id: sleeper } } },
    CreateTaskResult,
  );
  await until(async () => {
    const got = await client.request({ method: "tasks/get", params: { taskId: long.taskId } }, GetTaskResult);
    return got.statusMessage && got.statusMessage.startsWith("running") ? got : null;
  }, "the long run to start");
  await client.request({ method: "tasks/cancel", params: { taskId: long.taskId } }, Empty);
  const cancelled = await until(async () => {
    const got = await client.request({ method: "tasks/get", params: { taskId: long.taskId } }, GetTaskResult);
    return got.status === "working" ? null : got;
  }, "the cancellation");
  let unknown = null;
  try {
    await client.request({ method: "tasks/get", params: { taskId: created.taskId + "x" } }, GetTaskResult);
  } catch (error) {
    unknown = { code: error.code, message: error.message };
  }
  await client.close();
  return { created, long, done, cancelled, unknown, taskId };
}

const scenarios = { poll, stream, tasks };
try {
  const saw = await scenarios[scenario]();
  process.stdout.write(JSON.stringify(saw) + "\n");
  process.exit(0);
} catch (error) {
  process.stderr.write(`${scenario}: ${error?.stack ?? error}\n`);
  process.exit(1);
}
