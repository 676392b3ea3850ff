/**
 * No invisible spend: a provider call is in llm_calls before it is sent ("sent", with its estimated
 * prompt tokens and cost) and completed when the answer lands ("ok" with real tokens); a call cut
 * off by a SIGKILLed worker stays visible as "interrupted" with its estimate, in /v1/usage too.
 * Real Redis + Postgres, a worker child process, the simulator answering after 4 s.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { sql } from "drizzle-orm";
import { queryRows } from "@sieve/shared";
import { startHarness, waitForJob, LABELS, type Harness } from "./support/harness.js";

interface CallRow {
  id: number;
  state: string;
  outcome: string;
  est_input_tokens: number;
  est_cost_usd: string;
  input_tokens: number;
  cost_usd: string;
  tenant_id: string;
}

const calls = (h: Harness) => queryRows<CallRow>(h.db.db, sql`select id::int as id, state, outcome, est_input_tokens, est_cost_usd::text, input_tokens, cost_usd::text, tenant_id from llm_calls order by id`);

describe("the ledger of provider calls", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      workers: false,
      faults: { latencyMs: 4_000 },
      env: { SIEVE_CLASSIFY_MAX_ITEMS: "10", SIEVE_CLASSIFY_MAX_WAIT_MS: "50", SIEVE_CALL_TIMEOUT_MS: "6000" },
    });
  });
  after(async () => h.close());

  test("a call cut off by SIGKILL stays in the ledger as interrupted with its estimate, and in /v1/usage", async () => {
    const worker = h.spawnWorkerProcess({ TEST_LOCK_MS: "2000" });
    const items = Array.from({ length: 10 }, (_, i) => ({ id: `s${i}`, text: `Stocks rallied on day ${i} as markets shrugged off rate fears` }));
    const res = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items });
    assert.equal(res.status, 202, res.text);

    // The row exists while the request is still at the provider (it answers after 4 s).
    const deadline = Date.now() + 30_000;
    let inFlight: CallRow[] = [];
    while (Date.now() < deadline) {
      inFlight = (await calls(h)).filter((c) => c.state === "sent");
      if (inFlight.length > 0 && (h.sim.stats().requests["POST /v1/chat/completions"] ?? 0) > 0) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(inFlight.length, 1, "one call recorded as sent before its answer");
    const cut = inFlight[0]!;
    assert.equal(cut.tenant_id, "acme");
    assert.ok(cut.est_input_tokens > 100, `estimated prompt tokens: ${cut.est_input_tokens}`);
    assert.ok(Number(cut.est_cost_usd) > 0, "estimated cost from the price table");
    worker.kill("SIGKILL");
    await once(worker, "exit");

    // A new worker process (its start marks stale calls) and the sweeper finish the job; the
    // cut-off call becomes "interrupted" once it is older than the call timeout plus grace.
    await h.startWorkers({ sweepEveryMs: 1_000, lockDurationMs: 2_000 });
    const job = await waitForJob(h, "acme", res.body.id, 60_000);
    assert.equal(job.status, "completed");
    let row: CallRow | undefined;
    const until = Date.now() + 40_000;
    while (Date.now() < until) {
      row = (await calls(h)).find((c) => c.id === cut.id);
      if (row?.state === "interrupted") break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(row?.state, "interrupted");
    assert.equal(row?.outcome, "interrupted");
    assert.equal(row?.est_input_tokens, cut.est_input_tokens, "the estimate stays");
    assert.equal(row?.est_cost_usd, cut.est_cost_usd);

    // The retry that answered the items is completed with real usage.
    const all = await calls(h);
    const answered = all.filter((c) => c.state === "ok");
    assert.ok(answered.length >= 1);
    for (const c of answered) {
      assert.ok(c.input_tokens > 0 && Number(c.cost_usd) > 0, "real tokens and cost on completion");
    }
    assert.equal(all.filter((c) => c.state === "sent").length, 0, "nothing left in flight");

    const usage = await h.call("acme", "GET", "/v1/usage");
    assert.equal(usage.status, 200, usage.text);
    assert.equal(usage.body.llm.calls, all.length, "every call counted, the interrupted one included");
    assert.equal(usage.body.llm.unanswered.interrupted, 1);
    assert.equal(usage.body.llm.unanswered.estInputTokens, cut.est_input_tokens);
    assert.ok(Math.abs(usage.body.llm.unanswered.estCostUsd - Number(cut.est_cost_usd)) < 1e-9);
    assert.ok(usage.body.llm.costWithEstimatesUsd > usage.body.llm.costUsd);
  });
});
