import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { ProviderError } from "@sieve/shared/errors";
import { CallAbortedError, isCallAborted, parseRetryAfterMs, redactSecrets, toProviderError } from "./errors.js";

const KEY = "sk-proj-SECRETSECRETSECRET1234";

function openaiError(status: number, message: string, headers: Record<string, string> = {}) {
  return OpenAI.APIError.generate(status, { error: { message, type: "invalid_request_error", code: null, param: null } }, undefined, new Headers(headers));
}
function anthropicError(status: number, type: string, message: string, headers: Record<string, string> = {}) {
  return Anthropic.APIError.generate(status, { type: "error", error: { type, message } }, undefined, new Headers(headers));
}

test("parseRetryAfterMs: retry-after-ms wins, then seconds, then an HTTP date", () => {
  assert.equal(parseRetryAfterMs(new Headers({ "retry-after-ms": "1500", "retry-after": "9" })), 1500);
  assert.equal(parseRetryAfterMs(new Headers({ "retry-after": "2" })), 2000);
  assert.equal(parseRetryAfterMs(new Headers({ "retry-after": "0.5" })), 500);
  const now = Date.parse("2030-01-01T00:00:00Z");
  assert.equal(parseRetryAfterMs(new Headers({ "retry-after": "Tue, 01 Jan 2030 00:00:07 GMT" }), now), 7000);
  assert.equal(parseRetryAfterMs(new Headers({ "retry-after": "Tue, 01 Jan 2029 00:00:07 GMT" }), now), 0);
  assert.equal(parseRetryAfterMs(new Headers({ "retry-after": "soon" })), undefined);
  assert.equal(parseRetryAfterMs(new Headers()), undefined);
  assert.equal(parseRetryAfterMs({ "Retry-After": "3" }), 3000);
  assert.equal(parseRetryAfterMs(undefined), undefined);
});

test("429 -> rate_limited with retryAfterMs, retryable (both SDKs)", () => {
  const o = toProviderError("openai", openaiError(429, "Rate limit reached", { "retry-after": "3" }));
  assert.equal(o.kind, "rate_limited");
  assert.equal(o.status, 429);
  assert.equal(o.retryAfterMs, 3000);
  assert.equal(o.retryable, true);
  assert.equal(o.provider, "openai");
  assert.match(o.message, /Rate limit reached/);

  const a = toProviderError("anthropic", anthropicError(429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", { "retry-after": "12" }));
  assert.equal(a.kind, "rate_limited");
  assert.equal(a.retryAfterMs, 12_000);
  assert.match(a.message, /per-minute rate limit/);
  assert.ok(a.cause instanceof Anthropic.RateLimitError);
});

test("5xx and Anthropic 529 -> server, retryable", () => {
  for (const status of [500, 502, 503, 504]) {
    const e = toProviderError("openai", openaiError(status, "The server had an error"));
    assert.equal(e.kind, "server", `status ${status}`);
    assert.equal(e.retryable, true);
  }
  const overloaded = toProviderError("anthropic", anthropicError(529, "overloaded_error", "Overloaded"));
  assert.equal(overloaded.kind, "server");
  assert.equal(overloaded.status, 529);
});

test("other 4xx -> client with the provider's own message, not retryable", () => {
  const o = toProviderError("openai", openaiError(400, "Invalid schema for response_format 'sieve_results'"));
  assert.equal(o.kind, "client");
  assert.equal(o.retryable, false);
  assert.equal(o.message, "openai 400: Invalid schema for response_format 'sieve_results'");

  const a = toProviderError("anthropic", anthropicError(400, "invalid_request_error", "max_tokens: Field required"));
  assert.equal(a.kind, "client");
  assert.equal(a.message, "anthropic 400: max_tokens: Field required");

  // 408 is retryable (RETRYABLE_STATUSES) and means the server gave up waiting.
  assert.equal(toProviderError("openai", openaiError(408, "timeout")).kind, "timeout");
});

test("401: the API key never appears in the message", () => {
  const o = toProviderError("openai", openaiError(401, `Incorrect API key provided: ${KEY}. You can find your API key at https://platform.openai.com.`), { apiKey: KEY });
  assert.equal(o.kind, "client");
  assert.ok(!o.message.includes(KEY), o.message);
  assert.ok(!o.message.includes("SECRET"), o.message);
  assert.match(o.message, /Incorrect API key provided/);

  // The SDK error kept as `cause` is scrubbed too (pino prints causes' messages and stacks).
  const cause = o.cause as Error;
  assert.ok(!cause.message.includes(KEY) && !String(cause.stack).includes(KEY), cause.message);

  const masked = toProviderError("openai", openaiError(401, "Incorrect API key provided: sk-proj-***********1234."));
  assert.ok(!masked.message.includes("1234"), masked.message);

  const custom = "my-vllm-token-123";
  const v = toProviderError("vllm", openaiError(401, `bad token ${custom} (Bearer ${custom})`), { apiKey: custom });
  assert.ok(!v.message.includes(custom), v.message);
});

test("redactSecrets: keys, sk- tokens, bearer tokens", () => {
  assert.equal(redactSecrets("Authorization: Bearer abc.def-ghi"), "Authorization: Bearer [redacted]");
  assert.equal(redactSecrets("key sk-ant-api03-xyzxyz used"), "key sk-[redacted] used");
  assert.equal(redactSecrets("token=hunter2hunter2", "hunter2hunter2"), "token=[redacted]");
});

test("connection timeout / connection errors / socket resets -> timeout, retryable", () => {
  const t = toProviderError("openai", new OpenAI.APIConnectionTimeoutError());
  assert.equal(t.kind, "timeout");
  assert.equal(t.retryable, true);
  assert.equal(toProviderError("anthropic", new Anthropic.APIConnectionTimeoutError()).kind, "timeout");

  const reset = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
  const conn = new OpenAI.APIConnectionError({ message: "Connection error.", cause: reset });
  const c = toProviderError("openai", conn);
  assert.equal(c.kind, "timeout");
  assert.match(c.message, /ECONNRESET/);

  // undici cutting the body stream after the headers (not wrapped by the SDK).
  const terminated = new TypeError("terminated", { cause: Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" }) });
  assert.equal(toProviderError("vllm", terminated).kind, "timeout");
  assert.equal(toProviderError("vllm", new DOMException("The operation was aborted due to timeout", "TimeoutError")).kind, "timeout");
});

test("our own deadline -> timeout; the caller's abort -> CallAbortedError keeping cause and reason", () => {
  const deadline = new AbortController();
  deadline.abort();
  const t = toProviderError("openai", new OpenAI.APIUserAbortError(), { deadlineSignal: deadline.signal, timeoutMs: 300 });
  assert.equal(t.kind, "timeout");
  assert.match(t.message, /300 ms/);
  assert.ok(!isCallAborted(t));

  const caller = new AbortController();
  const reason = new Error("worker shutting down");
  caller.abort(reason);
  const sdkErr = new Anthropic.APIUserAbortError();
  const a = toProviderError("anthropic", sdkErr, { callerSignal: caller.signal, deadlineSignal: deadline.signal });
  assert.ok(a instanceof CallAbortedError);
  assert.ok(a instanceof ProviderError);
  assert.equal(a.kind, "timeout");
  assert.equal(a.cause, sdkErr);
  assert.equal(a.reason, reason);
  assert.match(a.message, /aborted by the caller: worker shutting down/);
});

test("unknown errors: a ProviderError passes through, a non-JSON body is server, the rest fail fast", () => {
  const pe = new ProviderError({ provider: "openai", kind: "server", message: "x" });
  assert.equal(toProviderError("openai", pe), pe);
  assert.equal(toProviderError("openai", new SyntaxError("Unexpected token < in JSON")).kind, "server");
  const other = toProviderError("anthropic", new Anthropic.AnthropicError(`bad key ${KEY}`), { apiKey: KEY });
  assert.equal(other.kind, "client");
  assert.ok(!other.message.includes(KEY));
  assert.equal(toProviderError("openai", "a string").kind, "client");
});
