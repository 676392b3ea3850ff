/**
 * The simulator's HTTP server: a route table (providers + control API), fault state, stats.
 * THIS IS A TEST TOOL: every response carries `x-sieve-simulator: 1`.
 *
 * To add routes (e.g. OpenAI Files/Batches, Anthropic Message Batches): write a module exporting
 * `Route[]` and append it to BUILTIN_ROUTES, or pass `routes` to startSimulator.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { coerceError } from "@sieve/shared/errors";
import { anthropicRoutes } from "./anthropic/index.js";
import { batchRoutes, batchStateOf, initBatchState, type BatchKnobs, type BatchStats } from "./batch/index.js";
import { createRng, SimulatorFaults } from "./faults.js";
import { header, readJsonObject, sendError, sendJson, SimError, type Dialect } from "./http.js";
import { openaiRoutes } from "./openai/index.js";
import { PromptCache } from "./promptCache.js";
import { StatsRecorder, type SimulatorStats } from "./stats.js";
import { routeName, type Route, type SimState, type SimulatorLogger } from "./types.js";
import { VllmEngine, type EngineState, type VllmOptions } from "./vllm/engine.js";
import { z } from "zod";

/** `POST /_sim/vllm`: lifecycle knobs of the simulated vLLM server. */
export const VllmControl = z
  .object({
    /** Restart: every /vllm route answers 503 ("loading") for this many seconds. */
    restart: z.object({ loadingS: z.number().min(0) }).strict().optional(),
    /** Crash: in-flight requests lose their connection; down (connections reset) for downS, then loading for loadingS. */
    crash: z.object({ downS: z.number().min(0), loadingS: z.number().min(0) }).strict().optional(),
    /** Every step costs this many times more (1 = normal). */
    slowdown: z.number().min(0.01).max(1000).optional(),
    /** Frozen for this many seconds: no route answers, running requests make no progress. */
    hang: z.object({ seconds: z.number().min(0) }).strict().optional(),
  })
  .strict();
export type VllmControl = z.infer<typeof VllmControl>;
import { vllmRoutes } from "./vllm/routes.js";
import type { ReferenceAnswers } from "./reference.js";

export interface StartSimulatorOptions {
  /** TCP port; 0 picks a free one. @defaultValue 0 */
  port?: number;
  /** Interface to listen on. @defaultValue "127.0.0.1" */
  host?: string;
  /** Initial fault knobs. @defaultValue {} (no faults) */
  faults?: SimulatorFaults;
  /** pino-compatible logger. @defaultValue silent */
  logger?: SimulatorLogger;
  /** The simulated vLLM server's knobs. */
  vllm?: VllmOptions;
  /** Extra routes, matched before the built-in ones. */
  routes?: Route[];
  /** Initial knobs of the simulated batch APIs (src/batch/state.ts). @defaultValue {} */
  batch?: BatchKnobs;
  /** Reference mode: answer from these known answers, with their noise (src/reference.ts). @defaultValue synthetic answers */
  answers?: ReferenceAnswers;
}

export interface Simulator {
  /** `http://127.0.0.1:PORT`, no trailing slash. OpenAI SDK: `${url}/v1`; Anthropic SDK: `url`; vLLM: `${url}/vllm/v1`. */
  url: string;
  /** Replaces every fault knob (validated; throws on a rate outside 0..1). A seed restarts the PRNG. */
  setFaults(f: SimulatorFaults): void;
  getFaults(): SimulatorFaults;
  stats(): SimulatorStats;
  /** Zeroes stats and vLLM counters; prompt caches are kept (so a warm-up can precede a measurement). */
  resetStats(): void;
  /** Forgets every cached prompt prefix (next requests are cache misses). */
  clearPromptCaches(): void;
  /** Replaces every batch knob (validated; a seed restarts the batch PRNG). Same as `POST /_sim/batch`. */
  setBatchKnobs(k: BatchKnobs): void;
  getBatchKnobs(): BatchKnobs;
  /** Batch counters (files uploaded, batches created/ended by status, requests processed); zeroed by resetStats. */
  batchStats(): BatchStats;
  /** Moves the batch clock forward by `ms` (same as `POST /_sim/batch/clock`): steps batches through their phases. */
  advanceBatchClock(ms: number): void;
  /** vLLM lifecycle knobs (same as `POST /_sim/vllm`): a restart, a crash, a slowdown factor. */
  vllmControl(cmd: VllmControl): void;
  /** The vLLM engine's state and gauges (same as `GET /_sim/vllm`). */
  vllmStatus(): { state: EngineState; running: number; waiting: number; kvCacheUsage: number; slowdown: number };
  /** Stops listening and drops open connections (including requests held by the timeout fault). */
  close(): Promise<void>;
}

const silentLogger: SimulatorLogger = { debug() {}, info() {}, warn() {}, error() {} };

function controlRoutes(sim: () => Simulator, listRoutes: () => readonly Route[]): Route[] {
  return [
    {
      method: "GET",
      path: "/_sim",
      dialect: "sim",
      handler: (ctx) =>
        sendJson(ctx.res, 200, {
          name: "sieve-provider-simulator",
          testTool: true,
          note: "A local stand-in for OpenAI, Anthropic and vLLM. Not a real provider: answers are synthetic.",
          routes: listRoutes().map((r) => `${routeName(r)}${r.when ? " (guarded)" : ""}`),
        }),
    },
    { method: "GET", path: "/_sim/faults", dialect: "sim", handler: (ctx) => sendJson(ctx.res, 200, { faults: sim().getFaults() }) },
    {
      method: "POST",
      path: "/_sim/faults",
      dialect: "sim",
      async handler(ctx) {
        const parsed = SimulatorFaults.safeParse(await readJsonObject(ctx.req));
        if (!parsed.success) {
          const msg = parsed.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; ");
          throw new SimError("invalid_request", msg, { code: "invalid_faults" });
        }
        sim().setFaults(parsed.data);
        sendJson(ctx.res, 200, { faults: sim().getFaults() });
      },
    },
    { method: "GET", path: "/_sim/vllm", dialect: "sim", handler: (ctx) => sendJson(ctx.res, 200, sim().vllmStatus()) },
    {
      method: "POST",
      path: "/_sim/vllm",
      dialect: "sim",
      async handler(ctx) {
        const parsed = VllmControl.safeParse(await readJsonObject(ctx.req));
        if (!parsed.success) {
          const msg = parsed.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; ");
          throw new SimError("invalid_request", msg, { code: "invalid_vllm_control" });
        }
        sim().vllmControl(parsed.data);
        sendJson(ctx.res, 200, sim().vllmStatus());
      },
    },
    { method: "GET", path: "/_sim/stats", dialect: "sim", handler: (ctx) => sendJson(ctx.res, 200, sim().stats()) },
    {
      method: "POST",
      path: "/_sim/reset",
      dialect: "sim",
      handler(ctx) {
        sim().resetStats();
        sendJson(ctx.res, 200, { ok: true });
      },
    },
    {
      method: "POST",
      path: "/_sim/clear-caches",
      dialect: "sim",
      handler(ctx) {
        sim().clearPromptCaches();
        sendJson(ctx.res, 200, { ok: true });
      },
    },
  ];
}

/** Provider routes, in match order (Anthropic first: its GET /v1/models is guarded by a header). */
export const BUILTIN_ROUTES: readonly Route[] = [...anthropicRoutes, ...openaiRoutes, ...vllmRoutes, ...batchRoutes];

function matchRoute(routes: readonly Route[], req: IncomingMessage, path: string): { route: Route; params: Record<string, string> } | undefined {
  for (const route of routes) {
    if (route.method !== req.method) continue;
    let params: Record<string, string> = {};
    if (typeof route.path === "string") {
      if (route.path !== path) continue;
    } else {
      const m = route.path.exec(path);
      if (!m) continue;
      params = { ...(m.groups ?? {}) };
    }
    if (route.when && !route.when(req)) continue;
    return { route, params };
  }
  return undefined;
}

/** Error dialect for a request no route matched. */
function dialectForPath(req: IncomingMessage, path: string): Dialect {
  if (path.startsWith("/vllm/")) return "vllm";
  if (path.startsWith("/_sim")) return "sim";
  if (path.startsWith("/v1/messages") || header(req, "anthropic-version") !== undefined) return "anthropic";
  return "openai";
}

export async function startSimulator(opts: StartSimulatorOptions = {}): Promise<Simulator> {
  const logger = opts.logger ?? silentLogger;
  const initial = SimulatorFaults.parse(opts.faults ?? {});
  const state: SimState = {
    faults: initial,
    rng: createRng(initial.seed),
    stats: new StatsRecorder(),
    caches: { openai: new PromptCache(), anthropic: new PromptCache(), vllm: new PromptCache() },
    vllm: new VllmEngine(opts.vllm),
    logger,
    reference: opts.answers,
  };
  initBatchState(state, opts.batch);
  let simulator: Simulator | undefined;
  const routes: Route[] = [];
  routes.push(...controlRoutes(() => simulator!, () => routes), ...(opts.routes ?? []), ...BUILTIN_ROUTES);

  async function dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    res.setHeader("x-sieve-simulator", "1");
    const requestId = `req_${randomUUID().replace(/-/g, "")}`;
    const url = new URL(req.url ?? "/", "http://simulator.invalid");
    const found = matchRoute(routes, req, url.pathname);
    const dialect = found?.route.dialect ?? dialectForPath(req, url.pathname);
    const name = found ? routeName(found.route) : "unmatched";
    res.setHeader(dialect === "anthropic" ? "request-id" : "x-request-id", requestId);
    state.stats.request(name);
    const abort = new AbortController();
    res.on("close", () => abort.abort());
    res.on("finish", () => {
      state.stats.status(res.statusCode);
      logger.debug({ route: name, status: res.statusCode, ms: Math.round(performance.now() - started) }, "simulator request");
    });
    try {
      if (!found) throw new SimError("not_found", `The Sieve simulator has no route ${req.method} ${url.pathname}`);
      await found.route.handler({ req, res, url, params: found.params, state, requestId, signal: abort.signal });
    } catch (e) {
      let err: SimError;
      if (e instanceof SimError) err = e;
      else {
        const cause = coerceError(e);
        logger.error({ route: name, err: cause.message }, "simulator handler failed");
        err = new SimError("server", `Sieve simulator internal error: ${cause.message}`);
      }
      if (res.headersSent) res.destroy();
      else if (!abort.signal.aborted) sendError(res, err, dialect, requestId);
    }
  }

  const server = createServer((req, res) => void dispatch(req, res));
  const host = opts.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  const url = `http://${urlHost}:${port}`;

  const sim: Simulator = {
    url,
    setFaults(f) {
      const parsed = SimulatorFaults.parse(f);
      state.faults = parsed;
      if (parsed.seed !== undefined) state.rng = createRng(parsed.seed);
      logger.info({ faults: parsed }, "simulator faults set");
    },
    getFaults: () => ({ ...state.faults }),
    stats: () => state.stats.snapshot(),
    resetStats() {
      state.stats.reset();
      state.vllm.resetCounters();
      batchStateOf(state).resetStats();
    },
    clearPromptCaches() {
      for (const c of Object.values(state.caches)) c.clear();
    },
    setBatchKnobs(k) {
      batchStateOf(state).setKnobs(k);
      logger.info({ batch: batchStateOf(state).knobs }, "simulator batch knobs set");
    },
    getBatchKnobs: () => ({ ...batchStateOf(state).knobs }),
    batchStats: () => structuredClone(batchStateOf(state).stats),
    advanceBatchClock(ms) {
      if (!(ms >= 0)) throw new RangeError("advanceBatchClock: ms must be >= 0");
      batchStateOf(state).clockOffsetMs += ms;
    },
    vllmControl(cmd) {
      const c = VllmControl.parse(cmd);
      if (c.slowdown !== undefined) state.vllm.setSlowdown(c.slowdown);
      if (c.hang) state.vllm.hang(c.hang.seconds);
      if (c.crash) state.vllm.crash(c.crash.downS, c.crash.loadingS);
      else if (c.restart) state.vllm.restart(c.restart.loadingS);
      logger.info({ vllm: c }, "simulator vLLM control");
    },
    vllmStatus: () => ({
      state: state.vllm.state,
      running: state.vllm.running,
      waiting: state.vllm.waiting,
      kvCacheUsage: state.vllm.scheduler.kvUsage,
      slowdown: state.vllm.slowdown,
    }),
    close: () =>
      new Promise<void>((resolve, reject) => {
        state.vllm.scheduler.crash();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
  simulator = sim;
  logger.info({ url, vllmModel: state.vllm.model, faults: state.faults }, "Sieve provider SIMULATOR listening (a test tool, not a real provider)");
  return sim;
}
