/**
 * Normalises every failure of a provider call (OpenAI / Anthropic SDK errors, fetch and socket
 * errors, aborts) into one `ProviderError`. Both SDKs are Stainless-generated and share the same
 * error shape (`status`, `headers`, `error`), so this matches on shape, not on one SDK's classes.
 *
 * Retries are Sieve's job (BullMQ), never the SDK's: clients are built with `maxRetries: 0`, and
 * `retryAfterMs` carries the provider's `Retry-After` to `worker.rateLimit(ms)`.
 */
// Subpath import: the package root also loads the db, redis and queue modules.
import { ProviderError, RETRYABLE_STATUSES, coerceError } from "@sieve/shared/errors";
import type { ProviderName } from "@sieve/shared/providerNames";

/**
 * The caller's `AbortSignal` fired (worker shutdown, lock lost): not the provider's fault. Kind
 * "timeout" keeps it retryable (the item goes back to the queue); `instanceof CallAbortedError`
 * (or `isCallAborted`) tells it apart from a real timeout. `cause` is the SDK error, `reason` the
 * signal's reason.
 */
export class CallAbortedError extends ProviderError {
  readonly reason: unknown;
  constructor(provider: ProviderName, reason: unknown, cause: unknown) {
    const why = reason instanceof Error ? reason.message : typeof reason === "string" ? reason : "";
    super({ provider, kind: "timeout", message: `${provider} call aborted by the caller${why ? `: ${why}` : ""}`, cause });
    this.name = "CallAbortedError";
    this.reason = reason;
  }
}

export function isCallAborted(e: unknown): e is CallAbortedError {
  return e instanceof CallAbortedError;
}

/** What the call site knows about why a call may have been cut short. */
export interface ErrorContext {
  /** The caller's signal (shutdown). When it is aborted, the error is a `CallAbortedError`. */
  callerSignal?: AbortSignal | undefined;
  /** Sieve's own per-call deadline. When it fired, the error is a timeout whatever the SDK says. */
  deadlineSignal?: AbortSignal | undefined;
  /** Per-call timeout, in ms, for the message. */
  timeoutMs?: number | undefined;
  /** Redacted from every message, whatever else the redaction patterns catch. */
  apiKey?: string | undefined;
}

/** Socket/DNS error codes (node + undici) that mean "the connection failed": retryable as a timeout. */
const CONNECTION_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);

/**
 * `retry-after-ms` (OpenAI, non-standard, milliseconds) wins over `retry-after` (seconds or an
 * HTTP date, RFC 9110 §10.2.3). Returns undefined when absent or unparseable.
 */
export function parseRetryAfterMs(headers: HeadersLike | undefined, now: number = Date.now()): number | undefined {
  if (!headers) return undefined;
  const ms = header(headers, "retry-after-ms");
  if (ms !== undefined && ms.trim() !== "") {
    const n = Number(ms);
    if (Number.isFinite(n) && n >= 0) return Math.ceil(n);
  }
  const ra = header(headers, "retry-after");
  if (ra === undefined || ra.trim() === "") return undefined;
  const secs = Number(ra);
  if (Number.isFinite(secs)) return secs >= 0 ? Math.ceil(secs * 1000) : undefined;
  const date = Date.parse(ra);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

export type HeadersLike = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeadersLike, name: string): string | undefined {
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined;
  const rec = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(rec).find((k) => k.toLowerCase() === name);
  const v = key === undefined ? undefined : rec[key];
  return Array.isArray(v) ? v[0] : v;
}

/** Removes API keys and bearer tokens from a message. */
export function redactSecrets(text: string, apiKey?: string): string {
  let out = text;
  if (apiKey && apiKey.length >= 4) out = out.split(apiKey).join("[redacted]");
  return out
    .replace(/\bBearer\s+[^\s"',]+/gi, "Bearer [redacted]")
    .replace(/\bsk-[A-Za-z0-9_*\-.]{4,}/g, "sk-[redacted]");
}

/** The provider's own error message from an SDK error body: OpenAI `error.message`, Anthropic `error.error.message`. */
function providerMessage(e: Record<string, unknown>): string | undefined {
  const apiMessage = e.apiMessage; // @anthropic-ai/sdk >= 1.x
  if (typeof apiMessage === "string" && apiMessage) return apiMessage;
  const body = e.error;
  if (body && typeof body === "object") {
    const b = body as { message?: unknown; error?: { message?: unknown } };
    // openai: APIError.error is the inner `error` object; anthropic: the whole body.
    if (typeof b.error?.message === "string") return b.error.message;
    if (typeof b.message === "string") return b.message;
  }
  return undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}

/** Walks `cause` links (fetch wraps socket errors: TypeError("fetch failed", { cause: SocketError })). */
function causeChain(e: unknown): unknown[] {
  const out: unknown[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 6 && cur !== undefined && cur !== null; i++) {
    out.push(cur);
    cur = isRecord(cur) ? cur.cause : undefined;
  }
  return out;
}

function isTimeoutLike(e: unknown): boolean {
  return causeChain(e).some((c) => {
    if (!isRecord(c)) return false;
    const name = typeof c.name === "string" ? c.name : "";
    const ctor = (c as { constructor?: { name?: string } }).constructor?.name ?? "";
    return name === "TimeoutError" || ctor === "APIConnectionTimeoutError" || name === "APIConnectionTimeoutError";
  });
}

function isConnectionLike(e: unknown): boolean {
  return causeChain(e).some((c) => {
    if (!isRecord(c)) return false;
    if (typeof c.code === "string" && CONNECTION_CODES.has(c.code)) return true;
    const name = typeof c.name === "string" ? c.name : "";
    const ctor = (c as { constructor?: { name?: string } }).constructor?.name ?? "";
    if (name === "AbortError" || ctor === "APIConnectionError" || name === "APIConnectionError") return true;
    // undici: the body stream was cut ("terminated") or fetch could not connect ("fetch failed").
    return c instanceof TypeError && /^(terminated|fetch failed)$/.test(String(c.message));
  });
}

/**
 * Redacts secrets in place in the message and stack of every error of the cause chain: the
 * ProviderError keeps the SDK error as `cause`, and pino's err serializer prints causes' messages.
 */
function scrubCauses(err: unknown, apiKey: string | undefined): void {
  for (const c of causeChain(err)) {
    if (!(c instanceof Error)) continue;
    try {
      const message = redactSecrets(c.message, apiKey);
      if (message !== c.message) c.message = message;
      if (c.stack) {
        const stack = redactSecrets(c.stack, apiKey);
        if (stack !== c.stack) c.stack = stack;
      }
    } catch {
      // A frozen error: nothing we can do, the ProviderError's own message is clean.
    }
  }
}

/** Normalises any thrown value of a provider call into a `ProviderError`. Never throws. */
export function toProviderError(provider: ProviderName, err: unknown, ctx: ErrorContext = {}): ProviderError {
  if (err instanceof ProviderError) return err;
  scrubCauses(err, ctx.apiKey);
  const redact = (s: string) => redactSecrets(s, ctx.apiKey);

  // Order matters: an abort by the caller or by our deadline surfaces from the SDK as
  // APIUserAbortError / AbortError, which says nothing about WHY it was aborted.
  if (ctx.callerSignal?.aborted) return new CallAbortedError(provider, ctx.callerSignal.reason, err);
  if (ctx.deadlineSignal?.aborted) {
    return new ProviderError({ provider, kind: "timeout", message: `${provider} call timed out after ${ctx.timeoutMs ?? "?"} ms`, cause: err });
  }

  const e = isRecord(err) ? err : {};
  const status = typeof e.status === "number" ? e.status : undefined;
  if (status !== undefined) {
    const headers = isRecord(e.headers) ? (e.headers as HeadersLike) : undefined;
    const msg = redact(providerMessage(e) ?? (err instanceof Error ? err.message : `HTTP ${status}`));
    const message = `${provider} ${status}: ${msg}`;
    if (status === 429) {
      return new ProviderError({ provider, kind: "rate_limited", status, message, retryAfterMs: parseRetryAfterMs(headers), cause: err });
    }
    if (status === 408) return new ProviderError({ provider, kind: "timeout", status, message, cause: err });
    // 5xx and Anthropic 529 "overloaded"; 409 is retryable per RETRYABLE_STATUSES (a conflict with a concurrent request).
    if (status >= 500 || RETRYABLE_STATUSES.has(status)) {
      return new ProviderError({ provider, kind: "server", status, message, retryAfterMs: parseRetryAfterMs(headers), cause: err });
    }
    return new ProviderError({ provider, kind: "client", status, message, cause: err });
  }

  // The SDK saw an aborted signal that the call site did not tell us about.
  if (isRecord(err) && (err.constructor as { name?: string } | undefined)?.name === "APIUserAbortError") {
    return new CallAbortedError(provider, undefined, err);
  }
  if (isTimeoutLike(err)) {
    return new ProviderError({ provider, kind: "timeout", message: `${provider} call timed out${ctx.timeoutMs ? ` after ${ctx.timeoutMs} ms` : ""}`, cause: err });
  }
  const error = coerceError(err);
  if (isConnectionLike(err)) {
    const detail = causeChain(err)
      .map((c) => (isRecord(c) && typeof c.code === "string" ? c.code : undefined))
      .find((c) => c !== undefined);
    return new ProviderError({ provider, kind: "timeout", message: redact(`${provider} connection failed: ${error.message}${detail ? ` (${detail})` : ""}`), cause: err });
  }
  // A 2xx whose body is not JSON (a proxy's HTML page): the provider side misbehaved, retry.
  if (error instanceof SyntaxError) {
    return new ProviderError({ provider, kind: "server", message: redact(`${provider} sent an unreadable response: ${error.message}`), cause: err });
  }
  // Anything else (an SDK precondition such as a missing key, a bug in a transform) will not get
  // better by retrying: fail fast.
  return new ProviderError({ provider, kind: "client", message: redact(`${provider} call failed: ${error.message}`), cause: err });
}
