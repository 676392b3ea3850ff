/**
 * Dedup before enqueue: exact cache, isolation, per-request modes, TTL, eviction, and in-flight
 * coalescing. Real Redis and Postgres; the simulator answers the LLM calls.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { queryOne, queryRows } from "@sieve/shared";
import { startHarness, LABELS, type Harness } from "./support/harness.js";

async function llmItems(h: Harness): Promise<number> {
  const { n } = await queryOne<{ n: number }>(h.db.db, sql`select coalesce(sum(item_count), 0)::int as n from llm_calls`);
  return n;
}

function classify(items: Array<{ id: string; text: string }>, extra: Record<string, unknown> = {}) {
  return { task: "classify", labels: LABELS, items, ...extra };
}

describe("exact cache and coalescing", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: { SIEVE_CLASSIFY_MAX_WAIT_MS: "50", SIEVE_CACHE_MAX_ENTRIES: "1000", SIEVE_SEMANTIC_CACHE: "off" } });
  });
  after(async () => h.close());

  test("a repeated text is answered from the exact cache, with no LLM call", async () => {
    const first = await h.call("acme", "POST", "/v1/jobs?wait=20s", classify([{ id: "a", text: "Oil prices climb after OPEC cut" }]));
    assert.equal(first.body.items[0].cache, null);
    const before = await llmItems(h);
    // Same text modulo whitespace, another request, another caller id.
    const again = await h.call("acme", "POST", "/v1/jobs?wait=20s", classify([{ id: "b", text: "  Oil prices  climb after OPEC cut " }]));
    assert.equal(again.status, 200);
    const it = again.body.items[0];
    assert.equal(it.cache, "exact");
    assert.deepEqual(it.output, first.body.items[0].output);
    assert.equal(it.llmCallId, null);
    assert.equal(it.costUsd, 0);
    assert.equal(await llmItems(h), before, "no LLM item for the hit");
    assert.equal(again.body.counts.cached, 1);
    assert.equal(typeof it.cacheSource.itemId, "number");
  });

  test("no hit across tenants, tasks, labels, models or namespaces", async () => {
    const text = "Central bank raises interest rates again";
    await h.call("acme", "POST", "/v1/jobs?wait=20s", classify([{ id: "1", text }]));
    const variants: Array<[string, string, unknown]> = [
      ["other tenant", "globex", classify([{ id: "1", text }])],
      ["other labels", "acme", classify([{ id: "1", text }], { labels: ["x", "y"] })],
      ["other model", "acme", classify([{ id: "1", text }], { model: "gpt-4.1-nano" })],
      ["other provider", "acme", classify([{ id: "1", text }], { provider: "anthropic" })],
      ["other namespace", "acme", classify([{ id: "1", text }], { cache: { namespace: "eval" } })],
      ["other task", "acme", { task: "translate", targetLanguage: "de", items: [{ id: "1", text }] }],
    ];
    for (const [name, tenant, body] of variants) {
      const r = await h.call(tenant, "POST", "/v1/jobs?wait=20s", body);
      assert.equal(r.status, 200, `${name}: ${r.text}`);
      assert.equal(r.body.items[0].cache, null, `${name} must not hit`);
    }
  });

  test("bypass neither reads nor writes; refresh recomputes and overwrites", async () => {
    const text = "Tech giant unveils new phone";
    await h.call("acme", "POST", "/v1/jobs?wait=20s", classify([{ id: "1", text }]));
    let before = await llmItems(h);
    const bypass = await h.call("acme", "POST", "/v1/jobs?wait=20s", classify([{ id: "1", text }], { cache: { mode: "bypass" } }));
    assert.equal(bypass.body.items[0].cache, null);
    assert.equal(await llmItems(h), before + 1, "bypass went to the LLM");
    before = await llmItems(h);
    const refresh = await h.call("acme", "POST", "/v1/jobs?wait=20s", classify([{ id: "1", text }], { cache: { mode: "refresh" } }));
    assert.equal(refresh.body.items[0].cache, null);
    assert.equal(await llmItems(h), before + 1, "refresh went to the LLM");
    const use = await h.call("acme", "POST", "/v1/jobs?wait=20s", classify([{ id: "1", text }]));
    assert.equal(use.body.items[0].cache, "exact");
    assert.equal(use.body.items[0].cacheSource.itemId, (await queryOne<{ id: number }>(h.db.db, sql`select max(item_id)::int as id from results where cache is null`)).id, "the refreshed answer is served");
    // bypass did not write a fresh-text entry:
    const fresh = await h.call("acme", "POST", "/v1/jobs?wait=20s", classify([{ id: "1", text: "Never cached before" }], { cache: { mode: "bypass" } }));
    assert.equal(fresh.status, 200);
    const again = await h.call("acme", "POST", "/v1/jobs?wait=20s", classify([{ id: "1", text: "Never cached before" }]));
    assert.equal(again.body.items[0].cache, null);
  });

  test("entries expire after their TTL", async () => {
    const text = "Short-lived headline about a storm";
    // 3 s, not 1 s: on a loaded 2-core machine the hit below can take longer than a second to arrive.
    await h.call("acme", "POST", "/v1/jobs?wait=20s", classify([{ id: "1", text }], { cache: { ttlSeconds: 3 } }));
    const hit = await h.call("acme", "POST", "/v1/jobs?wait=20s", classify([{ id: "1", text }]));
    assert.equal(hit.body.items[0].cache, "exact");
    await new Promise((r) => setTimeout(r, 3_300));
    const miss = await h.call("acme", "POST", "/v1/jobs?wait=20s", classify([{ id: "1", text }]));
    assert.equal(miss.body.items[0].cache, null, "expired in Redis and in Postgres");
  });

  test("100 concurrent submissions of the same new text: one LLM item per tenant, 100 results", async () => {
    const before = await llmItems(h);
    const text = "Brand new text that nobody has submitted before";
    // 90 from one tenant, 10 from another, interleaved: coalescing never crosses tenants.
    const tenantOf = (i: number) => (i % 10 === 3 ? "globex" : "acme");
    const rs = await Promise.all(Array.from({ length: 100 }, (_, i) => h.call(tenantOf(i), "POST", "/v1/jobs?wait=30s", classify([{ id: `c${i}`, text }]))));
    assert.ok(rs.every((r) => r.status === 200 && r.body.status === "completed"), "all 100 completed");
    assert.equal((await llmItems(h)) - before, 2, "exactly one item per tenant went to the LLM");
    for (const tenant of ["acme", "globex"]) {
      const mine = rs.filter((_, i) => tenantOf(i) === tenant);
      const caches = mine.map((r) => r.body.items[0].cache);
      assert.equal(caches.filter((c) => c === null).length, 1, `one leader for ${tenant}`);
      assert.equal(caches.filter((c) => c === "coalesced" || c === "exact").length, mine.length - 1);
      assert.ok(caches.includes("coalesced"), `followers of ${tenant} waited for its leader`);
      // A follower's answer came from a leader of its own tenant.
      const sources = mine.filter((r) => r.body.items[0].cache === "coalesced").map((r) => r.body.items[0].cacheSource.itemId);
      const owners = await queryRows<{ tenant_id: string }>(h.db.db, sql`select distinct tenant_id from items where id = any(${sql.param(sources)}::bigint[])`);
      assert.deepEqual(owners.map((o) => o.tenant_id), [tenant]);
    }
    const outputs = new Set(rs.map((r) => JSON.stringify(r.body.items[0].output)));
    assert.equal(outputs.size, 1, "everyone got the same (deterministic) answer");
  });

  test("GET /v1/usage reports calls, dollars and cache hits of the tenant only", async () => {
    const u = await h.call("acme", "GET", "/v1/usage");
    assert.equal(u.status, 200, u.text);
    assert.ok(u.body.llm.calls > 0 && u.body.llm.costUsd > 0);
    assert.ok(u.body.results.cached.exact >= 1 && u.body.results.cached.coalesced >= 1);
    assert.ok(u.body.savedUsd > 0, "hits record the dollars they saved");
    const g = await h.call("globex", "GET", "/v1/usage");
    assert.ok(g.body.llm.calls < u.body.llm.calls, "another tenant sees only its own");
    assert.equal((await h.call("acme", "GET", "/v1/usage?since=yesterday-ish")).status, 400);
  });

  test("a leader that fails passes its error to its followers (nobody waits forever)", async () => {
    const text = "SIM_POISON coalesced poison text";
    const before = await llmItems(h);
    const rs = await Promise.all(Array.from({ length: 5 }, (_, i) => h.call("acme", "POST", "/v1/jobs?wait=30s", classify([{ id: `p${i}`, text }]))));
    for (const r of rs) {
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.status, "failed");
      assert.equal(r.body.items[0].status, "error");
    }
    // Only the leader reached the LLM; the others got its error as followers, not by failing themselves.
    const caches = rs.map((r) => r.body.items[0].cache);
    assert.equal(caches.filter((c) => c === null).length, 1, "one leader");
    assert.equal(caches.filter((c) => c === "coalesced").length, 4, "four followers");
    const leader = rs.find((r) => r.body.items[0].cache === null)!.body.items[0];
    for (const r of rs.filter((x) => x.body.items[0].cache === "coalesced")) {
      assert.equal(r.body.items[0].error.code, leader.error.code, "the leader's error");
    }
    const sent = (await llmItems(h)) - before;
    assert.ok(sent >= 1 && sent <= 2, `only the leader was sent (once, then once alone): ${sent} items`);
  });
});

describe("eviction at the size limit", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: { SIEVE_CLASSIFY_MAX_WAIT_MS: "20", SIEVE_CACHE_MAX_ENTRIES: "3", SIEVE_CACHE_EVICTION: "lru", SIEVE_SEMANTIC_CACHE: "off" } });
  });
  after(async () => h.close());

  test("LRU: the least recently used entry goes first", async () => {
    const send = (text: string) => h.call("acme", "POST", "/v1/jobs?wait=20s", classify([{ id: "1", text }]));
    await send("alpha story");
    await send("bravo story");
    await send("charlie story");
    assert.equal((await send("alpha story")).body.items[0].cache, "exact"); // alpha is now the most recent
    await send("delta story"); // evicts bravo (least recently used)
    const { n } = await queryOne<{ n: number }>(h.db.db, sql`select count(*)::int as n from cache_entries`);
    assert.equal(n, 3, "durable copy holds at most the limit");
    assert.equal((await send("alpha story")).body.items[0].cache, "exact");
    assert.equal((await send("bravo story")).body.items[0].cache, null, "bravo was evicted");
  });
});
