/** The simulated vLLM engine under load, through the real openai SDK: timing, gauges, restart, crash. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startSimulator, type Simulator } from "../server.js";
import { CLASSIFY, makeItems, sieveCall } from "../testSupport.js";
import { DEFAULT_VLLM_MODEL } from "./engine.js";
import { parseVllmGauges } from "./testGauges.js";

let sim: Simulator;
let client: OpenAI;
before(async () => {
  // 40x faster than a GPU; a KV cache that holds 4 requests of this size.
  sim = await startSimulator({ vllm: { perf: { timeScale: 40 }, kvCacheTokens: 4 * 1_200, maxNumSeqs: 64 } });
  client = new OpenAI({ baseURL: `${sim.url}/vllm/v1`, apiKey: "EMPTY", maxRetries: 0, timeout: 30_000 });
});
after(() => sim.close());

function call(i: number) {
  const c = sieveCall(CLASSIFY, makeItems(10, `req${i}`));
  return client.chat.completions.create({
    model: DEFAULT_VLLM_MODEL,
    messages: [
      { role: "system", content: c.system },
      { role: "user", content: c.user },
    ],
    max_tokens: 800,
    response_format: { type: "json_schema", json_schema: { name: "results", schema: c.schema as Record<string, unknown>, strict: true } },
  });
}

const gauges = async () => parseVllmGauges(await (await fetch(`${sim.url}/vllm/metrics`)).text());

test("requests beyond the KV cache wait; /metrics shows running, waiting and KV usage of that state", async () => {
  // Slow enough that none finishes before all ten arrived, even on a loaded machine.
  sim.vllmControl({ slowdown: 20 });
  const all = Array.from({ length: 10 }, (_, i) => call(i));
  for (let i = 0; i < 100 && sim.vllmStatus().running + sim.vllmStatus().waiting < 10; i++) await new Promise((r) => setTimeout(r, 20));
  const g = await gauges();
  sim.vllmControl({ slowdown: 1 });
  assert.ok(g.running >= 1 && g.running <= 4, `at most 4 fit in the KV cache (running ${g.running})`);
  assert.equal(g.running + g.waiting, 10);
  assert.ok(g.kv > 0.5 && g.kv <= 1, `KV usage ${g.kv}`);
  const status = sim.vllmStatus();
  assert.equal(status.running + status.waiting, 10);
  const res = await Promise.all(all);
  assert.equal(res.length, 10);
  const after = await gauges();
  assert.deepEqual([after.running, after.waiting, after.kv], [0, 0, 0]);
});

test("answers take GPU time: more completion tokens, longer latency", async () => {
  const t0 = performance.now();
  const r = await call(100);
  const ms = performance.now() - t0;
  const tokens = r.usage!.completion_tokens;
  // One sequence: >= 10 ms per token simulated, / 40 time scale.
  assert.ok(ms >= (tokens * 10) / 40 * 0.9, `${ms} ms for ${tokens} tokens`);
});

test("restart: /health and chat answer 503 while loading, then the engine serves again", async () => {
  sim.vllmControl({ restart: { loadingS: 0.4 } });
  assert.equal((await fetch(`${sim.url}/vllm/health`)).status, 503);
  await assert.rejects(call(1), (e: unknown) => e instanceof OpenAI.APIError && e.status === 503);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await fetch(`${sim.url}/vllm/health`)).status, 200);
  assert.ok((await call(2)).choices[0]!.message.content);
});

test("crash mid-request: the connection is cut, then down (reset), then loading (503), then ready", async () => {
  const inFlight = call(3);
  await new Promise((r) => setTimeout(r, 20));
  sim.vllmControl({ crash: { downS: 0.3, loadingS: 0.3 } });
  await assert.rejects(inFlight, (e: unknown) => e instanceof OpenAI.APIConnectionError);
  await assert.rejects(fetch(`${sim.url}/vllm/health`));
  await new Promise((r) => setTimeout(r, 350));
  assert.equal((await fetch(`${sim.url}/vllm/health`)).status, 503);
  await new Promise((r) => setTimeout(r, 350));
  assert.equal((await fetch(`${sim.url}/vllm/health`)).status, 200);
  assert.equal(sim.vllmStatus().state, "ready");
});

test("slowdown: the same request takes about that many times longer", async () => {
  const time = async () => {
    const t0 = performance.now();
    await call(7);
    return performance.now() - t0;
  };
  const base = await time();
  sim.vllmControl({ slowdown: 4 });
  try {
    const slow = await time();
    assert.ok(slow > base * 2, `slowdown 4: ${Math.round(slow)} ms vs ${Math.round(base)} ms`);
  } finally {
    sim.vllmControl({ slowdown: 1 });
  }
});

test("hang: no route answers and running requests stall, then the engine serves again", async () => {
  const inFlight = call(9);
  await new Promise((r) => setTimeout(r, 10));
  sim.vllmControl({ hang: { seconds: 0.6 } });
  assert.equal(sim.vllmStatus().state, "hung");
  await assert.rejects(fetch(`${sim.url}/vllm/health`, { signal: AbortSignal.timeout(300) }), "health does not answer while hung");
  await new Promise((r) => setTimeout(r, 400));
  assert.equal((await fetch(`${sim.url}/vllm/health`)).status, 200);
  assert.ok((await inFlight).choices[0]!.message.content, "the stalled request finishes after the hang");
});
