/**
 * The batch lane at volume: 100,000 items through BOTH providers (50,000 each, uploaded
 * with POST /v1/bulk), processed by two worker processes that are SIGKILLed and restarted several
 * times in the middle of the run. Afterwards: exactly one result per item, every provider request
 * recorded exactly once (llm_calls = settled batch requests), costs adding up, and the simulator
 * ran each request once (nothing submitted twice). Slow: about 2-3 minutes on 2 cores.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import type { ChildProcess } from "node:child_process";
import { sql } from "drizzle-orm";
import { queryOne, queryRows } from "@sieve/shared";
import { startHarness, LABELS, type Harness } from "./support/harness.js";
import { agNewsItems } from "./support/datasets.js";

const PER_PROVIDER = Number(process.env.SIEVE_SCALE_ITEMS ?? 50_000);

function body(provider: string, n: number): string {
  const base = agNewsItems();
  const lines = [JSON.stringify({ task: "classify", labels: LABELS, lane: "batch", provider })];
  for (let i = 0; i < n; i++) {
    const b = base[i % base.length]!;
    // AG News has 7,600 test rows: repeated with a suffix to reach the count.
    lines.push(JSON.stringify({ id: `${provider}-${i}`, text: `${b.text} (#${Math.floor(i / base.length)})` }));
  }
  return lines.join("\n") + "\n";
}

async function jobStatus(h: Harness, id: string) {
  for (let attempt = 1; ; attempt++) {
    try {
      const r = await h.call("acme", "GET", `/v1/jobs/${id}?limit=1`);
      return r.body as { status: string; counts: { items: number; done: number; failed: number } };
    } catch (e) {
      // A poll is a read: one lost to a busy test process is simply repeated.
      console.log("status poll failed", (e as Error).message, (e as { cause?: unknown }).cause);
      if (attempt >= 5) throw e;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}

describe("batch lane at volume, with workers killed mid-run", () => {
  let h: Harness;
  const workers = new Set<ChildProcess>();
  const spawn = () => {
    const c = h.spawnWorkerProcess({ TEST_LOCK_MS: "3000" });
    workers.add(c);
    c.on("exit", () => workers.delete(c));
    return c;
  };
  before(async () => {
    h = await startHarness({
      workers: false,
      batchLane: true,
      // Each phase lasts 1.5 s, so kills land while batches are being prepared, submitted, followed and settled.
      batchKnobs: { phaseMs: 1_500, seed: 21 },
      env: {
        SIEVE_BATCH_CLASSIFY_MAX_ITEMS: "100",
        SIEVE_BATCH_MAX_REQUEST_TOKENS: "20000",
        SIEVE_BATCH_MAX_REQUESTS: "100",
        SIEVE_BATCH_LEASE_MS: "3000",
        SIEVE_CACHE_ENABLED: "false",
      },
    });
  });
  after(async () => {
    for (const c of workers) c.kill("SIGKILL");
    await h.close();
  });

  test(`${2 * PER_PROVIDER} items, both providers, 2 worker processes SIGKILLed 4 times: nothing lost, nothing twice`, { timeout: 600_000 }, async () => {
    const t0 = Date.now();
    spawn();
    spawn();
    const ids: string[] = [];
    await Promise.all(
      ["openai", "anthropic"].map(async (provider) => {
        const res = await fetch(`${h.api.url}/v1/bulk`, { method: "POST", headers: { authorization: `Bearer ${h.keys.acme}`, "content-type": "application/x-ndjson" }, body: body(provider, PER_PROVIDER) });
        const json: any = await res.json();
        assert.equal(res.status, 202, JSON.stringify(json));
        assert.equal(json.counts.accepted, PER_PROVIDER);
        ids.push(json.id);
      }),
    );
    const ingestedAt = Date.now();

    // Kill every worker process 4 times, a few seconds apart, and start new ones.
    for (let k = 0; k < 4; k++) {
      await new Promise((r) => setTimeout(r, 5_000 + k * 1_500));
      const states = await queryRows<{ state: string; n: number }>(h.db.db, sql`select state, count(*)::int as n from provider_batches group by state`);
      for (const c of [...workers]) {
        c.kill("SIGKILL");
        await once(c, "exit").catch(() => {});
      }
      if (process.env.TEST_VERBOSE) console.log(`kill ${k + 1} at ${Math.round((Date.now() - t0) / 1000)}s`, states);
      spawn();
      spawn();
    }

    const deadline = Date.now() + 420_000;
    for (;;) {
      const st = await Promise.all(ids.map((id) => jobStatus(h, id)));
      if (st.every((s) => s.status !== "pending")) break;
      if (Date.now() > deadline) throw new Error(`not finished: ${JSON.stringify(st.map((s) => s.counts))}`);
      await new Promise((r) => setTimeout(r, 1_000));
    }
    const doneAt = Date.now();

    for (const id of ids) {
      const s = await jobStatus(h, id);
      assert.equal(s.status, "completed", JSON.stringify(s.counts));
      assert.equal(s.counts.done, PER_PROVIDER);
    }
    const r = await queryOne<{ items: number; results: number; distinct: number; ok: number }>(
      h.db.db,
      sql`select (select count(*)::int from items) as items, count(*)::int as results, count(distinct item_id)::int as distinct, count(*) filter (where status = 'ok')::int as ok from results`,
    );
    assert.equal(r.items, 2 * PER_PROVIDER);
    assert.equal(r.results, r.items, "exactly one result per item");
    assert.equal(r.distinct, r.items);

    const led = await queryOne<{ reqs: number; settled: number; calls: number; linked: number; dupes: number; callCost: string; batchCost: string; resultCost: string; sent: number; queued: number }>(
      h.db.db,
      sql`select (select count(*)::int from batch_requests where outcome is distinct from 'unsent') as reqs,
                 (select count(*)::int from batch_requests where settled_at is not null and outcome is distinct from 'unsent') as settled,
                 (select count(*)::int from llm_calls where lane = 'batch') as calls,
                 (select count(distinct llm_call_id)::int from batch_requests where llm_call_id is not null) as linked,
                 (select count(*)::int from (select request_id from llm_calls where lane = 'batch' group by request_id having count(*) > 1) d) as dupes,
                 (select sum(cost_usd)::text from llm_calls where lane = 'batch') as "callCost",
                 (select sum(cost_usd)::text from provider_batches) as "batchCost",
                 (select sum(cost_usd)::text from results) as "resultCost",
                 (select coalesce(sum(request_count), 0)::int from provider_batches where provider_batch_id is not null) as sent,
                 (select count(*)::int from batch_items) as queued`,
    );
    assert.equal(led.settled, led.reqs, "every request settled");
    assert.equal(led.calls, led.reqs, "one llm_calls row per provider request");
    assert.equal(led.linked, led.calls);
    assert.equal(led.dupes, 0, "no request's cost recorded twice");
    assert.ok(Math.abs(Number(led.callCost) - Number(led.batchCost)) < 1e-6, `${led.callCost} = ${led.batchCost}`);
    assert.ok(Math.abs(Number(led.callCost) - Number(led.resultCost)) < 1e-4, "items' shares add up to the calls' cost (all answered)");
    assert.equal(led.queued, 0);
    const sim = h.sim.batchStats();
    const rows = await queryRows<{ id: number; provider: string; state: string; requestCount: number; providerBatchId: string | null; lastError: string | null }>(
      h.db.db,
      sql`select id, provider, state, request_count as "requestCount", provider_batch_id as "providerBatchId", last_error as "lastError" from provider_batches order by id`,
    );
    if (process.env.TEST_VERBOSE) console.log(rows, sim);
    assert.equal(sim.openai.created + sim.anthropic.created, rows.filter((b) => b.providerBatchId).length, "every batch the providers accepted is recorded: no orphan, no double submit");
    assert.equal(sim.openai.requests.processed + sim.anthropic.requests.processed, led.sent, "the providers ran each submitted request once: nothing was submitted twice");
    console.log(
      JSON.stringify({
        items: r.items,
        ingestSeconds: (ingestedAt - t0) / 1000,
        totalSeconds: (doneAt - t0) / 1000,
        requests: led.reqs,
        batches: sim.openai.created + sim.anthropic.created,
        costUsd: Number(led.callCost),
      }),
    );
  });
});
