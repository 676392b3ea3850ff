/**
 * Retrying safely (README, "Idempotency-Key"): a replayed POST /v1/jobs or /v1/bulk answers the
 * first job, another body under the same key is a 422, concurrent requests with one key create
 * exactly one job, bad keys are 400s naming the header, keys are per tenant and expire; and once a
 * job is committed its id reaches the caller even when the long-poll after the commit fails.
 * Real Redis + Postgres; no workers (nothing here needs an answer).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { Queue } from "bullmq";
import { createLogger, queryOne, queryRows } from "@sieve/shared";
import { sweepOnce } from "@sieve/workers";
import { startHarness, LABELS, type Harness } from "./support/harness.js";

const job = (texts: string[]) => ({ task: "classify", labels: LABELS, items: texts.map((text, i) => ({ id: `k${i}`, text })) });

async function postBulk(h: Harness, tenant: string, body: string, key?: string) {
  const res = await fetch(`${h.api.url}/v1/bulk`, {
    method: "POST",
    headers: { authorization: `Bearer ${h.keys[tenant]}`, "content-type": "application/x-ndjson", ...(key ? { "idempotency-key": key } : {}) },
    body,
  });
  const text = await res.text();
  let parsed: any;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text, replayed: res.headers.get("idempotent-replayed") };
}

describe("Idempotency-Key", () => {
  let h: Harness;
  let queue: Queue;
  before(async () => {
    h = await startHarness({ workers: false });
    queue = new Queue("realtime-openai", { connection: { url: h.env.REDIS_URL }, prefix: h.env.SIEVE_QUEUE_PREFIX });
  });
  after(async () => {
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
    await h.close();
  });

  const jobsWith = async (text: string) =>
    (await queryOne<{ n: number }>(h.db.db, sql`select count(distinct i.job_id)::int as n from items i where i.text = ${text}`)).n;

  test("a replay answers the first job (same id, 202, Idempotent-Replayed) and creates nothing", async () => {
    const body = job(["replay one", "replay two"]);
    const first = await h.call("acme", "POST", "/v1/jobs", body, { "idempotency-key": "order-1" });
    assert.equal(first.status, 202, first.text);
    // The same JSON with its keys in another order is the same request.
    const reordered = { items: body.items, labels: body.labels, task: body.task };
    const res = await fetch(`${h.api.url}/v1/jobs`, {
      method: "POST",
      headers: { authorization: `Bearer ${h.keys.acme}`, "content-type": "application/json", "idempotency-key": "order-1" },
      body: JSON.stringify(reordered, null, 2),
    });
    const again = (await res.json()) as any;
    assert.equal(res.status, 202);
    assert.equal(again.id, first.body.id);
    assert.equal(res.headers.get("idempotent-replayed"), "true");
    assert.equal(await jobsWith("replay one"), 1);
    const parcels = await queue.getJobs(["waiting", "delayed", "prioritized"]);
    assert.equal(parcels.filter((p) => p.data.jobId === first.body.id).length, 1, "one parcel, enqueued once");
  });

  test("the same key with another body is a 422 naming the header; nothing is created", async () => {
    const first = await h.call("acme", "POST", "/v1/jobs", job(["body A"]), { "idempotency-key": "order-2" });
    assert.equal(first.status, 202);
    const other = await h.call("acme", "POST", "/v1/jobs", job(["body B"]), { "idempotency-key": "order-2" });
    assert.equal(other.status, 422, other.text);
    assert.equal(other.body.error.code, "idempotency_key_reused");
    assert.match(other.body.error.message, /^Idempotency-Key: /);
    assert.ok(other.body.error.details.some((d: any) => d.field === "Idempotency-Key"));
    assert.equal(await jobsWith("body B"), 0);
  });

  test("concurrent requests with one key create exactly one job", async () => {
    const body = job(["race one", "race two", "race three"]);
    const answers = await Promise.all(Array.from({ length: 8 }, () => h.call("acme", "POST", "/v1/jobs", body, { "idempotency-key": "race-1" })));
    for (const a of answers) assert.equal(a.status, 202, a.text);
    assert.equal(new Set(answers.map((a) => a.body.id)).size, 1, "every caller got the same job id");
    assert.equal(await jobsWith("race one"), 1);
    const { n } = await queryOne<{ n: number }>(h.db.db, sql`select count(*)::int as n from idempotency_keys where key = 'race-1'`);
    assert.equal(n, 1);
  });

  test("keys are per tenant", async () => {
    const body = job(["tenant scoped"]);
    const a = await h.call("acme", "POST", "/v1/jobs", body, { "idempotency-key": "shared-key" });
    const g = await h.call("globex", "POST", "/v1/jobs", body, { "idempotency-key": "shared-key" });
    assert.equal(a.status, 202);
    assert.equal(g.status, 202);
    assert.notEqual(a.body.id, g.body.id);
    assert.equal(await jobsWith("tenant scoped"), 2);
  });

  for (const [name, key] of [
    ["too long", "k".repeat(256)],
    ["non-printable (tab)", "abc\tdef"],
    ["non-ASCII", "clé-é"],
  ] as const) {
    test(`a bad key (${name}) is a 400 naming the header`, async () => {
      const r = await h.call("acme", "POST", "/v1/jobs", job([`bad key ${name}`]), { "idempotency-key": key });
      assert.equal(r.status, 400, r.text);
      assert.match(r.body.error.message, /^Idempotency-Key: /);
      assert.equal(await jobsWith(`bad key ${name}`), 0);
    });
  }

  test("a key is remembered for the retention, then purged by the sweeper and reusable", async () => {
    const body = job(["expiring key"]);
    const first = await h.call("acme", "POST", "/v1/jobs", body, { "idempotency-key": "old-key" });
    assert.equal(first.status, 202);
    const ttl = h.env.SIEVE_IDEMPOTENCY_TTL_HOURS;
    assert.ok(ttl >= 24);
    // Just inside the retention: still a replay.
    await h.db.db.execute(sql`update idempotency_keys set created_at = now() - make_interval(hours => ${ttl - 1}) where key = 'old-key'`);
    const inside = await h.call("acme", "POST", "/v1/jobs", body, { "idempotency-key": "old-key" });
    assert.equal(inside.body.id, first.body.id);
    // Past it: the sweeper purges the row, and the key names a new job.
    await h.db.db.execute(sql`update idempotency_keys set created_at = now() - make_interval(hours => ${ttl + 1}) where key = 'old-key'`);
    await sweepOnce({ db: h.db.db, env: h.env, queues: new Map(), log: createLogger({ level: "silent" }) });
    const rows = await queryRows(h.db.db, sql`select 1 from idempotency_keys where key = 'old-key'`);
    assert.equal(rows.length, 0, "the sweeper purged the expired key");
    const later = await h.call("acme", "POST", "/v1/jobs", body, { "idempotency-key": "old-key" });
    assert.equal(later.status, 202);
    assert.notEqual(later.body.id, first.body.id);
  });

  test("a long-poll that fails after the commit answers 202 with the job id; the retry gets the same job", async () => {
    // Break the read the long-poll ends with (the job view joins results) after the job is
    // committed: the submit path never touches `results` when nothing is cached.
    await h.db.db.execute(sql`alter table results rename to results_away`);
    let r;
    try {
      r = await h.call("acme", "POST", "/v1/jobs?wait=1s", job(["committed then broken"]), { "idempotency-key": "wait-1" });
    } finally {
      await h.db.db.execute(sql`alter table results_away rename to results`);
    }
    assert.equal(r.status, 202, r.text);
    assert.match(r.body.id, /^job_/);
    assert.equal(r.body.links.self, `/v1/jobs/${r.body.id}`);
    const retry = await h.call("acme", "POST", "/v1/jobs?wait=1s", job(["committed then broken"]), { "idempotency-key": "wait-1" });
    assert.equal(retry.status, 202, retry.text);
    assert.equal(retry.body.id, r.body.id);
    assert.equal(await jobsWith("committed then broken"), 1);
  });

  describe("POST /v1/bulk", () => {
    const bulkBody = (tag: string, n = 5) =>
      [JSON.stringify({ task: "classify", labels: LABELS }), ...Array.from({ length: n }, (_, i) => JSON.stringify({ id: `b${i}`, text: `${tag} ${i}` }))].join("\n") + "\n";

    test("a replayed upload answers the first job; another body under the key is a 422", async () => {
      const body = bulkBody("bulk replay");
      const first = await postBulk(h, "acme", body, "bulk-1");
      assert.equal(first.status, 202, first.text);
      assert.equal(first.body.counts.accepted, 5);
      const again = await postBulk(h, "acme", body, "bulk-1");
      assert.equal(again.status, 202, again.text);
      assert.equal(again.body.id, first.body.id);
      assert.equal(again.body.counts.accepted, 5);
      assert.equal(again.replayed, "true");
      assert.equal(await jobsWith("bulk replay 0"), 1);
      // One byte different (a changed text) is another request.
      const other = await postBulk(h, "acme", body.replace("bulk replay 3", "bulk replay X"), "bulk-1");
      assert.equal(other.status, 422, other.text);
      assert.match(other.body.error.message, /^Idempotency-Key: /);
      assert.equal(await jobsWith("bulk replay X"), 0);
    });

    test("concurrent uploads with one key create exactly one job", async () => {
      const body = bulkBody("bulk race", 200);
      const answers = await Promise.all(Array.from({ length: 4 }, () => postBulk(h, "acme", body, "bulk-race")));
      // The first is accepted; the others replay it (202, same id) or, while it is still arriving,
      // get 409 (retry later): never a second job.
      const ids = new Set(answers.filter((a) => a.status === 202).map((a) => a.body.id));
      for (const a of answers) assert.ok(a.status === 202 || a.status === 409, `${a.status} ${a.text}`);
      assert.equal(ids.size, 1, JSON.stringify(answers.map((a) => [a.status, a.body?.id])));
      assert.equal(await jobsWith("bulk race 0"), 1);
      const retry = await postBulk(h, "acme", body, "bulk-race");
      assert.equal(retry.status, 202);
      assert.ok(ids.has(retry.body.id));
    });

    test("a bad key is a 400 naming the header", async () => {
      const r = await postBulk(h, "acme", bulkBody("bulk bad key"), "x".repeat(300));
      assert.equal(r.status, 400, r.text);
      assert.match(r.body.error.message, /^Idempotency-Key: /);
      assert.equal(await jobsWith("bulk bad key 0"), 0);
    });
  });
});
