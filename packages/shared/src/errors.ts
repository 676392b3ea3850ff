/**
 * Named error classes shared by every Sieve process.
 * HTTP bodies for errors are always `{ error: { code, message, details? } }`.
 */
import type { ProviderName } from "./providerNames.js";

export type ErrorDetails = Record<string, unknown> | Array<Record<string, unknown>>;

/** An error that maps to an HTTP response. `field` names the offending input where there is one. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: ErrorDetails | undefined;
  constructor(status: number, code: string, message: string, details?: ErrorDetails) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
  toBody(): { error: { code: string; message: string; details?: ErrorDetails } } {
    return {
      error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) },
    };
  }
}

/** Statuses a provider call may be retried on (one constant). 529 is Anthropic "overloaded". */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 409, 429, 500, 502, 503, 504, 529]);


export type ProviderErrorKind =
  | "rate_limited" // 429: honour retryAfterMs
  | "server" // 5xx / 529
  | "timeout" // no answer in time / connection reset
  | "client" // other 4xx: fail fast with the provider's message
  | "invalid_output"; // the call answered but not with usable JSON

/** Every provider failure is normalised into this one shape. */
export class ProviderError extends Error {
  readonly provider: ProviderName;
  readonly kind: ProviderErrorKind;
  readonly status: number | undefined;
  readonly retryable: boolean;
  /** From `Retry-After` / `retry-after-ms`, when the provider sent one. */
  readonly retryAfterMs: number | undefined;
  constructor(opts: {
    provider: ProviderName;
    kind: ProviderErrorKind;
    message: string;
    status?: number;
    retryAfterMs?: number;
    cause?: unknown;
  }) {
    super(opts.message, { cause: opts.cause });
    this.name = "ProviderError";
    this.provider = opts.provider;
    this.kind = opts.kind;
    this.status = opts.status;
    this.retryAfterMs = opts.retryAfterMs;
    this.retryable = opts.kind === "rate_limited" || opts.kind === "server" || opts.kind === "timeout";
  }
}

/** Configuration that cannot work (missing provider, bad env). The message says what to set. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/**
 * A failed database statement in words safe to log or show: SQLSTATE, constraint, table, column and
 * the start of the statement (placeholders only). Never the parameters (drizzle's DrizzleQueryError
 * message ends with `params: ...`, every item text of an INSERT) nor the server's message, which
 * can quote a value ("invalid input syntax for type integer: ..."). Undefined for other errors.
 */
export function dbErrorSummary(value: unknown): string | undefined {
  let query: string | undefined;
  let db: Record<string, unknown> | undefined;
  let other: Error | undefined;
  for (let cur: unknown = value, depth = 0; cur && typeof cur === "object" && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    const c = cur as Record<string, unknown>;
    if (typeof c.query === "string" && "params" in c) query = c.query;
    else if (typeof c.code === "string" && /^[0-9A-Z]{5}$/.test(c.code) && typeof c.severity === "string") db = c;
    else if (cur instanceof Error && depth > 0 && !other) other = cur;
  }
  if (!query && !db) return undefined;
  const parts = ["database error"];
  if (db) {
    parts.push(String(db.code));
    for (const k of ["table", "column", "constraint", "routine"] as const) if (typeof db[k] === "string") parts.push(`${k}=${String(db[k])}`);
  } else if (other) {
    // Not a server answer (connection refused, pool closed): that message quotes no data.
    parts.push(`(${other.message.slice(0, 200)})`);
  }
  if (query) parts.push(`in "${query.replace(/\s+/g, " ").trim().slice(0, 80)}"`);
  return parts.join(" ");
}

/** Never use a raw `catch (e)` value: normalise it first (database errors lose their parameters, see dbErrorSummary). */
export function coerceError(value: unknown): Error {
  const summary = dbErrorSummary(value);
  if (summary !== undefined) {
    const safe = new Error(summary);
    safe.name = "DatabaseError";
    return safe;
  }
  if (value instanceof Error) return value;
  if (typeof value === "string") return new Error(value);
  try {
    return new Error(JSON.stringify(value));
  } catch {
    return new Error(String(value));
  }
}

export function assertExhaustive(value: never, message = "unexpected value"): never {
  throw new Error(`${message}: ${JSON.stringify(value)}`);
}
