/**
 * The spine, end to end: HTTP submit -> aggregate -> provider (simulator) -> Postgres -> results.
 * Real Redis, real Postgres; the simulator stands in for the unreachable providers.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { queryOne, queryRows } from "@sieve/shared";
import { startHarness, waitForJob, LABELS, type Harness } from "./support/harness.js";
import { agNewsItems } from "./support/datasets.js";

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

describe("aggregation: many concurrent requests become few multi-item calls", () => {
  let h: Harness;
  before(async () => {
    // maxWait 3 s, not 300 ms: on a loaded 2-core machine (another suite beside this one) the 50
    // clients' requests arrive slowly, and a short wait flushes half-filled bins, which says
    // nothing about aggregation. Seen: 45-58 calls with 1 s next to the batch-scale suite.
    h = await startHarness({ env: { SIEVE_CLASSIFY_MAX_ITEMS: "25", SIEVE_CLASSIFY_MAX_WAIT_MS: "3000" } });
  });
  after(async () => h.close());

  test("50 clients x 1,000 items in requests of 1..40: every item exactly one result, calls <= ceil(1000/25) + 10%", async () => {
    const items = agNewsItems(1000);
    const rand = rng(42);
    // Cut the 1,000 items into requests of 1..40 items, dealt to 50 clients.
    const requests: Array<typeof items> = [];
    for (let i = 0; i < items.length; ) {
      const n = 1 + Math.floor(rand() * 40);
      requests.push(items.slice(i, i + n));
      i += n;
    }
    const perClient: Array<Array<typeof items>> = Array.from({ length: 50 }, () => []);
    requests.forEach((r, i) => perClient[i % 50]!.push(r));
    const jobIds: string[] = [];
    await Promise.all(
      perClient.map(async (reqs) => {
        for (const r of reqs) {
          const res = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items: r.map(({ id, text }) => ({ id, text })) });
          assert.equal(res.status, 202, res.text);
          jobIds.push(res.body.id);
        }
      }),
    );
    const jobs = await Promise.all(jobIds.map((id) => waitForJob(h, "acme", id)));
    const all = jobs.flatMap((j) => j.items);
    assert.equal(all.length, 1000);
    assert.equal(new Set(all.map((i: any) => i.id)).size, 1000, "each caller id once");
    for (const j of jobs) assert.equal(j.status, "completed");
    for (const it of all) {
      assert.equal(it.status, "ok");
      assert.ok(LABELS.includes(it.output.label), `label ${it.output.label} allowed`);
      assert.equal(it.provider, "openai");
      assert.equal(typeof it.llmCallId, "number");
      assert.ok(it.costUsd > 0);
    }
    const { results, distinct } = await queryOne<{ results: number; distinct: number }>(h.db.db, sql`select count(*)::int as results, count(distinct item_id)::int as distinct from results`);
    assert.equal(results, 1000);
    assert.equal(distinct, 1000);
    const { calls } = await queryOne<{ calls: number }>(h.db.db, sql`select count(*)::int as calls from llm_calls`);
    assert.ok(calls <= Math.ceil((Math.ceil(1000 / 25)) * 1.1), `LLM calls ${calls} <= 44`);
    assert.equal(h.sim.stats().requests["POST /v1/chat/completions"], calls, "every provider request is recorded");
    // Costs add up: per-item costs sum to the cost of the successful calls.
    const { itemsUsd, callsUsd } = await queryOne<{ itemsUsd: string; callsUsd: string }>(
      h.db.db,
      sql`select (select sum(cost_usd) from results)::text as "itemsUsd", (select sum(cost_usd) from llm_calls)::text as "callsUsd"`,
    );
    assert.ok(Math.abs(Number(itemsUsd) - Number(callsUsd)) < 1e-6, `${itemsUsd} vs ${callsUsd}`);
  });

  test("NDJSON results stream every item once; long-poll returns the finished job", async () => {
    const items = agNewsItems(60).map(({ id, text }) => ({ id, text }));
    const res = await h.call("acme", "POST", "/v1/jobs?wait=20s", { task: "classify", labels: LABELS, items });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.status, "completed");
    assert.equal(res.body.items.length, 60);
    const stream = await fetch(`${h.api.url}/v1/jobs/${res.body.id}/results`, { headers: { authorization: `Bearer ${h.keys.acme}` } });
    assert.equal(stream.headers.get("content-type"), "application/x-ndjson; charset=utf-8");
    const lines = (await stream.text()).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.id), items.map((i) => i.id));
    assert.ok(lines.every((l) => l.status === "ok"));
  });

  test("translate jobs answer with a translation per item", async () => {
    const res = await h.call("acme", "POST", "/v1/jobs?wait=20s", { task: "translate", targetLanguage: "de", items: [{ id: "a", text: "Good morning" }, { id: "b", text: "See you tomorrow" }] });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.status, "completed");
    for (const it of res.body.items) assert.ok(typeof it.output.translation === "string" && it.output.translation.length > 0);
  });

  test("tenants are isolated: another tenant's job is 404, and tenants never share a prompt", async () => {
    // Concurrent, same parameters, same moment: only the tenant in the batch key keeps them apart.
    const before = await queryOne<{ id: number }>(h.db.db, sql`select coalesce(max(id), 0)::int as id from llm_calls`);
    const send = (tenant: string, i: number) =>
      h.call(tenant, "POST", "/v1/jobs?wait=20s", { task: "classify", labels: LABELS, items: [{ id: "x1", text: `Stocks ${tenant === "acme" ? "fall" : "rise"} again, take ${i}` }] });
    const all = await Promise.all([0, 1, 2, 3].flatMap((i) => [send("acme", i), send("globex", i)]));
    for (const r of all) assert.equal(r.status, 200, r.text);
    const a = all[0]!;
    const g = all[1]!;
    assert.equal((await h.call("globex", "GET", `/v1/jobs/${a.body.id}`)).status, 404);
    assert.equal((await h.call("acme", "GET", `/v1/jobs/${g.body.id}/results`)).status, 404);
    const rows = await queryRows<{ tenants: number; items: number }>(
      h.db.db,
      sql`select count(distinct r.tenant_id)::int as tenants, count(*)::int as items from results r where r.llm_call_id > ${before.id} group by r.llm_call_id`,
    );
    assert.ok(rows.length >= 2, "both tenants' items went to the LLM");
    assert.ok(rows.every((r) => r.tenants === 1), "no LLM call answered items of two tenants");
    // The items did wait together: calls of one tenant packed several of its concurrent requests.
    assert.ok(rows.some((r) => r.items > 1), `concurrent requests were packed per tenant: ${JSON.stringify(rows)}`);
  });
});
