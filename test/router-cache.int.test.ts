/**
 * The lane router and the caches (real Redis and Postgres, the API, in-process workers, the
 * provider simulator): `lane: "auto"` uses the exact cache and in-flight coalescing like the
 * realtime lane, whatever lane each item takes (GPU, flex, realtime, batch); cache answers are
 * the router's first step, "caches (free)", and their laneReason says so.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { Queue } from "bullmq";
import { createLogger, createRedis, queryRows, realtimeQueueName, type ProviderName } from "@sieve/shared";
import { ExactCache } from "@sieve/shared/dedup/exact";
import { sweepOnce } from "@sieve/workers";
import { startHarness, waitForJob, LABELS, type Harness } from "./support/harness.js";
import { agNewsItems } from "./support/datasets.js";

function items(n: number, tag: string) {
  return agNewsItems(n).map(({ id, text }) => ({ id, text: `${text} [${tag}]` }));
}

const lanesOf = (job: any) => job.items.reduce((m: Record<string, number>, i: any) => ((m[i.lane] = (m[i.lane] ?? 0) + 1), m), {});
const cachesOf = (job: any) => job.items.reduce((m: Record<string, number>, i: any) => ((m[i.cache ?? "llm"] = (m[i.cache ?? "llm"] ?? 0) + 1), m), {});

describe("lane auto and the caches", () => {
  let h: Harness;
  before(async () => {
    // Workers start later: items stay in flight while identical ones are submitted.
    h = await startHarness({ workers: false, batchLane: true, batchKnobs: { phaseMs: 100, seed: 3 }, env: { SIEVE_CACHE_ENABLED: "true", SIEVE_GPU_POLL_MS: "100", SIEVE_CLASSIFY_MAX_WAIT_MS: "50" } });
  });
  after(async () => h.close());

  const auto = (deadline: string, its: Array<{ id: string; text: string }>) => h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, lane: "auto", deadline, items: its });

  test("identical items in flight are coalesced (flex leaders; batch items following realtime leaders), answered once, and fill the cache", async () => {
    // No GPU lane yet (no worker publishes its state): PT1H goes to flex.
    const flexItems = items(40, "cf");
    const a = await auto("PT1H", flexItems);
    assert.equal(a.status, 202, a.text);
    assert.deepEqual(lanesOf((await h.call("acme", "GET", `/v1/jobs/${a.body.id}`)).body), { flex: 40 });
    const b = await auto("PT1H", flexItems);
    assert.equal(b.status, 202, b.text);
    const bBefore = (await h.call("acme", "GET", `/v1/jobs/${b.body.id}`)).body;
    assert.deepEqual(lanesOf(bBefore), { cache: 40 }, "every item follows the identical item in flight");
    assert.ok(bBefore.items.every((i: any) => /^caches \(free\): coalesced with an identical item in flight/.test(i.laneReason)));

    // Realtime items in flight; lane auto P1D items identical to them follow instead of going to a provider batch.
    const rtItems = items(30, "cr");
    const c = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items: rtItems });
    assert.equal(c.status, 202, c.text);
    const d = await auto("P1D", rtItems);
    assert.equal(d.status, 202, d.text);
    assert.deepEqual(lanesOf((await h.call("acme", "GET", `/v1/jobs/${d.body.id}`)).body), { cache: 30 });
    const queued = await queryRows<{ n: number }>(h.db.db, sql`select count(*)::int as n from batch_items where job_id = ${d.body.id}`);
    assert.equal(queued[0]!.n, 0, "nothing of the follower job went to the batch lane");

    // The sweeper leaves followers waiting for their leader (a flex call can take minutes) instead
    // of sending them again; their leaders' parcels are live, so nothing is repaired.
    const redis = createRedis(h.env.REDIS_URL, "producer");
    const queues = new Map((["openai", "anthropic", "vllm"] as ProviderName[]).map((p) => [p, new Queue(realtimeQueueName(p), { connection: redis, prefix: h.env.SIEVE_QUEUE_PREFIX })]));
    try {
      const exact = new ExactCache(redis, h.db.db, { prefix: h.env.SIEVE_QUEUE_PREFIX, maxEntries: 1_000, policy: "lru" });
      const swept = await sweepOnce({ db: h.db.db, env: h.env, queues, log: createLogger({ level: "silent" }), staleAfterMs: 0, exact });
      assert.deepEqual(swept, { repaired: 0, items: 0 });
    } finally {
      await Promise.all([...queues.values()].map((q) => q.close()));
      await redis.quit();
    }

    await h.startWorkers();
    const [ja, jb, jc, jd] = await Promise.all([a, b, c, d].map((r) => waitForJob(h, "acme", r.body.id, 90_000)));
    for (const j of [ja, jb, jc, jd]) assert.equal(j.status, "completed");
    assert.deepEqual(cachesOf(ja), { llm: 40 });
    assert.deepEqual(cachesOf(jb), { coalesced: 40 });
    assert.ok(jb.items.every((i: any) => i.provider === "openai" && i.model === "gpt-5-mini"), "answered by the leaders' flex model");
    assert.deepEqual(cachesOf(jd), { coalesced: 30 });
    // One LLM answer per distinct text: 40 flex + 30 realtime items.
    const llm = await queryRows<{ n: number }>(h.db.db, sql`select coalesce(sum(item_count), 0)::int as n from llm_calls where outcome = 'ok'`);
    assert.equal(llm[0]!.n, 70);

    // The flex answers filled the exact cache: the same texts again are answered at submit time.
    const e = await auto("PT1H", flexItems);
    assert.equal(e.status, 202, e.text);
    const je = await waitForJob(h, "acme", e.body.id);
    assert.deepEqual(lanesOf(je), { cache: 40 });
    assert.deepEqual(cachesOf(je), { exact: 40 });
    assert.ok(je.items.every((i: any) => /^caches \(free\): exact cache hit/.test(i.laneReason) && i.model === "gpt-5-mini"));
  });

  test("GPU-lane and batch-lane answers of lane auto fill the exact cache too", async () => {
    // The GPU workers now publish their lane's state: PT10S goes to the local engine.
    await new Promise((r) => setTimeout(r, 1_200));
    const gpuItems = items(20, "cg");
    const f = await auto("PT10S", gpuItems);
    assert.equal(f.status, 202, f.text);
    const jf = await waitForJob(h, "acme", f.body.id);
    assert.deepEqual(lanesOf(jf), { local: 20 });
    const g = await waitForJob(h, "acme", (await auto("PT10S", gpuItems)).body.id);
    assert.deepEqual(cachesOf(g), { exact: 20 });
    assert.ok(g.items.every((i: any) => i.lane === "cache" && i.provider === "vllm"), "served from the GPU lane's answers");

    const batchItems = items(120, "cb");
    const b1 = await auto("P1D", batchItems);
    assert.equal(b1.status, 202, b1.text);
    const jb1 = await waitForJob(h, "acme", b1.body.id, 90_000);
    assert.equal(jb1.status, "completed");
    assert.ok((lanesOf(jb1).batch ?? 0) > 0, JSON.stringify(lanesOf(jb1)));
    const jb2 = await waitForJob(h, "acme", (await auto("P1D", batchItems)).body.id);
    assert.deepEqual(lanesOf(jb2), { cache: 120 });
    assert.deepEqual(cachesOf(jb2), { exact: 120 });
  });
});
