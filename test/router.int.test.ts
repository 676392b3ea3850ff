/**
 * The lane router and outage handling end to end (real Redis and Postgres, the API, in-process
 * workers, the provider simulator): a lane per item for each kind of deadline, stored and shown
 * in GET /v1/jobs/:id; flex refused with a 429 falls back to the default tier; a provider outage
 * costs time, not items (they wait, or move to another provider); nothing lost or doubled.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { Queue } from "bullmq";
import { createLogger, createRedis, publishGpuStats, queryRows, realtimeQueueName, type ProviderName } from "@sieve/shared";
import { sweepOnce } from "@sieve/workers";
import { startSimulator, type Simulator } from "@sieve/simulator";
import { jobIntegrity, startHarness, waitForJob, LABELS, type Harness } from "./support/harness.js";
import { agNewsItems } from "./support/datasets.js";

function items(n: number, tag: string) {
  return agNewsItems(n).map(({ id, text }) => ({ id, text: `${text} [${tag}]` }));
}

const lanesOf = (job: any) => job.items.reduce((m: Record<string, number>, i: any) => ((m[i.lane] = (m[i.lane] ?? 0) + 1), m), {});

describe("lane router: lane auto with a deadline", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ batchLane: true, env: { SIEVE_CACHE_ENABLED: "false", SIEVE_GPU_POLL_MS: "100", SIEVE_CLASSIFY_MAX_WAIT_MS: "50" } });
    // The GPU workers publish their lane's state once a second: let the API see it.
    await new Promise((r) => setTimeout(r, 1_200));
  });
  after(async () => h.close());

  const submit = (body: Record<string, unknown>) => h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, lane: "auto", ...body });

  test("PT10S with an idle GPU lane: local; every item says its lane and why", async () => {
    const res = await submit({ deadline: "PT10S", items: items(30, "a") });
    assert.equal(res.status, 202, res.text);
    const job = await waitForJob(h, "acme", res.body.id);
    assert.equal(job.status, "completed");
    assert.equal(job.lane, "auto");
    assert.ok(job.deadline, "the deadline is shown");
    assert.deepEqual(lanesOf(job), { local: 30 });
    for (const it of job.items) {
      assert.equal(it.provider, "vllm");
      assert.match(it.laneReason, /^local GPU: done in ~.* within 10 s$/);
    }
  });

  test("PT1H, more than the short local queue takes: the rest goes to OpenAI flex, priced at batch rates", async () => {
    const res = await submit({ deadline: "PT1H", items: items(300, "b") });
    assert.equal(res.status, 202, res.text);
    const job = await waitForJob(h, "acme", res.body.id);
    assert.equal(job.status, "completed");
    const lanes = lanesOf(job);
    assert.ok(lanes.flex > 0 && (lanes.flex ?? 0) + (lanes.local ?? 0) === 300, JSON.stringify(lanes));
    const flex = job.items.filter((i: any) => i.lane === "flex");
    assert.ok(flex.every((i: any) => i.provider === "openai" && i.model === "gpt-5-mini" && /OpenAI flex processing at batch price/.test(i.laneReason)));
    const calls = await queryRows<{ lane: string; n: number }>(h.db.db, sql`select lane, count(*)::int as n from llm_calls where model = 'gpt-5-mini' group by lane`);
    assert.deepEqual(calls.map((c) => c.lane), ["flex"]);
    assert.deepEqual(Object.values(await jobIntegrity(h, res.body.id)), [300, 300, 300, 300]);
  });

  test("flex refused with a 429 (resource unavailable): answered at the default tier and priced as such", async () => {
    h.sim.setFaults({ flexRate429: 1 });
    try {
      const res = await submit({ deadline: "PT2H", items: items(200, "c") });
      const job = await waitForJob(h, "acme", res.body.id);
      assert.equal(job.status, "completed");
      assert.ok(lanesOf(job).flex > 0);
      const calls = await queryRows<{ lane: string; outcome: string }>(
        h.db.db,
        sql`select distinct c.lane, c.outcome from llm_calls c join results r on r.llm_call_id = c.id where r.job_id = ${res.body.id} and c.provider = 'openai'`,
      );
      assert.deepEqual(calls, [{ lane: "realtime", outcome: "ok" }], "flex fell back to the default tier");
      assert.deepEqual(Object.values(await jobIntegrity(h, res.body.id)), [200, 200, 200, 200]);
    } finally {
      h.sim.setFaults({});
    }
  });

  test("P1D: the provider Batch API beyond the short local queue", async () => {
    const res = await submit({ deadline: "P1D", items: items(200, "d") });
    assert.equal(res.status, 202, res.text);
    const job = (await h.call("acme", "GET", `/v1/jobs/${res.body.id}`)).body;
    const lanes = lanesOf(job);
    assert.ok(lanes.batch > 0 && (lanes.batch ?? 0) + (lanes.local ?? 0) === 200, JSON.stringify(lanes));
    const queued = await queryRows<{ n: number }>(h.db.db, sql`select count(*)::int as n from batch_items where job_id = ${res.body.id}`);
    assert.equal(queued[0]!.n, lanes.batch, "batch items wait for the batch packer");
  });

  test("deadlines that cannot be met, or cannot be read, are refused up front naming the field", async () => {
    const short = await submit({ deadline: "PT1S", items: items(5, "e") });
    assert.equal(short.status, 422);
    assert.match(short.body.error.message, /^deadline: no lane answers .* within 1 s/);
    const bad = await submit({ deadline: "tomorrow", items: items(5, "e") });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /^deadline: /);
    const missing = await submit({ items: items(5, "e") });
    assert.equal(missing.status, 400);
    assert.match(missing.body.error.message, /^deadline: is required with lane "auto"/);
    const pinned = await submit({ deadline: "PT1H", provider: "openai", items: items(5, "e") });
    assert.equal(pinned.status, 400);
    assert.match(pinned.body.error.message, /^provider: not allowed with lane "auto"/);
  });

  test("lane realtime keeps working and is labelled as requested", async () => {
    const res = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items: items(10, "f") });
    const job = await waitForJob(h, "acme", res.body.id);
    assert.equal(job.status, "completed");
    assert.ok(job.items.every((i: any) => i.lane === "realtime" && i.laneReason === "requested" && i.provider === "openai"));
  });
});

describe("provider outages cost time, not items", () => {
  let h: Harness;
  let anthropic: Simulator;
  before(async () => {
    // A second simulator for Anthropic, so OpenAI can be down while Anthropic is up.
    anthropic = await startSimulator();
    h = await startHarness({ env: { ANTHROPIC_BASE_URL: anthropic.url, SIEVE_CACHE_ENABLED: "false", SIEVE_MAX_ATTEMPTS: "2", SIEVE_RETRY_BASE_MS: "200", SIEVE_CLASSIFY_MAX_ITEMS: "10" } });
  });
  after(async () => {
    await h.close();
    await anthropic.close();
  });

  test("OpenAI down for the whole run: its breaker opens and the items move to Anthropic; none fails", async () => {
    h.sim.setFaults({ rate5xx: 1 });
    try {
      const res = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items: items(200, "g") });
      const job = await waitForJob(h, "acme", res.body.id, 90_000);
      assert.equal(job.status, "completed");
      assert.ok(job.items.every((i: any) => i.status === "ok" && i.provider === "anthropic"), "answered by the next provider");
      assert.ok(job.items.every((i: any) => / -> moved to anthropic:claude-haiku-4-5: openai is down/.test(i.laneReason)));
      assert.deepEqual(Object.values(await jobIntegrity(h, res.body.id)), [200, 200, 200, 200]);
      // The breaker kept waiting parcels from hammering OpenAI: a handful of calls, not hundreds.
      const tried = await queryRows<{ n: number }>(h.db.db, sql`select count(*)::int as n from llm_calls where provider = 'openai' and outcome = 'server_error'`);
      assert.ok(tried[0]!.n <= 40, `OpenAI calls during the outage: ${tried[0]!.n}`);
    } finally {
      h.sim.setFaults({});
    }
  });

  test("no other provider to move to: items wait out an outage far longer than the attempts allowed, then all answer", async () => {
    // Both providers down (the old policy: 2 attempts 200 ms apart, then provider_unavailable).
    h.sim.setFaults({ rate5xx: 1 });
    anthropic.setFaults({ rate5xx: 1 });
    const res = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items: items(60, "h") });
    await new Promise((r) => setTimeout(r, 12_000));
    const during = (await h.call("acme", "GET", `/v1/jobs/${res.body.id}`)).body;
    assert.equal(during.counts.failed, 0, "nothing failed during the outage");
    h.sim.setFaults({});
    anthropic.setFaults({});
    const job = await waitForJob(h, "acme", res.body.id, 120_000);
    assert.equal(job.status, "completed");
    assert.deepEqual(Object.values(await jobIntegrity(h, res.body.id)), [60, 60, 60, 60]);
  });
});

describe("the sweeper and lane-auto jobs whose parcels sit on several queues", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ workers: false, env: { SIEVE_CACHE_ENABLED: "false" } });
  });
  after(async () => h.close());

  test("parcels lost from Redis are re-enqueued per item route (GPU and flex), then answered once each", async () => {
    const redis = createRedis(h.env.REDIS_URL, "producer");
    const queues = new Map(["openai", "anthropic", "vllm"].map((p) => [p as ProviderName, new Queue(realtimeQueueName(p as ProviderName), { connection: redis, prefix: h.env.SIEVE_QUEUE_PREFIX })]));
    try {
      // What a GPU worker publishes (router/laneStats.ts): 50 items/s, one healthy engine.
      await publishGpuStats(redis, h.env.SIEVE_QUEUE_PREFIX, "test-gpu-worker", { itemsPerS: 50, healthyEngines: 1, capacity: 8 });
      const res = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, lane: "auto", deadline: "PT1H", items: items(200, "s") });
      assert.equal(res.status, 202, res.text);
      const before = lanesOf((await h.call("acme", "GET", `/v1/jobs/${res.body.id}`)).body);
      assert.ok(before.local > 0 && before.flex > 0, JSON.stringify(before));
      // Lose every parcel (as if Redis had lost them), then sweep.
      for (const q of queues.values()) await q.obliterate({ force: true });
      const out = await sweepOnce({ db: h.db.db, env: h.env, queues, log: createLogger({ level: "silent" }), staleAfterMs: 0 });
      assert.deepEqual(out, { repaired: 1, items: 200 });
      const repaired = await Promise.all([...queues.entries()].map(async ([p, q]) => [p, (await q.getJob(`${res.body.id}-repair`))?.data?.items.length ?? 0]));
      assert.deepEqual(Object.fromEntries(repaired), { openai: before.flex, anthropic: 0, vllm: before.local });
      assert.equal((await queues.get("openai")!.getJob(`${res.body.id}-repair`))!.data.tier, "flex");
      await h.startWorkers();
      const job = await waitForJob(h, "acme", res.body.id);
      assert.equal(job.status, "completed");
      for (const it of job.items) assert.equal(it.provider, it.lane === "local" ? "vllm" : "openai");
      assert.deepEqual(Object.values(await jobIntegrity(h, res.body.id)), [200, 200, 200, 200]);
    } finally {
      await Promise.all([...queues.values()].map((q) => q.close()));
      await redis.quit();
    }
  });
});
