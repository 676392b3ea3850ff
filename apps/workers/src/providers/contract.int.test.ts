/**
 * ONE contract every LlmProvider passes, run with the real SDKs against the bundled
 * provider simulator (tools/simulator): the same checks for OpenAI, Anthropic and vLLM.
 */
import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startSimulator, type Simulator } from "@sieve/simulator";
import { ProviderError } from "@sieve/shared/errors";
import { parseEnv } from "@sieve/shared/config/env";
import { providerEndpoints, type ProviderEndpoint } from "@sieve/shared/config/providers";
import { validateResults } from "@sieve/shared/tasks/output";
import type { ProviderName, TaskParams } from "@sieve/shared";
import { createProvider } from "./index.js";
import type { LlmProvider, StructuredCallRequest } from "./types.js";

let sim: Simulator;
let endpoints: Map<ProviderName, ProviderEndpoint>;

before(async () => {
  sim = await startSimulator({ port: 0 });
  endpoints = providerEndpoints(parseEnv({ SIEVE_SIMULATOR: "true" }), sim.url);
});
after(() => sim.close());
afterEach(() => sim.setFaults({}));

const classify: TaskParams = { task: "classify", labels: ["positive", "negative", "neutral"] };
const five = ["I love it", "Terrible service", "It is a chair", "Best day ever", "Meh"].map((text, i) => ({ id: `i${i + 1}`, text }));

/**
 * A system prompt long enough to be cached by every provider (OpenAI and Anthropic cache
 * prefixes of 1024+ tokens only).
 */
const longParams: TaskParams = {
  task: "classify",
  labels: Array.from({ length: 40 }, (_, i) => `topic_${i}`),
  labelDescriptions: Object.fromEntries(
    Array.from({ length: 40 }, (_, i) => [`topic_${i}`, `Texts about subject number ${i}: its history, its people, its places, its typical vocabulary and the usual ways of talking about it.`]),
  ),
};

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
  describe(`${name} provider contract (simulator)`, () => {
    let provider: LlmProvider;
    let model: string;
    const call = (over: Partial<StructuredCallRequest> = {}) => provider.callStructured({ model, params: classify, items: five, timeoutMs: 5_000, ...over });

    before(() => {
      const ep = endpoints.get(name)!;
      provider = createProvider(ep);
      model = ep.defaultModel;
    });

    test("a 5-item classify call returns 5 valid entries", async () => {
      const r = await call();
      assert.equal(r.parseError, undefined);
      const v = validateResults(classify, five.map((i) => i.id), r.answer);
      assert.equal(v.ok.size, 5, JSON.stringify([...v.failed]));
      assert.equal(v.failed.size, 0);
      assert.ok(r.usage.inputTokens > 0);
      assert.ok(r.usage.outputTokens > 0);
      assert.ok(r.latencyMs >= 0);
      assert.ok(r.requestId, "request id from the response headers");
    });

    test("usage: cached prompt tokens flow through on a repeated prefix", async () => {
      sim.clearPromptCaches();
      const items = (tag: string) => five.map((i) => ({ ...i, text: `${i.text} (${tag})` }));
      const first = await call({ params: longParams, items: items("a") });
      const second = await call({ params: longParams, items: items("b") });
      assert.ok(second.usage.cachedInputTokens! > 0, JSON.stringify(second.usage));
      assert.ok(second.usage.cachedInputTokens! <= second.usage.inputTokens);
      if (name === "anthropic") {
        assert.ok(first.usage.cacheWriteTokens! > 0, JSON.stringify(first.usage));
        // inputTokens counts every prompt token, cached or not.
        assert.ok(Math.abs(first.usage.inputTokens - second.usage.inputTokens) < 50, `${first.usage.inputTokens} vs ${second.usage.inputTokens}`);
      }
    });

    test("429 -> rate_limited with retryAfterMs = Retry-After * 1000", async () => {
      sim.setFaults({ rate429: 1, retryAfterS: 2 });
      const e = await rejects(call());
      assert.equal(e.kind, "rate_limited");
      assert.equal(e.status, 429);
      assert.equal(e.retryAfterMs, 2000);
      assert.equal(e.retryable, true);
      assert.equal(e.provider, name);
    });

    test("server error -> server", async () => {
      sim.setFaults({ rate5xx: 1 });
      const e = await rejects(call());
      assert.equal(e.kind, "server");
      assert.equal(e.status, name === "anthropic" ? 529 : 500);
      assert.equal(e.retryable, true);
    });

    test("a request never answered -> timeout near timeoutMs (300 ms), not the SDK's minutes", async () => {
      sim.setFaults({ rateTimeout: 1 });
      const t0 = performance.now();
      const e = await rejects(call({ timeoutMs: 300 }));
      const took = performance.now() - t0;
      assert.equal(e.kind, "timeout");
      // The lower bound is exact (a deadline never fires early); the upper one leaves room for a
      // loaded 2-core machine and is still far below the SDKs' default timeouts (10 minutes).
      assert.ok(took >= 250 && took < 10_000, `took ${Math.round(took)} ms`);
    });

    test("truncated -> answer undefined + parseError, usage kept", async () => {
      sim.setFaults({ rateTruncated: 1 });
      const r = await call();
      assert.equal(r.answer, undefined);
      assert.match(r.parseError ?? "", /truncated/);
      assert.ok(r.usage.outputTokens > 0);
    });

    test("a dropped entry is passed through as answered, for validation to catch", async () => {
      sim.setFaults({ rateDropItem: 1 });
      const r = await call();
      assert.equal(r.parseError, undefined);
      const v = validateResults(classify, five.map((i) => i.id), r.answer);
      assert.equal(v.ok.size, 4);
      assert.equal([...v.failed.values()][0]?.reason, "missing");
    });

    test("a bad request -> client with the provider's message", async () => {
      // OpenAI/Anthropic: an empty model is a 400; vLLM: a model it does not serve is a 404.
      const e = await rejects(call({ model: name === "vllm" ? "not-served" : "" }));
      assert.equal(e.kind, "client");
      assert.equal(e.retryable, false);
      assert.equal(e.status, name === "vllm" ? 404 : 400);
      assert.match(e.message, name === "openai" ? /Missing required parameter: 'model'/ : name === "anthropic" ? /model: Field required/ : /does not exist/);
    });
  });
}

describe("vllm with --api-key (simulator)", () => {
  let keyed: Simulator;
  before(async () => {
    keyed = await startSimulator({ port: 0, vllm: { apiKey: "right-key-0123456789" } });
  });
  after(() => keyed.close());

  test("a wrong key -> client 401 with vLLM's message, the key never in it", async () => {
    const ep = providerEndpoints(parseEnv({ SIEVE_SIMULATOR: "true" }), keyed.url).get("vllm")!;
    const wrong = createProvider({ ...ep, apiKey: "wrong-key-0123456789" });
    const e = await rejects(wrong.callStructured({ model: ep.defaultModel, params: classify, items: five, timeoutMs: 5_000 }));
    assert.equal(e.kind, "client");
    assert.equal(e.status, 401);
    assert.match(e.message, /Incorrect API key/);
    assert.ok(!e.message.includes("wrong-key-0123456789"));
    const right = createProvider({ ...ep, apiKey: "right-key-0123456789" });
    const r = await right.callStructured({ model: ep.defaultModel, params: classify, items: five, timeoutMs: 5_000 });
    assert.equal(validateResults(classify, five.map((i) => i.id), r.answer).ok.size, 5);
  });

  test("metrics and health of the simulated vLLM server", async () => {
    const ep = providerEndpoints(parseEnv({ SIEVE_SIMULATOR: "true" }), keyed.url).get("vllm")!;
    const vllm = createProvider(ep);
    assert.ok("metrics" in vllm && "health" in vllm);
    const { VllmProvider } = await import("./vllm/index.js");
    assert.ok(vllm instanceof VllmProvider);
    assert.equal(await vllm.health(), true);
    const m = await vllm.metrics();
    assert.equal(typeof m.requestsRunning, "number");
    assert.equal(typeof m.requestsWaiting, "number");
    assert.ok(m.kvCacheUsage === undefined || (m.kvCacheUsage >= 0 && m.kvCacheUsage <= 1));
  });
});
