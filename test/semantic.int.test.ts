/**
 * The semantic cache end to end: the real embedded embedder (USE lite) and pgvector in PGlite,
 * with real Redis/Postgres. Paraphrases hit; negations, changed numbers and other tenants do not;
 * every hit reports its score and source; audited hits record agreement.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { Queue } from "bullmq";
import { queryOne } from "@sieve/shared";
import { startHarness, type Harness } from "./support/harness.js";

const LABELS = ["account", "card", "transfer", "other"];
const THRESHOLD = 0.8;

describe("semantic cache", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      env: {
        SIEVE_SEMANTIC_CACHE: "pgvector",
        SIEVE_SEMANTIC_TASKS: "classify",
        SIEVE_SEMANTIC_THRESHOLD_CLASSIFY: String(THRESHOLD),
        SIEVE_SEMANTIC_AUDIT_RATE: "1",
        SIEVE_CLASSIFY_MAX_WAIT_MS: "20",
      },
    });
  });
  after(async () => h.close());

  const send = (tenant: string, text: string, extra: Record<string, unknown> = {}) =>
    h.call(tenant, "POST", "/v1/jobs?wait=30s", { task: "classify", labels: LABELS, items: [{ id: "q", text }], ...extra });

  /** Answers reach the vector store through the cache-fill queue: wait until n fill jobs are done. */
  async function waitForVectors(n: number) {
    const q = new Queue("cache-fill", { connection: { url: h.env.REDIS_URL }, prefix: h.env.SIEVE_QUEUE_PREFIX });
    try {
      const deadline = Date.now() + 60_000;
      while ((await q.getCompletedCount()) < n) {
        if (Date.now() > deadline) throw new Error("answers never reached the vector store");
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await q.close();
    }
  }

  test("a paraphrase is answered from the semantic cache, with score and source", async () => {
    const first = await send("acme", "How do I reset my password?");
    assert.equal(first.body.items[0].cache, null);
    await waitForVectors(1);
    const para = await send("acme", "How can I reset my password?");
    const it = para.body.items[0];
    assert.equal(it.cache, "semantic", JSON.stringify(it));
    assert.deepEqual(it.output, first.body.items[0].output);
    assert.ok(it.cacheSource.score >= THRESHOLD && it.cacheSource.score < 1, `score ${it.cacheSource.score}`);
    assert.equal(it.cacheSource.text, "How do I reset my password?");
    assert.equal(typeof it.cacheSource.itemId, "number");
    assert.equal(it.llmCallId, null);
  });

  test("a negation or a changed number does not hit", async () => {
    await send("acme", "I was charged 10 dollars for the transfer");
    await send("acme", "My card has arrived");
    await waitForVectors(3);
    assert.equal((await send("acme", "I was charged 100 dollars for the transfer")).body.items[0].cache, null, "numbers differ");
    assert.equal((await send("acme", "My card has not arrived")).body.items[0].cache, null, "negation differs");
  });

  test("no semantic hit across tenants, or when a request turns it off", async () => {
    assert.equal((await send("globex", "How can I reset my password?")).body.items[0].cache, null);
    assert.equal((await send("acme", "How could I reset my password?", { cache: { semantic: false } })).body.items[0].cache, null);
  });

  test("audited hits record whether the LLM agrees", async () => {
    const deadline = Date.now() + 30_000;
    let n = 0;
    while (Date.now() < deadline) {
      ({ n } = await queryOne<{ n: number }>(h.db.db, sql`select count(*)::int as n from cache_audits where agree is not null`));
      if (n > 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(n > 0, "an audit row was written");
    const { calls } = await queryOne<{ calls: number }>(h.db.db, sql`select count(*)::int as calls from llm_calls where lane = 'audit'`);
    assert.ok(calls > 0, "the audit's LLM call is recorded (and costed)");
  });
});

describe("semantic cache off by default for every task", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: { SIEVE_SEMANTIC_CACHE: "pgvector", SIEVE_SEMANTIC_THRESHOLD_CLASSIFY: String(THRESHOLD), SIEVE_CLASSIFY_MAX_WAIT_MS: "20" } });
  });
  after(async () => h.close());

  async function fills(): Promise<number> {
    const q = new Queue("cache-fill", { connection: { url: h.env.REDIS_URL }, prefix: h.env.SIEVE_QUEUE_PREFIX });
    try {
      return (await q.getCompletedCount()) + (await q.getWaitingCount()) + (await q.getActiveCount());
    } finally {
      await q.close();
    }
  }
  const send = (text: string, extra: Record<string, unknown> = {}) =>
    h.call("acme", "POST", "/v1/jobs?wait=30s", { task: "classify", labels: LABELS, items: [{ id: "q", text }], ...extra });

  test("no embedding work unless a request asks for it", async () => {
    await send("Where is my new card?");
    assert.equal(await fills(), 0, "answers of requests that do not use it are not embedded");
    assert.equal((await send("Where is my card?")).body.items[0].cache, null);
    await send("Why was my transfer declined?", { cache: { semantic: true } });
    const deadline = Date.now() + 30_000;
    while ((await fills()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await fills(), 1, "a request that asks for it fills the semantic cache");
  });
});
