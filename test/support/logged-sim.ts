/**
 * The provider SIMULATOR (tools/simulator, a test tool) behind a recording proxy, as its own
 * process: the proxy notes every generation request (who sent it, a hash of each item text, the
 * status and the `x-request-id` the simulator answered with), so a test or the chaos bench can
 * tell which items reached "the LLM" more than once and which calls the ledger (`llm_calls`) missed.
 * A request whose client went away is still carried to its end upstream: a provider bills it.
 *   node --import tsx test/support/logged-sim.ts --host 127.0.0.1 --port 4010 [--socket /tmp/sim.sock]
 *     [--latency-ms 200 --jitter-ms 600]
 * GET /_log: the summary; POST /_log/reset: forget. Everything else goes to the simulator.
 */
import { createHash } from "node:crypto";
import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import { rmSync } from "node:fs";
import { parseArgs } from "node:util";
import { startSimulator } from "@sieve/simulator";

const { values } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    socket: { type: "string" },
    "latency-ms": { type: "string", default: "0" },
    "jitter-ms": { type: "string", default: "0" },
  },
});

interface Entry {
  remote: string;
  items: string[];
  status: number;
  requestId?: string;
  done: boolean;
  clientGone: boolean;
}

/** What GET /_log answers. */
export interface SimLog {
  /** Generation requests received (every attempt). */
  requests: number;
  /**
   * Per client address: requests, those not answered yet, the answered ones' request ids, items
   * sent, and texts this client itself sent more than once.
   */
  byRemote: Record<string, { requests: number; inflight: number; requestIds: string[]; itemsSent: number; textsResent: number }>;
  statuses: Record<string, number>;
  /** `x-request-id` of every answered generation request. */
  requestIds: string[];
  /** Requests whose client disconnected before the answer (a killed or cut-off worker). */
  clientGone: number;
  /** Item texts in generation requests (every attempt) and how many distinct texts that was. */
  itemsSent: number;
  distinctTexts: number;
  /** Texts sent more than once: sum over texts of (times sent - 1). */
  textsResent: number;
}

const MAX_ENTRIES = 500_000;
let entries: Entry[] = [];

const sim = await startSimulator({ port: 0, host: "127.0.0.1", faults: { latencyMs: Number(values["latency-ms"]), latencyJitterMs: Number(values["jitter-ms"]) } });
const upstream = new URL(sim.url);

/** Item texts of a chat/messages body: the user prompt holds one JSON object per line (packages/shared/src/prompts). */
function itemHashes(body: unknown): string[] {
  const out: string[] = [];
  const visit = (v: unknown): void => {
    if (typeof v === "string") {
      for (const line of v.split("\n")) {
        if (!line.startsWith('{"id":')) continue;
        try {
          const o = JSON.parse(line) as { text?: unknown };
          if (typeof o.text === "string") out.push(createHash("sha1").update(o.text).digest("base64").slice(0, 16));
        } catch {
          // not an item line
        }
      }
    } else if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === "object") Object.values(v).forEach(visit);
  };
  visit((body as { messages?: unknown })?.messages);
  return out;
}

function summary(): SimLog {
  const byRemote: SimLog["byRemote"] = {};
  const statuses: Record<string, number> = {};
  const texts = new Map<string, number>();
  const requestIds: string[] = [];
  let clientGone = 0;
  let itemsSent = 0;
  const perRemoteTexts = new Map<string, Set<string>>();
  for (const e of entries) {
    const r = (byRemote[e.remote] ??= { requests: 0, inflight: 0, requestIds: [], itemsSent: 0, textsResent: 0 });
    r.requests++;
    if (!e.done) r.inflight++;
    if (e.requestId) r.requestIds.push(e.requestId);
    statuses[String(e.status)] = (statuses[String(e.status)] ?? 0) + 1;
    if (e.requestId) requestIds.push(e.requestId);
    if (e.clientGone) clientGone++;
    // Answered or still being answered: the provider did (or is doing) the work.
    if (e.status === 200 || e.status === 0) {
      const mine = perRemoteTexts.get(e.remote) ?? new Set<string>();
      perRemoteTexts.set(e.remote, mine);
      for (const h of e.items) {
        texts.set(h, (texts.get(h) ?? 0) + 1);
        if (mine.has(h)) r.textsResent++;
        mine.add(h);
      }
      itemsSent += e.items.length;
      r.itemsSent += e.items.length;
    }
  }
  let textsResent = 0;
  for (const n of texts.values()) textsResent += n - 1;
  return { requests: entries.length, byRemote, statuses, requestIds, clientGone, itemsSent, distinctTexts: texts.size, textsResent };
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url ?? "/";
  if (path.startsWith("/_log")) {
    if (req.method === "POST") entries = [];
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(summary()));
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    let entry: Entry | undefined;
    if (req.method === "POST" && /\/chat\/completions$|\/messages$/.test(path.split("?")[0]!)) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString("utf8"));
      } catch {
        parsed = undefined;
      }
      entry = { remote: (req.socket.remoteAddress ?? "?").replace(/^::ffff:/, ""), items: itemHashes(parsed), status: 0, done: false, clientGone: false };
      if (entries.length < MAX_ENTRIES) entries.push(entry);
      const e = entry;
      if (res.destroyed) e.clientGone = true;
      res.on("close", () => {
        if (!res.writableFinished) e.clientGone = true;
      });
    }
    const up = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path, headers: { ...req.headers, host: upstream.host } },
      (ur) => {
        if (entry) {
          entry.status = ur.statusCode ?? 0;
          const id = ur.headers["x-request-id"];
          if (typeof id === "string") entry.requestId = id;
        }
        if (!res.destroyed) res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.on("data", (c: Buffer) => {
          if (!res.destroyed) res.write(c);
        });
        ur.on("end", () => {
          if (entry) entry.done = true;
          if (!res.destroyed) res.end();
        });
      },
    );
    up.on("error", () => {
      if (entry) entry.done = true;
      if (!res.destroyed) res.destroy();
    });
    up.end(body);
  });
}

const server = createServer(handle);
await new Promise<void>((r) => server.listen(Number(values.port), values.host, () => r()));
if (values.socket) {
  rmSync(values.socket, { force: true });
  const unixServer = createServer(handle);
  await new Promise<void>((r) => unixServer.listen(values.socket!, () => r()));
}
const a = server.address();
console.log(JSON.stringify({ ready: true, port: typeof a === "object" && a ? a.port : 0 }));
