/**
 * The API contract a caller relies on: bad input gets a 4xx naming the field and nothing is
 * enqueued; authentication; health and readiness; the dashboard is protected.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { Queue } from "bullmq";
import { queryOne, queryRows } from "@sieve/shared";
import { startHarness, type Harness } from "./support/harness.js";

describe("API contract", () => {
  let h: Harness;
  let queue: Queue;
  before(async () => {
    h = await startHarness({
      workers: false,
      env: { SIEVE_MAX_ITEMS_PER_REQUEST: "50", SIEVE_MAX_TEXT_CHARS: "200", SIEVE_MAX_BODY_BYTES: "20000", SIEVE_ADMIN_USER: "ops", SIEVE_ADMIN_PASSWORD: "s3cret-pass" },
    });
    queue = new Queue("realtime-openai", { connection: { url: h.env.REDIS_URL }, prefix: h.env.SIEVE_QUEUE_PREFIX });
  });
  after(async () => {
    await queue.close();
    await h.close();
  });

  const ok = { task: "classify", labels: ["a", "b"], items: [{ id: "1", text: "hello" }] };
  const cases: Array<[string, unknown, number, string]> = [
    ["unknown task", { ...ok, task: "summarize" }, 400, "task"],
    ["missing labels", { task: "classify", items: ok.items }, 400, "labels"],
    ["one label", { ...ok, labels: ["a"] }, 400, "labels"],
    ["duplicate labels", { ...ok, labels: ["a", "a"] }, 400, "labels"],
    ["missing targetLanguage", { task: "translate", items: ok.items }, 400, "targetLanguage"],
    ["bad targetLanguage", { task: "translate", targetLanguage: "German!", items: ok.items }, 400, "targetLanguage"],
    ["empty items", { ...ok, items: [] }, 400, "items"],
    ["too many items", { ...ok, items: Array.from({ length: 51 }, (_, i) => ({ id: `i${i}`, text: "x" })) }, 400, "items"],
    ["duplicate item ids", { ...ok, items: [{ id: "1", text: "a" }, { id: "1", text: "b" }] }, 400, "items[1].id"],
    ["oversized text", { ...ok, items: [{ id: "1", text: "x".repeat(201) }] }, 400, "items[0].text"],
    ["blank text", { ...ok, items: [{ id: "1", text: "   " }] }, 400, "items[0].text"],
    ["item id of wrong type", { ...ok, items: [{ id: 1, text: "a" }] }, 400, "items[0].id"],
    ["items of wrong type", { ...ok, items: "hello" }, 400, "items"],
    ["unknown field", { ...ok, label: "a" }, 400, "label"],
    ["unknown provider", { ...ok, provider: "gemini" }, 400, "provider"],
    ["not an object", [1, 2], 400, "body"],
  ];
  for (const [name, body, status, field] of cases) {
    test(`${name} -> ${status} naming ${field}`, async () => {
      const r = await h.call("acme", "POST", "/v1/jobs", body);
      assert.equal(r.status, status, r.text);
      assert.ok(r.body.error.message.startsWith(`${field}:`), `message "${r.body.error.message}" names ${field}`);
      assert.ok(r.body.error.details.some((d: any) => d.field === field));
    });
  }

  test("oversized body -> 413 naming body", async () => {
    const big = { ...ok, items: Array.from({ length: 40 }, (_, i) => ({ id: `i${i}`, text: "y".repeat(199) })), pad: "z".repeat(25_000) };
    const r = await h.call("acme", "POST", "/v1/jobs", big);
    assert.equal(r.status, 413);
    assert.match(r.body.error.message, /^body:/);
  });

  test("malformed JSON -> 400 naming body", async () => {
    const r = await h.call("acme", "POST", "/v1/jobs", "{not json");
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, "invalid_json");
  });

  test("bad ?wait -> 400 naming wait", async () => {
    const r = await h.call("acme", "POST", "/v1/jobs?wait=forever", ok);
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /^wait:/);
  });

  test("nothing was enqueued or stored by any rejected request", async () => {
    const counts = await queue.getJobCounts();
    assert.equal(Object.values(counts).reduce((a, b) => a + b, 0), 0);
    const { n } = await queryOne<{ n: number }>(h.db.db, sql`select count(*)::int as n from jobs`);
    assert.equal(n, 0);
  });

  test("no key -> 401, wrong key -> 401", async () => {
    const r1 = await fetch(`${h.api.url}/v1/jobs`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(ok) });
    assert.equal(r1.status, 401);
    const r2 = await h.call("sk-sieve-not-a-key", "POST", "/v1/jobs", ok);
    assert.equal(r2.status, 401);
  });

  test("keys are stored hashed, never in clear", async () => {
    const rows = await queryRows<{ key_hash: string }>(h.db.db, sql`select key_hash from api_keys`);
    assert.ok(rows.length >= 2);
    for (const r of rows) for (const k of Object.values(h.keys)) assert.ok(!r.key_hash.includes(k));
  });

  test("a valid request is accepted and enqueued", async () => {
    const r = await h.call("acme", "POST", "/v1/jobs", ok);
    assert.equal(r.status, 202);
    assert.match(r.body.id, /^job_/);
    const g = await h.call("acme", "GET", `/v1/jobs/${r.body.id}`);
    assert.equal(g.body.status, "pending");
    assert.equal(g.body.items[0].status, "pending");
    assert.equal(await queue.count(), 1);
    assert.equal((await h.call("acme", "GET", "/v1/jobs/job_doesnotexist")).status, 404);
  });

  test("healthz and readyz", async () => {
    assert.equal((await fetch(`${h.api.url}/healthz`)).status, 200);
    const r = await fetch(`${h.api.url}/readyz`);
    assert.equal(r.status, 200);
    // No workers process here: no sweeper has run yet, and the API is younger than the grace period.
    assert.deepEqual(((await r.json()) as any).checks, { redis: "ok", postgres: "ok", sweeper: "waiting" });
  });

  test("Bull Board needs the operator credential", async () => {
    assert.equal((await fetch(`${h.api.url}/admin/queues`)).status, 401);
    const wrong = Buffer.from("ops:nope").toString("base64");
    assert.equal((await fetch(`${h.api.url}/admin/queues`, { headers: { authorization: `Basic ${wrong}` } })).status, 401);
    const right = Buffer.from("ops:s3cret-pass").toString("base64");
    const r = await fetch(`${h.api.url}/admin/queues`, { headers: { authorization: `Basic ${right}` } });
    assert.equal(r.status, 200);
    assert.match(await r.text(), /<html/i);
  });

  test("metrics move with the work and show the dependencies", async () => {
    const value = async (series: string) => {
      const text = await (await fetch(`${h.api.url}/metrics`)).text();
      const line = text.split("\n").find((l) => l.startsWith(`${series} `));
      return line ? Number(line.slice(series.length + 1)) : 0;
    };
    const submitted = 'sieve_items_submitted_total{task="classify",lane="realtime"}';
    const accepted = 'sieve_http_requests_total{route="/v1/jobs",status="202"}';
    const [s0, a0] = [await value(submitted), await value(accepted)];
    const r = await h.call("acme", "POST", "/v1/jobs", { ...ok, items: [{ id: "m1", text: "one" }, { id: "m2", text: "two" }, { id: "m3", text: "three" }] });
    assert.equal(r.status, 202);
    assert.equal(await value(submitted), s0 + 3, "items accepted are counted");
    assert.equal(await value(accepted), a0 + 1, "the 202 is counted under its route");
    assert.equal(await value('sieve_dependency_up{role="api",dependency="redis"}'), 1);
    assert.equal(await value('sieve_dependency_up{role="api",dependency="postgres"}'), 1);
  });
});
