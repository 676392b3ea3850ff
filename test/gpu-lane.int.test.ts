/**
 * The local GPU lane end to end (real Redis and Postgres, the API, in-process workers) against
 * two simulated vLLM engines with continuous-batching timing: the limiter follows the engines'
 * gauges, an engine that dies mid-run is drained and comes back, and with no healthy engine the
 * items fail over to the cloud route. Every item ends with exactly one result.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import OpenAI from "openai";
import { queryRows, registry, renderPrompt, resultsJsonSchema } from "@sieve/shared";
import { startSimulator, type Simulator } from "@sieve/simulator";
import { jobIntegrity, startHarness, waitForJob, LABELS, type Harness } from "./support/harness.js";
import { agNewsItems } from "./support/datasets.js";

const MODEL = "Qwen/Qwen2.5-7B-Instruct-AWQ";

/** Another client of the same engine (not Sieve): 40 items per request, a large answer budget (KV reservation). */
function directCall(engine: Simulator, i: number) {
  const params = { task: "classify" as const, labels: LABELS };
  const items = Array.from({ length: 40 }, (_, k) => ({ id: `i${k + 1}`, text: `other client ${i} text ${k}` }));
  const { system, user } = renderPrompt(params, items);
  return new OpenAI({ baseURL: `${engine.url}/vllm/v1`, apiKey: "EMPTY", maxRetries: 0, timeout: 60_000 }).chat.completions.create({
    model: MODEL,
    messages: [
      { role: "system", content: system },
      { role: "user", content: user },
    ],
    max_tokens: 2_000,
    response_format: { type: "json_schema", json_schema: { name: "results", schema: resultsJsonSchema(params, items.map((x) => x.id)) as Record<string, unknown>, strict: true } },
  });
}

describe("GPU lane: adaptive limiters, drain and failover over two simulated vLLM engines", () => {
  let h: Harness;
  let engines: Simulator[];
  before(async () => {
    // Each engine holds ~6 calls of 5 items in its KV cache, 20x faster than a real GPU.
    engines = await Promise.all([0, 1].map(() => startSimulator({ vllm: { perf: { timeScale: 20 }, kvCacheTokens: 6 * 1_000 } })));
    h = await startHarness({
      env: {
        SIEVE_GPU_ENGINES: engines.map((e) => `${e.url}/vllm/v1`).join(","),
        SIEVE_ROUTE_CLASSIFY: `vllm:${MODEL}`,
        SIEVE_CLASSIFY_MAX_ITEMS: "5",
        SIEVE_CLASSIFY_MAX_WAIT_MS: "20",
        SIEVE_GPU_POLL_MS: "100",
        SIEVE_GPU_FAILOVER_ROUTE: "openai:gpt-4.1-mini",
        SIEVE_GPU_FAILOVER_AFTER_MS: "1500",
        SIEVE_CALL_TIMEOUT_MS: "20000",
        SIEVE_CACHE_ENABLED: "false",
        SIEVE_MAX_ITEMS_PER_REQUEST: "2000",
      },
    });
  });
  after(async () => {
    await h.close();
    await Promise.all(engines.map((e) => e.close()));
  });

  async function submit(n: number, tag: string) {
    const items = agNewsItems(n).map(({ id, text }) => ({ id, text: `${text} (${tag})` }));
    const res = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items });
    assert.equal(res.status, 202, res.text);
    return res.body.id as string;
  }

  test("the limiter grows from 2 until the engines are full, and shrinks when another client queues work on one", async () => {
    const pool = h.workers!.gpu!;
    assert.deepEqual(pool.snapshot().map((s) => [s.health, s.limit]), [["healthy", 2], ["healthy", 2]]);
    const jobId = await submit(1_500, "grow");
    let peak = 0;
    let maxRunning = 0;
    let maxWaiting = 0;
    let e0AtBurst = 0;
    let e0Min = Infinity;
    let burst: Promise<unknown> | undefined;
    const watch = setInterval(() => {
      const snap = pool.snapshot();
      for (const s of snap) peak = Math.max(peak, s.limit);
      for (const e of engines) {
        maxRunning = Math.max(maxRunning, e.vllmStatus().running);
        if (!burst) maxWaiting = Math.max(maxWaiting, e.vllmStatus().waiting);
      }
      if (burst) e0Min = Math.min(e0Min, snap[0]!.limit);
      // Once the limit has grown, another client piles 30 requests onto engine 0.
      if (!burst && peak >= 4) {
        e0AtBurst = snap[0]!.limit;
        burst = Promise.allSettled(Array.from({ length: 30 }, (_, i) => directCall(engines[0]!, i)));
      }
    }, 25);
    const job = await waitForJob(h, "acme", jobId, 120_000);
    clearInterval(watch);
    await burst;
    assert.equal(job.status, "completed");
    // How far it grows depends on how fast this (shared, 2-core) machine feeds the lane; it grows
    // only while the calls in flight use the limit (limiter.ts), so growth means the lane used it.
    assert.ok(peak >= 4, `the limit grew from 2 while the engines kept up (peak ${peak}, max running ${maxRunning})`);
    assert.ok(maxWaiting <= 20, `no runaway: the engines' queues stayed short before the burst (max waiting ${maxWaiting})`);
    assert.ok(burst, "the burst ran");
    assert.ok(e0Min < e0AtBurst, `engine 0's limit shrank under the other client's queue (${e0AtBurst} -> ${e0Min})`);
    const r = await jobIntegrity(h, jobId);
    assert.deepEqual([r.results, r.distinct, r.ok], [1_500, 1_500, 1_500]);
    // Each engine's limit, in-flight calls and signals are Prometheus metrics.
    const text = await registry.metrics();
    for (const e of engines) {
      for (const name of ["sieve_gpu_engine_limit", "sieve_gpu_engine_in_flight", "sieve_gpu_engine_requests_waiting", "sieve_gpu_engine_kv_cache_usage", "sieve_gpu_engine_healthy"]) {
        assert.match(text, new RegExp(`^${name}\\{engine="${e.url.replace(/[.]/g, "\\.")}/vllm/v1"\\} [0-9.]+$`, "m"), name);
      }
    }
  });

  test("an engine crashes mid-run: it is drained, the other takes its calls, it comes back; nothing lost or doubled", async () => {
    const pool = h.workers!.gpu!;
    const jobId = await submit(400, "kill");
    await new Promise((r) => setTimeout(r, 300));
    engines[0]!.vllmControl({ crash: { downS: 1, loadingS: 1 } });
    const sawDrained = await (async () => {
      for (let i = 0; i < 40; i++) {
        if (pool.snapshot()[0]!.health === "drained") return true;
        await new Promise((r) => setTimeout(r, 50));
      }
      return false;
    })();
    assert.ok(sawDrained, "the crashed engine is drained");
    const job = await waitForJob(h, "acme", jobId, 120_000);
    assert.equal(job.status, "completed");
    const r = await jobIntegrity(h, jobId);
    assert.deepEqual([r.items, r.results, r.distinct, r.ok], [400, 400, 400, 400]);
    // It comes back after down (1 s) + loading (1 s) and takes work again.
    for (let i = 0; i < 60 && pool.snapshot()[0]!.health !== "healthy"; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(pool.snapshot()[0]!.health, "healthy");
    const again = await submit(50, "back");
    await waitForJob(h, "acme", again, 60_000);
    const served = await queryRows<{ n: number }>(h.db.db, sql`select count(*)::int as n from results where job_id = ${again} and provider = 'vllm'`);
    assert.equal(served[0]!.n, 50);
  });

  test("an engine that stops answering (frozen, nothing reset) is drained within seconds; its calls go to the other", async () => {
    const pool = h.workers!.gpu!;
    const jobId = await submit(300, "hang");
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    engines[1]!.vllmControl({ hang: { seconds: 4 } });
    let drainedAfter = -1;
    for (let i = 0; i < 60 && drainedAfter < 0; i++) {
      if (pool.snapshot()[1]!.health === "drained") drainedAfter = Date.now() - t0;
      else await new Promise((r) => setTimeout(r, 50));
    }
    // Calls time out only after SIEVE_CALL_TIMEOUT_MS (20 s); the health probe notices in about a second.
    assert.ok(drainedAfter >= 0 && drainedAfter < 3_000, `drained after ${drainedAfter} ms`);
    const job = await waitForJob(h, "acme", jobId, 120_000);
    assert.equal(job.status, "completed");
    const r = await jobIntegrity(h, jobId);
    assert.deepEqual([r.items, r.results, r.distinct, r.ok], [300, 300, 300, 300]);
    for (let i = 0; i < 80 && pool.snapshot()[1]!.health !== "healthy"; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(pool.snapshot()[1]!.health, "healthy", "back once it answers again");
  });

  test("no healthy engine for the failover wait: items go to the cloud route, recorded and priced as it", async () => {
    for (const e of engines) e.vllmControl({ crash: { downS: 60, loadingS: 0 } });
    const started = Date.now();
    const jobId = await submit(40, "failover");
    const job = await waitForJob(h, "acme", jobId, 60_000);
    assert.equal(job.status, "completed");
    assert.ok(Date.now() - started >= 1_000, "not before the failover wait");
    assert.ok(job.items.every((i: any) => i.provider === "openai" && i.model === "gpt-4.1-mini"), "answered by the failover route");
    const calls = await queryRows<{ provider: string; model: string; cost: number }>(
      h.db.db,
      sql`select provider, model, sum(cost_usd)::float as cost from llm_calls where batch_key like ${"%"} and provider = 'openai' group by provider, model`,
    );
    assert.equal(calls[0]?.model, "gpt-4.1-mini");
    assert.ok((calls[0]?.cost ?? 0) > 0, "priced at the cloud model's price");
    const r = await jobIntegrity(h, jobId);
    assert.deepEqual([r.results, r.distinct, r.ok], [40, 40, 40]);
  });
});
