/**
 * HTTP plumbing shared by every route: body reading, JSON replies, and errors rendered in the
 * wire shape of the API being imitated (each SDK parses its own provider's error body).
 */
import type { IncomingMessage, ServerResponse } from "node:http";

/** Which provider's error body (and request-id header) a route speaks. `sim` is the control API. */
export type Dialect = "openai" | "anthropic" | "vllm" | "sim";

export type SimErrorKind =
  | "invalid_request"
  | "authentication"
  | "not_found"
  | "rate_limited"
  | "server"
  | "overloaded"
  | "payload_too_large";

/** An error a route handler throws; the server renders it in the route's dialect. */
export class SimError extends Error {
  readonly kind: SimErrorKind;
  /** Overrides the status the dialect would pick for `kind`. */
  readonly status: number | undefined;
  /** OpenAI `error.param`. */
  readonly param: string | null;
  /** OpenAI `error.code`. */
  readonly code: string | null;
  readonly headers: Record<string, string>;
  constructor(
    kind: SimErrorKind,
    message: string,
    opts: { status?: number; param?: string; code?: string; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = "SimError";
    this.kind = kind;
    this.status = opts.status;
    this.param = opts.param ?? null;
    this.code = opts.code ?? null;
    this.headers = opts.headers ?? {};
  }
}

const DEFAULT_STATUS: Record<SimErrorKind, number> = {
  invalid_request: 400,
  authentication: 401,
  not_found: 404,
  payload_too_large: 413,
  rate_limited: 429,
  server: 500,
  overloaded: 529,
};

export function statusOf(err: SimError, dialect: Dialect): number {
  if (err.status !== undefined) return err.status;
  // Only Anthropic has 529; the OpenAI-style APIs say "overloaded" with a 503.
  if (err.kind === "overloaded" && dialect !== "anthropic") return 503;
  return DEFAULT_STATUS[err.kind];
}

const ANTHROPIC_TYPES: Record<SimErrorKind, string> = {
  invalid_request: "invalid_request_error",
  authentication: "authentication_error",
  not_found: "not_found_error",
  payload_too_large: "request_too_large",
  rate_limited: "rate_limit_error",
  server: "api_error",
  overloaded: "overloaded_error",
};

const OPENAI_TYPES: Record<SimErrorKind, string> = {
  invalid_request: "invalid_request_error",
  authentication: "invalid_request_error",
  not_found: "invalid_request_error",
  payload_too_large: "invalid_request_error",
  rate_limited: "requests",
  server: "server_error",
  overloaded: "server_error",
};

// vLLM (>= 0.10) answers `{ error: { message, type, param, code } }` with the Python exception
// name as type and the HTTP status as code.
const VLLM_TYPES: Record<number, string> = {
  400: "BadRequestError",
  401: "Unauthorized",
  404: "NotFoundError",
  413: "BadRequestError",
  429: "TooManyRequests",
  500: "InternalServerError",
  503: "ServiceUnavailable",
};

/** The error body in the dialect's wire shape. */
export function errorBody(err: SimError, dialect: Dialect, requestId: string): unknown {
  const status = statusOf(err, dialect);
  switch (dialect) {
    case "openai":
      return { error: { message: err.message, type: OPENAI_TYPES[err.kind], param: err.param, code: err.code } };
    case "vllm":
      return { error: { message: err.message, type: VLLM_TYPES[status] ?? "InternalServerError", param: err.param, code: status } };
    case "anthropic":
      return { type: "error", error: { type: ANTHROPIC_TYPES[err.kind], message: err.message }, request_id: requestId };
    case "sim":
      return { error: { code: err.code ?? err.kind, message: err.message } };
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, contentType: string): void {
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: ServerResponse, err: SimError, dialect: Dialect, requestId: string): void {
  sendJson(res, statusOf(err, dialect), errorBody(err, dialect, requestId), err.headers);
}

/** Largest request body accepted, in bytes (Anthropic's Messages limit is 32 MB). */
export const MAX_BODY_BYTES = 32 * 1024 * 1024;

export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) throw new SimError("payload_too_large", `request body exceeds ${limit} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/** Reads a JSON object body; a 400 in the route's dialect when it is not one. */
export async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const raw = (await readBody(req)).toString("utf8");
  let parsed: unknown;
  try {
    parsed = raw.length === 0 ? {} : JSON.parse(raw);
  } catch {
    throw new SimError("invalid_request", "request body is not valid JSON");
  }
  if (!isRecord(parsed)) throw new SimError("invalid_request", "request body must be a JSON object");
  return parsed;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A header's single value (Node joins repeated headers; we only need the first). */
export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
