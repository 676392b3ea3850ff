/** The route table and the state every route handler shares. */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Dialect } from "./http.js";
import type { Rng, SimulatorFaults } from "./faults.js";
import type { PromptCache } from "./promptCache.js";
import type { SimProvider, StatsRecorder } from "./stats.js";
import type { VllmEngine } from "./vllm/engine.js";
import type { ReferenceAnswers } from "./reference.js";

/** pino-compatible: pass a pino logger, or anything with these four methods. */
export interface SimulatorLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Mutable state of one running simulator. */
export interface SimState {
  faults: SimulatorFaults;
  /** The fault PRNG (re-created when faults with a seed are set). */
  rng: Rng;
  stats: StatsRecorder;
  caches: Record<SimProvider, PromptCache>;
  vllm: VllmEngine;
  logger: SimulatorLogger;
  /** Reference mode: answers from a file, with noise (reference.ts). Absent: synthetic answers. */
  reference?: ReferenceAnswers | undefined;
}

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** Named groups of the route's RegExp path. */
  params: Record<string, string>;
  state: SimState;
  /** Sent back as `x-request-id` (OpenAI, vLLM, control) or `request-id` (Anthropic). */
  requestId: string;
  /** Aborted when the client goes away (or the server closes). */
  signal: AbortSignal;
}

export interface Route {
  method: "GET" | "POST" | "DELETE";
  /** Exact path, or a RegExp (anchor it; named groups become `params`). */
  path: string | RegExp;
  /** Key in stats.requests. @defaultValue `${method} ${path}` */
  name?: string;
  /** Error body shape for errors thrown by the handler. */
  dialect: Dialect;
  /**
   * Optional guard for routes that share a path (OpenAI and Anthropic both have GET /v1/models):
   * the first route whose path matches and whose `when` passes handles the request.
   */
  when?: (req: IncomingMessage) => boolean;
  handler(ctx: RouteContext): Promise<void> | void;
}

export function routeName(r: Route): string {
  return r.name ?? `${r.method} ${typeof r.path === "string" ? r.path : r.path.source}`;
}
