/**
 * The operator console's data path on real Redis + Postgres with the provider simulator: rollups
 * agree with /v1/usage and /metrics; parcels with failed items end failed in Bull Board with their
 * counts; every queue is listed; "retry failed items" re-enqueues them without a second result;
 * CSRF and basic auth refuse what they should. The browser suite (console.browser.int.test.ts)
 * drives the same pages in Chromium.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { sql } from "drizzle-orm";
import { MIGRATIONS_DIR } from "@sieve/shared";
import { queryOne, queryRows, registry } from "@sieve/shared";
import { startHarness, waitForJob, LABELS, type Harness } from "./support/harness.js";
import type { Request, Response } from "express";
import { rangeStart, sumsByKey, total } from "@sieve/producer/admin/queries";
import { lanesPage } from "@sieve/producer/admin/pages/lanes";

const AUTH = { authorization: `Basic ${Buffer.from("admin:console-pw").toString("base64")}` };

async function admin(h: Harness, path: string, init: RequestInit = {}) {
  return fetch(`${h.api.url}${path}`, { redirect: "manual", ...init, headers: { ...AUTH, ...(init.headers as Record<string, string>) } });
}

/** Sum of a Prometheus counter over all its series (optionally filtered by labels). */
async function metricSum(name: string, match: Record<string, string> = {}): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  let s = 0;
  for (const v of (m?.values ?? []) as Array<{ value: number; labels: Record<string, string> }>) {
    if (Object.entries(match).every(([k, want]) => String(v.labels[k]) === want)) s += v.value;
  }
  return s;
}

describe("operator console: rollups, Bull Board, retry", () => {
  let h: Harness;
  let failedJob = "";
  before(async () => {
    h = await startHarness({ env: { SIEVE_ADMIN_USER: "admin", SIEVE_ADMIN_PASSWORD: "console-pw" }, tenants: ["acme"] });
  });
  after(async () => {
    await h?.close();
  });

  test("rollups equal /v1/usage and /metrics for the same data", async () => {
    const items = Array.from({ length: 6 }, (_, i) => ({ id: `a${i}`, text: `Stocks rally as central bank holds rates, report ${i}` }));
    const first = await h.call("acme", "POST", "/v1/jobs?wait=20s", { task: "classify", labels: LABELS, items });
    assert.equal(first.body.status, "completed", first.text);
    // The same texts again: answered by the exact cache, no LLM call.
    const second = await h.call("acme", "POST", "/v1/jobs?wait=20s", { task: "classify", labels: LABELS, items });
    assert.equal(second.body.counts.cached, 6, second.text);
    // Every call drops one entry: in a 3-item job two answers land, the third item ends item_missing.
    h.sim.setFaults({ rateDropItem: 1, seed: 7 });
    const bad = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items: [0, 1, 2].map((i) => ({ id: `b${i}`, text: `Team wins the final in overtime, game ${i}` })) });
    failedJob = bad.body.id;
    const done = await waitForJob(h, "acme", failedJob);
    h.sim.setFaults({});
    assert.equal(done.status, "partial");
    assert.equal(done.counts.failed, 1);
    assert.equal(done.items.find((i: any) => i.status === "error").error.code, "item_missing");

    const since = rangeStart("day");
    const usage = (await h.call("acme", "GET", `/v1/usage?since=${since.toISOString()}`)).body;
    const t = total(await sumsByKey(h.db.db, since, "acme"));
    assert.equal(t.itemsOk, usage.results.ok);
    assert.equal(t.itemsFailed, usage.results.errors);
    assert.equal(t.itemsFailed, 1);
    assert.equal(t.hitsExact, usage.results.cached.exact);
    assert.equal(t.hitsExact, 6);
    assert.equal(t.calls, usage.llm.calls);
    assert.ok(t.calls >= 3, `calls ${t.calls}`);
    assert.equal(t.inputTokens, usage.llm.inputTokens);
    assert.ok(Math.abs(t.cost - usage.llm.costUsd) < 1e-7, `${t.cost} vs ${usage.llm.costUsd}`);
    assert.ok(usage.llm.costUsd > 0);
    assert.ok(Math.abs(t.savedExact - usage.savedUsd) < 1e-7, `${t.savedExact} vs ${usage.savedUsd}`);
    // /metrics: workers run in this process, so the counters cover exactly the same calls.
    assert.ok(Math.abs((await metricSum("sieve_cost_usd_total")) - t.cost) < 1e-7);
    assert.equal(await metricSum("sieve_cache_lookups_total", { kind: "exact", outcome: "hit" }), t.hitsExact);
    assert.equal(await metricSum("sieve_llm_calls_total"), t.calls);
    const errs = await queryRows<{ code: string; n: number }>(h.db.db, sql`select code, sum(n)::int as n from rollup_errors where tenant_id = 'acme' group by code`);
    assert.deepEqual(errs, [{ code: "item_missing", n: 1 }]);
    // Packing saved something: calls carried several items, each would otherwise resend the system prompt.
    assert.ok(t.packingTokens > 0);
  });

  test("the migration's backfill rebuilds the same rollups from results and llm_calls", async () => {
    const cols = sql.raw(`minute, tenant_id, provider, model, lane, items_ok, items_failed, hits_exact, hits_semantic, hits_coalesced,
      saved_exact_usd::text, saved_semantic_usd::text, saved_coalesced_usd::text, calls, calls_failed, items_sent, input_tokens, output_tokens,
      cached_input_tokens, cost_usd::text, latency_ms_sum, lat_buckets`);
    const snapshot = async () => ({
      minute: await queryRows(h.db.db, sql`select ${cols} from rollup_minute order by minute, tenant_id, provider, model, lane`),
      errors: await queryRows(h.db.db, sql`select * from rollup_errors order by minute, tenant_id, provider, model, lane, code`),
    });
    const live = await snapshot();
    assert.ok(live.minute.length > 0);
    const statements = readFileSync(`${MIGRATIONS_DIR}/0005_console.sql`, "utf8").split("--> statement-breakpoint").map((x) => x.trim());
    const backfill = statements.filter((x) => /^INSERT INTO "rollup_/.test(x));
    assert.equal(backfill.length, 3);
    await h.db.db.transaction(async (tx) => {
      await tx.execute(sql`delete from rollup_minute`);
      await tx.execute(sql`delete from rollup_errors`);
      for (const st of backfill) await tx.execute(sql.raw(st));
    });
    assert.deepEqual(await snapshot(), live);
  });

  test("Bull Board: every queue listed, parcel counts in the return value, a parcel with a failed item ends failed", async () => {
    const res = await admin(h, "/admin/queues/api/queues?activeQueue=realtime-openai&status=failed&page=1");
    assert.equal(res.status, 200);
    const body: any = await res.json();
    const names = body.queues.map((q: any) => q.name).sort();
    for (const n of ["cache-audit", "cache-fill", "maintenance", "realtime-openai", "realtime-anthropic", "realtime-vllm"]) assert.ok(names.includes(n), `${n} in ${names}`);
    const q = body.queues.find((x: any) => x.name === "realtime-openai");
    const failed = q.jobs.filter((j: any) => j.data?.jobId === failedJob);
    assert.equal(failed.length, 1, JSON.stringify(q.jobs.map((j: any) => j.id)));
    assert.match(failed[0].failedReason, /1 of 3 items failed \(item_missing x1\)/);
    assert.equal(failed[0].externalUrl?.href, `/admin/jobs/${failedJob}`, "the parcel links into the console");
    const ok: any = await (await admin(h, "/admin/queues/api/queues?activeQueue=realtime-openai&status=completed&page=1")).json();
    const done = ok.queues.find((x: any) => x.name === "realtime-openai").jobs;
    assert.ok(done.length >= 1);
    for (const j of done) assert.deepEqual(Object.keys(j.returnValue).sort(), ["failed", "items", "ok"]);
    assert.ok(done.every((j: any) => j.returnValue.failed === 0 && j.returnValue.ok === j.returnValue.items));
    // The page itself makes no request outside Sieve: no absolute http(s) URLs in it.
    const page = await (await admin(h, "/admin/queues")).text();
    assert.ok(page.includes("Sieve queues"));
    assert.doesNotMatch(page, /(href|src)="https?:/);
    // The menu links back into the console (uiConfig.miscLinks, rendered into the page's UI config).
    const ui = JSON.parse(/<script id="__UI_CONFIG__" type="application\/json">([\s\S]*?)<\/script>/.exec(page)?.[1] ?? "{}");
    assert.deepEqual(ui.miscLinks.map((l: { url: string }) => l.url), ["/admin", "/admin/jobs", "/admin/batches"]);
  });

  test("lanes: the GPU lane's engine is listed as its worker reports it; without any engine source the page says so", async () => {
    const page = await (await admin(h, "/admin/lanes")).text();
    // The in-process workers consume the vllm lane through a GPU pool over VLLM_BASE_URL (the simulator).
    const limit = h.workers!.gpu!.snapshot()[0]!.limit;
    assert.match(page, new RegExp(`data-engine="vllm-0" data-url="${h.env.VLLM_BASE_URL}" data-health="healthy" data-limit="${limit}"`));
    let body = "";
    const res = { type: () => res, send: (b: string) => void (body = b) } as unknown as Response;
    await lanesPage({ ...h.api.ctx }, [], undefined, {} as Request, res);
    assert.match(body, /No GPU engines configured/);
  });

  test("bad page parameters are a 400 naming the field", async () => {
    for (const [path, field] of [["/admin?range=year", "range"], ["/admin/jobs?status=done", "status"], ["/admin/jobs?before=yesterday", "before"], ["/admin/batches?state=gone", "state"], [`/admin/jobs/${failedJob}?after=x`, "after"]] as const) {
      const r = await admin(h, path);
      assert.equal(r.status, 400, path);
      assert.match(await r.text(), new RegExp(`${field}: expected`), path);
    }
  });

  test("basic auth: a wrong password is refused everywhere under /admin", async () => {
    for (const path of ["/admin", "/admin/jobs", "/admin/queues", "/admin/queues/api/queues"]) {
      const r = await fetch(`${h.api.url}${path}`, { headers: { authorization: `Basic ${Buffer.from("admin:wrong").toString("base64")}` } });
      assert.equal(r.status, 401, path);
      assert.match(r.headers.get("www-authenticate") ?? "", /Basic/);
    }
  });

  test("retry failed items: CSRF required; re-enqueued once; one result per item; rollups follow", async () => {
    const noToken = await admin(h, `/admin/jobs/${failedJob}/retry`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "" });
    assert.equal(noToken.status, 403);
    const page = await admin(h, `/admin/jobs/${failedJob}`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /item_missing/);
    const cookie = (page.headers.get("set-cookie") ?? "").split(";")[0]!;
    const token = /name="_csrf" value="([a-f0-9]+)"/.exec(html)?.[1];
    assert.ok(cookie && token);
    const foreign = await admin(h, `/admin/jobs/${failedJob}/retry`, { method: "POST", headers: { cookie, origin: "http://evil.example", "content-type": "application/x-www-form-urlencoded" }, body: `_csrf=${token}` });
    assert.equal(foreign.status, 403, "another site's form is refused");
    const post = () => admin(h, `/admin/jobs/${failedJob}/retry`, { method: "POST", headers: { cookie, "content-type": "application/x-www-form-urlencoded" }, body: `_csrf=${token}` });
    const [a, b] = await Promise.all([post(), post()]);
    assert.equal(a.status, 303);
    assert.equal(b.status, 303);
    const flashes = [a, b].map((r) => decodeURIComponent(r.headers.get("location") ?? ""));
    assert.equal(flashes.filter((f) => f.includes("1 failed item re-enqueued")).length, 1, flashes.join(" | "));
    const job = await waitForJob(h, "acme", failedJob);
    assert.equal(job.status, "completed", JSON.stringify(job.counts));
    const n = await queryOne<{ n: number; items: number }>(h.db.db, sql`select count(*)::int as n, count(distinct item_id)::int as items from results where job_id = ${failedJob}`);
    assert.deepEqual(n, { n: 3, items: 3 });
    const since = rangeStart("day");
    const usage = (await h.call("acme", "GET", `/v1/usage?since=${since.toISOString()}`)).body;
    const t = total(await sumsByKey(h.db.db, since, "acme"));
    assert.equal(usage.results.errors, 0);
    assert.equal(t.itemsFailed, 0);
    assert.equal(t.itemsOk, usage.results.ok);
    assert.ok(Math.abs(t.cost - usage.llm.costUsd) < 1e-7);
  });
});
