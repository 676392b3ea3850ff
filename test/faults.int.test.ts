/**
 * Fault tests: dropped items, truncated JSON, 429 with Retry-After, 500s, a poison item, and a
 * worker SIGKILLed in the middle of a call. In every case each item ends with exactly one result
 * or one explicit error, none is lost, and the counts add up.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { sql } from "drizzle-orm";
import { queryOne, queryRows } from "@sieve/shared";
import { startHarness, waitForJob, LABELS, type Harness } from "./support/harness.js";
import { agNewsItems } from "./support/datasets.js";

async function resultCounts(h: Harness) {
  const [row] = await queryRows<{ items: number; results: number; distinct: number; ok: number; errors: number }>(
    h.db.db,
    sql`select (select count(*)::int from items) as items, count(*)::int as results, count(distinct item_id)::int as distinct,
               count(*) filter (where status = 'ok')::int as ok, count(*) filter (where status = 'error')::int as errors from results`,
  );
  return row!;
}

function assertJobAddsUp(job: any) {
  const ok = job.items.filter((i: any) => i.status === "ok").length;
  const err = job.items.filter((i: any) => i.status === "error").length;
  assert.equal(ok + err, job.counts.items, "every item ended");
  assert.equal(job.counts.done, job.counts.items);
  assert.equal(job.counts.failed, err);
  assert.equal(job.counts.succeeded, ok);
  for (const i of job.items.filter((x: any) => x.status === "error")) {
    assert.ok(i.error.code && i.error.message, "an error says what went wrong");
  }
}

describe("faults injected by the simulator", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: { SIEVE_CLASSIFY_MAX_ITEMS: "20", SIEVE_CLASSIFY_MAX_WAIT_MS: "100", SIEVE_MAX_ATTEMPTS: "8", SIEVE_RETRY_BASE_MS: "100" } });
  });
  after(async () => h.close());

  test("dropped items and truncated JSON: neighbours keep their answers, missing ones are retried by splitting", async () => {
    h.sim.setFaults({ rateDropItem: 0.5, rateDuplicateItem: 0.2, rateBadValue: 0.2, rateTruncated: 0.15, seed: 7 });
    const items = agNewsItems(200).map(({ id, text }) => ({ id, text }));
    const res = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items });
    assert.equal(res.status, 202);
    const job = await waitForJob(h, "acme", res.body.id);
    h.sim.setFaults({});
    assertJobAddsUp(job);
    const ok = job.items.filter((i: any) => i.status === "ok").length;
    assert.ok(ok >= 190, `split retries recover nearly everything (ok=${ok})`);
    const { splits } = await queryOne<{ splits: number }>(h.db.db, sql`select count(*)::int as splits from llm_calls where item_count < 20`);
    assert.ok(splits > 0, "failed items were retried in smaller calls");
  });

  test("one poison item ends with its own error; its neighbours succeed", async () => {
    const items = agNewsItems(30).map(({ id, text }) => ({ id, text }));
    items[13] = { id: "poison", text: "this item is SIM_POISON and is never answered" };
    const res = await h.call("acme", "POST", "/v1/jobs?wait=30s", { task: "classify", labels: LABELS, items });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.status, "partial");
    assertJobAddsUp(res.body);
    const poison = res.body.items.find((i: any) => i.id === "poison");
    assert.equal(poison.status, "error");
    assert.equal(poison.error.code, "item_missing");
    assert.equal(res.body.items.filter((i: any) => i.status === "ok").length, 29);
  });

  test("429 with Retry-After is honoured, 500s are retried with backoff: everything completes", async () => {
    // 400 items -> at least 20 calls: with these rates both faults occur (p(no 5xx) < 0.001).
    h.sim.setFaults({ rate429: 0.25, retryAfterS: 1, rate5xx: 0.35, seed: 11 });
    const items = agNewsItems(400).map(({ id, text }) => ({ id, text }));
    const t0 = Date.now();
    const res = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items });
    const job = await waitForJob(h, "acme", res.body.id, 90_000);
    h.sim.setFaults({});
    assertJobAddsUp(job);
    assert.equal(job.status, "completed");
    const { rl, s5 } = await queryOne<{ rl: number; s5: number }>(
      h.db.db,
      sql`select count(*) filter (where outcome = 'rate_limited')::int as rl, count(*) filter (where outcome = 'server_error')::int as s5 from llm_calls`,
    );
    assert.ok(rl > 0 && s5 > 0, `faults happened and were recorded (429: ${rl}, 5xx: ${s5})`);
    assert.ok(Date.now() - t0 >= 1_000);
  });

  test("after a 429 the parcel waits at least Retry-After before its next call", async () => {
    // One item, so every call after the 429 is that parcel's retry. The ledger has when each call
    // was sent (created_at, written before sending) and when its outcome landed (completed_at).
    const { id: floor } = await queryOne<{ id: number }>(h.db.db, sql`select coalesce(max(id), 0)::int as id from llm_calls`);
    h.sim.setFaults({ rate429: 1, retryAfterS: 2 });
    const res = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items: [{ id: "ra", text: "Rate limited headline about tariffs" }] });
    assert.equal(res.status, 202, res.text);
    const deadline = Date.now() + 30_000;
    let limited = 0;
    while (limited === 0 && Date.now() < deadline) {
      ({ n: limited } = await queryOne<{ n: number }>(h.db.db, sql`select count(*)::int as n from llm_calls where id > ${floor} and outcome = 'rate_limited'`));
      if (limited === 0) await new Promise((r) => setTimeout(r, 10));
    }
    h.sim.setFaults({});
    assert.equal(limited, 1, "one 429");
    const job = await waitForJob(h, "acme", res.body.id, 60_000);
    assert.equal(job.status, "completed");
    const calls = await queryRows<{ outcome: string; sent: string; landed: string }>(
      h.db.db,
      sql`select outcome, (extract(epoch from created_at) * 1000)::float8::text as sent, (extract(epoch from completed_at) * 1000)::float8::text as landed
          from llm_calls where id > ${floor} order by id`,
    );
    assert.equal(calls.length, 2, JSON.stringify(calls));
    assert.equal(calls[0]!.outcome, "rate_limited");
    assert.equal(calls[1]!.outcome, "ok");
    const waited = Number(calls[1]!.sent) - Number(calls[0]!.landed);
    // The 429 is recorded a few ms after it arrived: allow that much below the 2 s.
    assert.ok(waited >= 1_900, `the retry went out ${Math.round(waited)} ms after the 429 (Retry-After: 2 s)`);
  });

  test("a provider that keeps failing: items end with an explicit error once their deadline has passed", async () => {
    // Retries are bounded by the deadline (or SIEVE_RETRY_WINDOW_MS, at least 10 min, without one).
    h.sim.setFaults({ rate5xx: 1 });
    const res = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, deadline: "PT6S", items: [{ id: "a", text: "x" }, { id: "b", text: "y" }] });
    const job = await waitForJob(h, "acme", res.body.id, 120_000);
    h.sim.setFaults({});
    assert.equal(job.status, "failed");
    assertJobAddsUp(job);
    for (const it of job.items) assert.equal(it.error.code, "provider_unavailable");
    const c = await resultCounts(h);
    assert.equal(c.results, c.distinct, "never two results for one item");
  });
});

describe("a worker SIGKILLed in the middle of a call", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ workers: false, faults: { latencyMs: 1500 }, env: { SIEVE_CLASSIFY_MAX_ITEMS: "20", SIEVE_CLASSIFY_MAX_WAIT_MS: "50" } });
  });
  after(async () => h.close());

  test("its parcels are picked up by the next worker; no item is lost or answered twice", async () => {
    const first = h.spawnWorkerProcess({ TEST_LOCK_MS: "2000" });
    const items = agNewsItems(100).map(({ id, text }) => ({ id, text }));
    const res = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items });
    assert.equal(res.status, 202);
    // Wait until the worker has calls in flight at the provider, then kill it without warning.
    const deadline = Date.now() + 30_000;
    const sent = () => h.sim.stats().requests["POST /v1/chat/completions"] ?? 0;
    while (sent() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(sent() > 0, "calls were in flight (the simulator answers after 1.5 s)");
    first.kill("SIGKILL");
    await once(first, "exit");
    const second = h.spawnWorkerProcess({ TEST_LOCK_MS: "2000" });
    const job = await waitForJob(h, "acme", res.body.id, 60_000);
    assert.equal(job.status, "completed");
    assertJobAddsUp(job);
    const c = await resultCounts(h);
    assert.equal(c.results, 100);
    assert.equal(c.distinct, 100);
    second.kill("SIGTERM");
    await once(second, "exit");
  });
});
