/**
 * The providers against a scripted HTTP server speaking each provider's real wire format (error
 * bodies, headers), with the real SDKs: the cases the simulator cannot stage (a body that stalls
 * after the headers, a reset socket, a non-JSON 200, exact error bodies) and what the SDK puts on
 * the wire (no SDK retries, auth header, request ids).
 */
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ProviderError } from "@sieve/shared/errors";
import type { ProviderName } from "@sieve/shared/providerNames";
import type { ProviderEndpoint, TaskParams } from "@sieve/shared";
import { createProvider } from "./index.js";
import { CallAbortedError } from "./errors.js";
import { checkVllmHealth, fetchVllmMetrics } from "@sieve/shared/vllm/metrics";
import type { LlmProvider, StructuredCallRequest } from "./types.js";

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

let server: Server;
let base = "";
let handler: Handler = (_req, res) => res.end();
const seen: Array<{ method: string; url: string; headers: IncomingMessage["headers"]; body: string }> = [];

before(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

beforeEach(() => {
  seen.length = 0;
});

const KEY: Record<ProviderName, string> = {
  openai: "sk-proj-TOPSECRETKEY0123456789",
  anthropic: "sk-ant-api03-TOPSECRETKEY0123456789",
  vllm: "vllm-secret-token-0123456789",
};

function endpoint(provider: ProviderName): ProviderEndpoint {
  const baseURL = provider === "openai" ? `${base}/v1` : provider === "anthropic" ? base : `${base}/vllm/v1`;
  return { provider, baseURL, apiKey: KEY[provider], defaultModel: "m", simulated: false };
}

const params: TaskParams = { task: "classify", labels: ["a", "b"] };
const items = [
  { id: "i1", text: "one" },
  { id: "i2", text: "two" },
];
function request(over: Partial<StructuredCallRequest> = {}): StructuredCallRequest {
  return { model: "m", params, items, timeoutMs: 5_000, ...over };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

const answer = { results: items.map((i) => ({ id: i.id, label: "a" })) };
function okBody(provider: ProviderName): unknown {
  if (provider === "anthropic") {
    return {
      id: "msg_1",
      type: "message",
      role: "assistant",
      model: "m",
      content: [{ type: "tool_use", id: "toolu_1", name: "sieve_results", input: answer }],
      stop_reason: "tool_use",
      stop_sequence: null,
      usage: { input_tokens: 10, output_tokens: 5, cache_read_input_tokens: 100, cache_creation_input_tokens: 0 },
    };
  }
  return {
    id: "chatcmpl-1",
    object: "chat.completion",
    created: 0,
    model: "m",
    choices: [{ index: 0, finish_reason: "stop", logprobs: null, message: { role: "assistant", content: JSON.stringify(answer), refusal: null } }],
    usage: { prompt_tokens: 110, completion_tokens: 5, total_tokens: 115, prompt_tokens_details: { cached_tokens: 100 } },
  };
}

/** The provider's own error body for a status. */
function errorBody(provider: ProviderName, status: number, message: string): unknown {
  if (provider === "anthropic") {
    const type = status === 401 ? "authentication_error" : status === 429 ? "rate_limit_error" : status >= 500 ? "api_error" : "invalid_request_error";
    return { type: "error", error: { type, message }, request_id: "req_err" };
  }
  if (provider === "vllm") return { error: { message, type: "BadRequestError", param: null, code: status } };
  return { error: { message, type: "invalid_request_error", param: null, code: null } };
}

async function rejects(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ProviderError, `expected a ProviderError, got ${String(e)}`);
    return e;
  }
  assert.fail("expected the call to fail");
}

for (const name of ["openai", "anthropic", "vllm"] as const) {
  describe(`${name} on the wire`, () => {
    let provider: LlmProvider;
    before(() => {
      provider = createProvider(endpoint(name));
    });

    test("success: path, auth header, request id, usage, latency", async () => {
      handler = (_req, res) => json(res, 200, okBody(name), name === "anthropic" ? { "request-id": "req_abc" } : { "x-request-id": "req_abc" });
      const r = await provider.callStructured(request());
      assert.deepEqual(r.answer, answer);
      assert.equal(r.requestId, "req_abc");
      assert.equal(r.usage.inputTokens, 110);
      assert.equal(r.usage.cachedInputTokens, 100);
      assert.ok(r.latencyMs >= 0);
      assert.equal(seen.length, 1);
      const sent = seen[0]!;
      const path = name === "openai" ? "/v1/chat/completions" : name === "anthropic" ? "/v1/messages" : "/vllm/v1/chat/completions";
      assert.equal(sent.url, path);
      assert.equal(sent.headers.authorization, `Bearer ${KEY[name]}`);
      const body = JSON.parse(sent.body) as Record<string, unknown>;
      if (name === "anthropic") assert.deepEqual(body.tool_choice, { type: "tool", name: "sieve_results" });
      else assert.equal((body.response_format as { type: string }).type, "json_schema");
    });

    test("the SDK does not retry: one request per call, even on 500", async () => {
      handler = (_req, res) => json(res, 500, errorBody(name, 500, "boom"));
      const e = await rejects(provider.callStructured(request()));
      assert.equal(e.kind, "server");
      assert.equal(seen.length, 1);
    });

    test("401: client, the provider's message, no API key", async () => {
      handler = (_req, res) => json(res, 401, errorBody(name, 401, `Incorrect API key provided: ${KEY[name]}.`));
      const e = await rejects(provider.callStructured(request()));
      assert.equal(e.kind, "client");
      assert.equal(e.status, 401);
      assert.equal(e.retryable, false);
      assert.match(e.message, /Incorrect API key provided/);
      assert.ok(!e.message.includes(KEY[name]), e.message);
      assert.ok(!e.message.includes("TOPSECRET") && !e.message.includes("secret-token"), e.message);
      const cause = e.cause as Error;
      assert.ok(!cause.message.includes(KEY[name]) && !String(cause.stack).includes(KEY[name]), "the SDK error kept as cause is scrubbed too");
    });

    test("400: client with the provider's message", async () => {
      handler = (_req, res) => json(res, 400, errorBody(name, 400, "messages: field required"));
      const e = await rejects(provider.callStructured(request()));
      assert.equal(e.kind, "client");
      assert.equal(e.message, `${name} 400: messages: field required`);
    });

    test("429 with retry-after-ms / an HTTP-date retry-after", async () => {
      handler = (_req, res) => json(res, 429, errorBody(name, 429, "slow down"), { "retry-after-ms": "1250", "retry-after": "2" });
      const e = await rejects(provider.callStructured(request()));
      assert.equal(e.kind, "rate_limited");
      assert.equal(e.retryAfterMs, 1250);
      const at = new Date(Date.now() + 30_000).toUTCString();
      handler = (_req, res) => json(res, 429, errorBody(name, 429, "slow down"), { "retry-after": at });
      const d = await rejects(provider.callStructured(request()));
      assert.ok(d.retryAfterMs! > 25_000 && d.retryAfterMs! <= 30_000, String(d.retryAfterMs));
    });

    test("no headers in time -> timeout near timeoutMs", async () => {
      handler = () => {}; // never answers
      const t0 = performance.now();
      const e = await rejects(provider.callStructured(request({ timeoutMs: 200 })));
      const took = performance.now() - t0;
      assert.equal(e.kind, "timeout");
      assert.ok(!(e instanceof CallAbortedError));
      // Loose on purpose (a loaded 2-core machine): without our deadline it would hang for the SDK's minutes.
      assert.ok(took >= 150 && took < 10_000, `took ${took} ms`);
    });

    test("headers sent, then the body stalls -> timeout (the SDK timeout alone would hang)", async () => {
      handler = (_req, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.write('{"id":"x",');
      };
      const t0 = performance.now();
      const e = await rejects(provider.callStructured(request({ timeoutMs: 250 })));
      assert.equal(e.kind, "timeout");
      assert.ok(performance.now() - t0 < 10_000);
    });

    test("the caller's abort -> CallAbortedError with the reason", async () => {
      handler = () => {};
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error("shutdown")), 50);
      const e = await rejects(provider.callStructured(request({ signal: ac.signal, timeoutMs: 5_000 })));
      assert.ok(e instanceof CallAbortedError, String(e));
      assert.equal(e.kind, "timeout");
      assert.match(e.message, /shutdown/);
      assert.ok(e.cause !== undefined);
    });

    test("an already aborted signal never sends a request", async () => {
      const ac = new AbortController();
      ac.abort(new Error("lock lost"));
      const e = await rejects(provider.callStructured(request({ signal: ac.signal })));
      assert.ok(e instanceof CallAbortedError);
      assert.equal(seen.length, 0);
    });

    test("a reset connection -> timeout (retryable)", async () => {
      handler = (req) => req.socket.destroy();
      const e = await rejects(provider.callStructured(request()));
      assert.equal(e.kind, "timeout");
      assert.equal(e.retryable, true);
    });

    test("a 200 whose body is not JSON -> server", async () => {
      handler = (_req, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end("<html>bad gateway</html>");
      };
      const e = await rejects(provider.callStructured(request()));
      assert.equal(e.kind, "server");
    });
  });
}

describe("vLLM metrics and health", () => {
  test("fetches /metrics and /health at the server root", async () => {
    handler = (req, res) => {
      if (req.url === "/vllm/metrics") {
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
        res.end('vllm:num_requests_running{model_name="m"} 2\nvllm:num_requests_waiting{model_name="m"} 9\nvllm:kv_cache_usage_perc{model_name="m"} 0.5\n');
      } else if (req.url === "/vllm/health") {
        res.writeHead(200).end();
      } else res.writeHead(404).end();
    };
    assert.deepEqual(await fetchVllmMetrics(`${base}/vllm/v1`), { requestsRunning: 2, requestsWaiting: 9, kvCacheUsage: 0.5 });
    assert.equal(await checkVllmHealth(`${base}/vllm/v1`), true);
    const vllm = createProvider(endpoint("vllm"));
    assert.ok("metrics" in vllm);
  });

  test("unhealthy or unreachable -> false; metrics error -> ProviderError", async () => {
    handler = (_req, res) => res.writeHead(503).end();
    assert.equal(await checkVllmHealth(`${base}/vllm/v1`), false);
    await assert.rejects(fetchVllmMetrics(`${base}/vllm/v1`), (e: unknown) => e instanceof ProviderError && e.kind === "server");
    assert.equal(await checkVllmHealth("http://127.0.0.1:1/v1", { timeoutMs: 500 }), false);
    await assert.rejects(fetchVllmMetrics("http://127.0.0.1:1/v1", { timeoutMs: 500 }), (e: unknown) => e instanceof ProviderError && e.kind === "timeout");
  });
});
