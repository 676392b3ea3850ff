/**
 * Runs one batch request through the SAME route handler a realtime call goes through
 * (`POST /v1/chat/completions`, `POST /v1/messages`), in-process: same validation, answer
 * generator, item faults, poison marker, prompt cache and token usage. Only the request-level
 * faults (latency, timeout, 429, 5xx) are switched off: a batch request has no HTTP call of its own;
 * per-request failures come from the batch knobs instead.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { coerceError } from "@sieve/shared/errors";
import { errorBody, SimError, statusOf, type Dialect } from "../http.js";
import type { RouteContext, SimState } from "../types.js";

export interface InternalResponse {
  status: number;
  /** The JSON body the handler sent (a success or an error body in the dialect's shape). */
  body: unknown;
  /** The id the handler would have sent as x-request-id / request-id. */
  requestId: string;
}

/** Captures what a handler writes with sendJson (writeHead + end). */
class CapturedResponse {
  statusCode = 200;
  headersSent = false;
  text = "";
  setHeader(): this {
    return this;
  }
  writeHead(status: number): this {
    this.statusCode = status;
    this.headersSent = true;
    return this;
  }
  end(chunk?: unknown): this {
    if (chunk !== undefined) this.text += String(chunk);
    this.headersSent = true;
    return this;
  }
  on(): this {
    return this;
  }
}

/** The realtime faults with the request-level ones off (item faults and truncation stay). */
function batchFaults(state: SimState): SimState {
  return { ...state, faults: { ...state.faults, latencyMs: 0, latencyJitterMs: 0, rate429: 0, rate5xx: 0, rateTimeout: 0 } };
}

/** A never-aborted signal: batch requests are not cancelled mid-answer. */
const NEVER = new AbortController().signal;

export async function invokeHandler(
  handler: (ctx: RouteContext) => Promise<void> | void,
  opts: { state: SimState; body: unknown; path: string; headers: Record<string, string>; dialect: Dialect },
): Promise<InternalResponse> {
  const requestId = `req_${randomUUID().replace(/-/g, "")}`;
  const req = Object.assign(Readable.from([Buffer.from(JSON.stringify(opts.body))]), {
    method: "POST",
    url: opts.path,
    headers: { "content-type": "application/json", ...opts.headers },
  }) as unknown as IncomingMessage;
  const res = new CapturedResponse();
  const ctx: RouteContext = {
    req,
    res: res as unknown as ServerResponse,
    url: new URL(opts.path, "http://simulator.invalid"),
    params: {},
    state: batchFaults(opts.state),
    requestId,
    signal: NEVER,
  };
  try {
    await handler(ctx);
  } catch (e) {
    const err = e instanceof SimError ? e : new SimError("server", `Sieve simulator internal error: ${coerceError(e).message}`);
    return { status: statusOf(err, opts.dialect), body: errorBody(err, opts.dialect, requestId), requestId };
  }
  let body: unknown;
  try {
    body = JSON.parse(res.text);
  } catch {
    body = { error: { message: "the simulated handler sent no JSON body", type: "server_error" } };
    return { status: 500, body, requestId };
  }
  return { status: res.statusCode, body, requestId };
}
