/**
 * The provider Batch API lane end to end, on real Redis + Postgres, with the real OpenAI
 * and Anthropic SDKs talking to the simulator's Files/Batches and Message Batches APIs: both
 * providers, splitting under limits, expiry with partial output, cancellation, all-failed batches,
 * malformed output lines, admission at the provider's enqueued-token limit, a crash between
 * create and its database write (adopted, not resubmitted), settling twice (cost once), vLLM
 * routed to realtime, tenant scoping of /v1/batches, and Redis not growing with waiting items.
 * About 90 s.
 */
import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { DEFAULT_PRICES, TaskParams, costUsd, createLogger, createRedis, loadPriceTable, providerEndpoints, queryOne, queryRows } from "@sieve/shared";
import { getBatchRow, updateBatch } from "@sieve/shared/db/ops/batchLane";
import { requestsPage } from "@sieve/workers/batch/db/batchRows";
import { waitingKeys } from "@sieve/workers/batch/db/packing";
import { createBatchApis } from "@sieve/workers/providers/index";
import { batchRefOf } from "@sieve/workers/batch/batchRef";
import { prepareBatch, packOnce } from "@sieve/workers/batch/packer";
import { settleBatch } from "@sieve/workers/batch/settle";
import type { LaneDeps } from "@sieve/workers/batch/laneDeps";
import { startHarness, waitForJob, LABELS, type Harness } from "./support/harness.js";
import { agNewsItems } from "./support/datasets.js";

const ITEMS = agNewsItems(2_000).map(({ id, text }) => ({ id, text }));
let uniq = 0;
/** Items with texts never seen before in this file (so no cache answers them). */
function fresh(n: number, tag: string) {
  uniq++;
  return ITEMS.slice(0, n).map((it, i) => ({ id: `${tag}-${i}`, text: `${it.text} [${tag} ${uniq}]` }));
}

async function bulk(h: Harness, tenant: string, head: Record<string, unknown>, items: Array<{ id: string; text: string }>) {
  const body = [JSON.stringify({ task: "classify", labels: LABELS, lane: "batch", ...head }), ...items.map((i) => JSON.stringify(i))].join("\n");
  const res = await fetch(`${h.api.url}/v1/bulk`, { method: "POST", headers: { authorization: `Bearer ${h.keys[tenant]}`, "content-type": "application/x-ndjson" }, body });
  const json: any = await res.json();
  assert.equal(res.status, 202, JSON.stringify(json));
  return json;
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The lane's invariants after a job finished: one result per item, one llm_calls row per settled request, cost once. */
async function assertLedger(h: Harness, jobId: string) {
  const r = await queryOne<{ items: number; results: number; distinct: number }>(
    h.db.db,
    sql`select (select count(*)::int from items where job_id = ${jobId}) as items, count(*)::int as results, count(distinct item_id)::int as distinct from results where job_id = ${jobId}`,
  );
  assert.equal(r.results, r.items, "one result or error per item");
  assert.equal(r.distinct, r.items);
  const led = await queryOne<{ reqs: number; settled: number; calls: number; linked: number; dupes: number; callCost: string; batchCost: string }>(
    h.db.db,
    sql`select (select count(*)::int from batch_requests) as reqs,
               (select count(*)::int from batch_requests where settled_at is not null) as settled,
               (select count(*)::int from llm_calls where lane = 'batch') as calls,
               (select count(distinct llm_call_id)::int from batch_requests where llm_call_id is not null) as linked,
               (select count(*)::int from (select request_id from llm_calls where lane = 'batch' group by request_id having count(*) > 1) d) as dupes,
               (select coalesce(sum(cost_usd), 0)::text from llm_calls where lane = 'batch') as "callCost",
               (select coalesce(sum(cost_usd), 0)::text from provider_batches) as "batchCost"`,
  );
  assert.equal(led.calls, led.linked, "every batch llm_calls row belongs to exactly one request");
  assert.equal(led.dupes, 0, "no request recorded twice");
  assert.ok(Math.abs(Number(led.callCost) - Number(led.batchCost)) < 1e-6, `call costs ${led.callCost} = batch totals ${led.batchCost}`);
  const left = await queryOne<{ n: number }>(h.db.db, sql`select count(*)::int as n from batch_items where job_id = ${jobId}`);
  assert.equal(left.n, 0, "no item of a finished job still queued");
}

/** Runs `fn` with the in-process workers (packer, poller) stopped; they are started again afterwards whatever happens. */
async function withoutWorkers<T>(h: Harness, fn: () => Promise<T>): Promise<T> {
  await h.workers!.close();
  try {
    return await fn();
  } finally {
    await h.startWorkers();
  }
}

describe("provider Batch API lane", () => {
  let h: Harness;
  let deps: LaneDeps;
  before(async () => {
    h = await startHarness({
      batchLane: true,
      batchKnobs: { phaseMs: 150, seed: 4 },
      env: { SIEVE_BATCH_MAX_REQUESTS: "8", SIEVE_BATCH_CLASSIFY_MAX_ITEMS: "25", SIEVE_BATCH_MAX_ATTEMPTS: "3", SIEVE_CACHE_ENABLED: "false" },
    });
    deps = {
      env: h.env,
      db: h.db.db,
      log: createLogger({ level: "silent" }),
      prices: loadPriceTable(undefined),
      apis: createBatchApis(providerEndpoints(h.env)),
      owner: "test",
      backoffUntil: new Map(),
      capacityHint: new Map(),
    };
  });
  after(async () => h.close());
  // A failed test must not leave its fault knobs on for the next one.
  afterEach(() => h.sim.setBatchKnobs({ phaseMs: 150 }));

  test("both providers: split into batches under the request limit, every item answered, calls and costs add up", async () => {
    const oa = fresh(600, "oa");
    const viaJobs = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, lane: "batch", provider: "openai", items: oa.slice(0, 300) });
    assert.equal(viaJobs.status, 202, viaJobs.text);
    const viaBulk = await bulk(h, "acme", { provider: "openai" }, oa.slice(300));
    const an = await bulk(h, "acme", { provider: "anthropic" }, fresh(500, "an"));
    for (const id of [viaJobs.body.id, viaBulk.id, an.id]) {
      const job = await waitForJob(h, "acme", id, 90_000);
      assert.equal(job.status, "completed", JSON.stringify(job.counts));
      assert.ok(job.items.every((i: any) => i.status === "ok" && LABELS.includes(i.output.label) && i.provider === job.provider));
      await assertLedger(h, id);
    }
    const batches = await queryRows<{ provider: string; n: number; maxReqs: number }>(
      h.db.db,
      sql`select provider, count(*)::int as n, max(request_count)::int as "maxReqs" from provider_batches where state = 'settled' group by provider`,
    );
    for (const b of batches) assert.ok(b.maxReqs <= 8, `${b.provider}: at most SIEVE_BATCH_MAX_REQUESTS requests per batch`);
    assert.ok(batches.find((b) => b.provider === "anthropic")!.n >= 3, "500 items / 25 per request / 8 requests per batch -> 3 batches");
    // Cost at the batch price: half the list price of the same tokens.
    const calls = await queryRows<{ model: string; inputTokens: number; outputTokens: number; cachedInputTokens: number; cacheWriteTokens: number; costUsd: string; requestId: string }>(
      h.db.db,
      sql`select model, input_tokens as "inputTokens", output_tokens as "outputTokens", cached_input_tokens as "cachedInputTokens", cache_write_tokens as "cacheWriteTokens", cost_usd as "costUsd", request_id as "requestId" from llm_calls where lane = 'batch'`,
    );
    for (const c of calls) {
      const list = costUsd(DEFAULT_PRICES, c.model, c).usd;
      assert.ok(Math.abs(Number(c.costUsd) - list / 2) < 1e-7, `batch price is half the list price (${c.costUsd} vs ${list})`);
      assert.match(c.requestId, /^[a-zA-Z0-9_-]{1,64}$/, "custom_id format");
    }
    const sim = h.sim.batchStats();
    const sent = await queryOne<{ oa: number; an: number }>(
      h.db.db,
      sql`select coalesce(sum(request_count) filter (where provider = 'openai'), 0)::int as oa, coalesce(sum(request_count) filter (where provider = 'anthropic'), 0)::int as an from provider_batches where provider_batch_id is not null`,
    );
    assert.equal(sim.openai.requests.processed, sent.oa, "the provider ran each request once");
    assert.equal(sim.anthropic.requests.processed, sent.an);
  });

  test("GET /v1/batches shows a tenant only batches holding its items", async () => {
    const mine = await h.call("acme", "GET", "/v1/batches?limit=500");
    assert.equal(mine.status, 200);
    assert.ok(mine.body.batches.length >= 5);
    const b = mine.body.batches[0];
    for (const k of ["id", "provider", "model", "state", "providerBatchId", "counts", "tokens", "costUsd"]) assert.ok(k in b, `field ${k}`);
    const one = await h.call("acme", "GET", `/v1/batches/${b.id}`);
    assert.equal(one.status, 200);
    assert.ok(one.body.requestOutcomes);
    const theirs = await h.call("globex", "GET", "/v1/batches");
    assert.deepEqual(theirs.body.batches, []);
    assert.equal((await h.call("globex", "GET", `/v1/batches/${b.id}`)).status, 404);
    assert.equal((await h.call("globex", "POST", `/v1/batches/${b.id}/cancel`)).status, 404);
    assert.equal((await h.call("acme", "POST", `/v1/batches/${b.id}/cancel`)).status, 409, "an ended batch cannot be cancelled");
  });

  test("expiry with partial output: the finished part is kept (and billed), only the rest is resubmitted", async () => {
    h.sim.setBatchKnobs({ phaseMs: 150, expireFraction: 1, expiredDoneFraction: 0.5, seed: 5 });
    const job = await bulk(h, "acme", { provider: "openai" }, fresh(200, "exp"));
    const first = await until("an expiring batch", async () => (await queryRows<{ id: number }>(h.db.db, sql`select id from provider_batches where provider_batch_id is not null and state <> 'settled' order by id desc limit 1`))[0]);
    h.sim.setBatchKnobs({ phaseMs: 150 });
    const done = await waitForJob(h, "acme", job.id, 90_000);
    assert.equal(done.status, "completed");
    await assertLedger(h, job.id);
    const b = (await getBatchRow(h.db.db, Number(first.id)))!;
    assert.equal(b.providerStatus, "expired");
    assert.ok(b.okItems > 0 && b.retriedItems > 0, `partial: ${b.okItems} kept, ${b.retriedItems} resubmitted`);
    assert.ok(Number(b.costUsd) > 0, "the finished part is billed");
    const out = await queryRows<{ outcome: string; n: number }>(h.db.db, sql`select outcome, count(*)::int as n from batch_requests where batch_id = ${b.id} group by outcome`);
    assert.ok(out.some((o) => o.outcome === "expired"), JSON.stringify(out));
    const attempts = await queryOne<{ n: number }>(h.db.db, sql`select count(*)::int as n from provider_batches where id > ${b.id} and provider = 'openai'`);
    assert.ok(attempts.n >= 1, "the expired items went out again");
  });

  test("all requests failed, every time: each item ends with its own error after SIEVE_BATCH_MAX_ATTEMPTS batches", async () => {
    h.sim.setBatchKnobs({ phaseMs: 100, failAllFraction: 1 });
    const job = await bulk(h, "globex", { provider: "anthropic" }, fresh(60, "fail"));
    const done = await waitForJob(h, "globex", job.id, 90_000);
    h.sim.setBatchKnobs({ phaseMs: 150 });
    assert.equal(done.status, "failed");
    assert.equal(done.items.length, 60);
    for (const it of done.items) {
      assert.equal(it.status, "error");
      assert.equal(it.error.code, "batch_request_failed");
      assert.match(it.error.message, /after 3 provider batch\(es\)/);
    }
    await assertLedger(h, job.id);
    const batches = await queryOne<{ n: number }>(h.db.db, sql`select count(distinct b.id)::int as n from provider_batches b where ${"globex"} = any(b.tenant_ids)`);
    assert.ok(batches.n >= 3, "three attempts, each in a new batch");
  });

  test("malformed output lines: their requests' items are resubmitted; nothing is lost", async () => {
    h.sim.setBatchKnobs({ phaseMs: 100, malformedLineRate: 0.25, seed: 9 });
    const job = await bulk(h, "acme", { provider: "openai" }, fresh(300, "mal"));
    const done = await waitForJob(h, "acme", job.id, 90_000);
    h.sim.setBatchKnobs({ phaseMs: 150 });
    await assertLedger(h, job.id);
    const missing = await queryOne<{ n: number }>(h.db.db, sql`select count(*)::int as n from batch_requests r join provider_batches b on b.id = r.batch_id where r.outcome = 'missing' and b.provider = 'openai'`);
    assert.ok(missing.n > 0, "some requests had only a malformed line");
    for (const it of done.items.filter((i: any) => i.status === "error")) assert.equal(it.error.code, "batch_output_missing");
    assert.ok(done.items.filter((i: any) => i.status === "ok").length >= 280, "most items recover on resubmission");
  });

  test("cancellation: POST /v1/batches/:id/cancel cancels at the provider; unfinished items are resubmitted", async () => {
    h.sim.setBatchKnobs({ phaseMs: 60_000 });
    const job = await bulk(h, "acme", { provider: "anthropic" }, fresh(100, "cxl"));
    const row = await until("a submitted batch", async () => (await queryRows<{ id: number }>(h.db.db, sql`select id from provider_batches where state = 'submitted' and provider = 'anthropic' order by id desc limit 1`))[0]);
    const res = await h.call("acme", "POST", `/v1/batches/${row.id}/cancel`);
    assert.equal(res.status, 202, res.text);
    await until("cancelling at the provider", async () => (await getBatchRow(h.db.db, Number(row.id)))?.providerStatus === "canceling", 10_000);
    h.sim.setBatchKnobs({ phaseMs: 150 });
    const done = await waitForJob(h, "acme", job.id, 90_000);
    assert.equal(done.status, "completed");
    await assertLedger(h, job.id);
    const b = (await getBatchRow(h.db.db, Number(row.id)))!;
    assert.equal(b.providerStatus, "cancelled");
    assert.equal(b.retriedItems, 100);
    assert.ok(h.sim.batchStats().anthropic.requests.cancelled >= 4);
  });

  test("admission: at the provider's enqueued-token limit items wait (never fail) and go out as capacity frees", async () => {
    // Room for about one batch at a time (8 requests x ~1,000 tokens).
    h.sim.setBatchKnobs({ phaseMs: 150, enqueuedTokenLimit: { "*": 12_000 } });
    const job = await bulk(h, "acme", { provider: "openai" }, fresh(800, "adm"));
    let done;
    try {
      done = await waitForJob(h, "acme", job.id, 120_000);
    } finally {
      h.sim.setBatchKnobs({ phaseMs: 150 });
    }
    assert.equal(done.status, "completed");
    await assertLedger(h, job.id);
    const refused = await queryOne<{ n: number }>(h.db.db, sql`select count(*)::int as n from provider_batches where state = 'abandoned' and last_error like 'provider at capacity%'`);
    assert.ok(refused.n > 0 || h.sim.batchStats().openai.rejected > 0, "the provider's limit was hit at least once");
    const failedItems = done.items.filter((i: any) => i.status !== "ok");
    assert.equal(failedItems.length, 0, "waiting is not failing");
  });

  test("crash between create and its database write: the batch is adopted, not submitted twice", async () => {
    for (const provider of ["openai", "anthropic"] as const) {
      const api = deps.apis.get(provider)!;
      const before = h.sim.batchStats()[provider].created;
      // No packer or poller while the crash is staged.
      const staged = await withoutWorkers(h, async () => {
        const job = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, lane: "batch", provider, items: fresh(60, `crash-${provider}`) });
        assert.equal(job.status, 202);
        const key = (await waitingKeys(h.db.db, provider))[0]!;
        const prepared = (await prepareBatch(deps, api, key, TaskParams.parse({ task: "classify", labels: LABELS }), 1e9))!;
        let row = (await getBatchRow(h.db.db, prepared.id))!;
        // What submit does, minus the last database write (the process "dies" right after create).
        const lines = async function* () {
          for (const r of await requestsPage(h.db.db, row.id, -1, 1000)) {
            yield api.render({ customId: r.customId, model: row.model, params: TaskParams.parse(row.params), items: r.texts.map((t, i) => ({ id: `i${i + 1}`, text: t! })) }).text;
          }
        };
        if (api.upload) {
          const up = await api.upload(batchRefOf(row), lines);
          await updateBatch(h.db.db, row.id, { state: "uploaded", inputFileId: up.fileId });
          row = (await getBatchRow(h.db.db, row.id))!;
        }
        await updateBatch(h.db.db, row.id, { state: "submitting", submittingAt: new Date() });
        row = (await getBatchRow(h.db.db, row.id))!;
        const createdId = await api.create(batchRefOf(row), lines);
        assert.equal(h.sim.batchStats()[provider].created, before + 1);
        return { jobId: job.body.id as string, rowId: row.id, createdId };
      });
      // Restarted workers: the poller finds "submitting", looks the batch up and adopts it.
      const done = await waitForJob(h, "acme", staged.jobId, 60_000);
      assert.equal(done.status, "completed");
      const after = (await getBatchRow(h.db.db, staged.rowId))!;
      assert.equal(after.providerBatchId, staged.createdId, `${provider}: the created batch was adopted`);
      assert.equal(h.sim.batchStats()[provider].created, before + 1, `${provider}: not created a second time`);
      await assertLedger(h, staged.jobId);
    }
  });

  test("settling the same ended batch twice at once records each request's cost once", async () => {
    const jobId = await withoutWorkers(h, async () => {
      const job = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, lane: "batch", provider: "openai", items: fresh(120, "twice") });
      const packed = await packOnce(deps);
      const id = packed.batches[0]!;
      const api = deps.apis.get("openai")!;
      let row = (await getBatchRow(h.db.db, id))!;
      const st = await until("the batch to end", async () => {
        const s = await api.retrieve(row.providerBatchId!);
        return s.end ? s : undefined;
      });
      await updateBatch(h.db.db, id, { state: "ended", providerStatus: st.end!, ...(st.outputFileId ? { outputFileId: st.outputFileId } : {}), ...(st.errorFileId ? { errorFileId: st.errorFileId } : {}) });
      row = (await getBatchRow(h.db.db, id))!;
      const [a, b] = await Promise.all([settleBatch(deps, api, row), settleBatch(deps, api, row)]);
      assert.equal(a.requests + b.requests, row.requestCount, "each request settled by exactly one of the two");
      const again = await settleBatch(deps, api, row);
      assert.equal(again.requests, 0, "a third settle finds nothing to do");
      const calls = await queryOne<{ n: number }>(h.db.db, sql`select count(*)::int as n from llm_calls where provider_batch_id = ${row.providerBatchId}`);
      assert.equal(calls.n, row.requestCount);
      return job.body.id as string;
    });
    const done = await waitForJob(h, "acme", jobId, 60_000);
    assert.equal(done.status, "completed");
    await assertLedger(h, jobId);
  });

  test("vLLM has no batch API: its batch-lane items go through the realtime lane", async () => {
    const viaBulk = await bulk(h, "acme", { provider: "vllm" }, fresh(40, "vb"));
    assert.equal(viaBulk.lane, "realtime");
    assert.match(viaBulk.notice, /no batch API/);
    const viaJobs = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, lane: "batch", provider: "vllm", items: fresh(40, "vj") });
    assert.equal(viaJobs.status, 202);
    for (const id of [viaBulk.id, viaJobs.body.id]) {
      const done = await waitForJob(h, "acme", id, 60_000);
      assert.equal(done.status, "completed");
      assert.equal(done.lane, "realtime");
    }
  });

  test("items waiting for the batch lane wait in Postgres: Redis does not grow with them", async () => {
    const redis = createRedis(h.env.REDIS_URL, "producer");
    try {
      const count = async () => (await redis.keys(`${h.env.SIEVE_QUEUE_PREFIX}:*`)).length;
      const jobId = await withoutWorkers(h, async () => {
        const keysBefore = await count();
        const job = await bulk(h, "acme", { provider: "openai" }, fresh(2_000, "mem"));
        await bulk(h, "acme", { provider: "openai" }, fresh(2_000, "mem2"));
        const waiting = await queryOne<{ n: number }>(h.db.db, sql`select count(*)::int as n from batch_items where state = 'waiting'`);
        assert.ok(waiting.n >= 4_000);
        assert.ok((await count()) - keysBefore <= 5, "a few housekeeping keys at most, not one per item");
        return job.id as string;
      });
      const done = await waitForJob(h, "acme", jobId, 90_000);
      assert.equal(done.status, "completed");
    } finally {
      await redis.quit();
    }
  });
});
