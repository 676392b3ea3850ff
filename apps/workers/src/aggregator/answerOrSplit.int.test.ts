/**
 * answerOrSplit's split-retry, against real Postgres, with a scripted provider standing in for the
 * unreachable LLM: it drops one "poison" item from every answer.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { createLogger, queryRows, ProviderError, DEFAULT_PRICES, type TaskParams } from "@sieve/shared";
import { createTestDb, type TestDb } from "@sieve/shared/db/testing";
import { createJob } from "@sieve/shared/db/ops/jobs";
import { ensureTenant } from "@sieve/shared/db/ops/tenants";
import type { LlmProvider, StructuredCallRequest } from "../providers/types.js";
import { answerOrSplit, type BatchItem } from "./answerOrSplit.js";

const params: TaskParams = { task: "classify", labels: ["a", "b"] };
let db: TestDb;
before(async () => {
  db = await createTestDb("sieve_exec");
  await ensureTenant(db.db, "t");
});
after(async () => db.drop());

function scripted(answer: (req: StructuredCallRequest) => unknown | Error): LlmProvider & { calls: number[] } {
  const calls: number[] = [];
  return {
    name: "openai",
    calls,
    async callStructured(req) {
      calls.push(req.items.length);
      const a = answer(req);
      if (a instanceof Error) throw a;
      return { answer: a, usage: { inputTokens: 100, outputTokens: 10 }, latencyMs: 1 };
    },
  };
}

async function items(n: number, jobId: string, texts?: (i: number) => string): Promise<BatchItem[]> {
  const created = await createJob(db.db, {
    id: jobId, tenantId: "t", task: "classify", params, lane: "realtime", provider: "openai", model: "gpt-4.1-mini", promptVersion: "classify.v1", batchKey: "bk",
    items: Array.from({ length: n }, (_, i) => ({ externalId: `e${i}`, text: texts ? texts(i) : `text ${i}` })),
  });
  return created.map((c) => ({ itemId: c.id, jobId, tenantId: "t", text: c.text }));
}

const ctx = (provider: LlmProvider) => ({ db: db.db, provider, model: "gpt-4.1-mini", params, batchKey: "bk", lane: "realtime" as const, prices: DEFAULT_PRICES, timeoutMs: 1000, log: createLogger({ level: "silent" }) });

test("one poison item among 16: neighbours answered, poison ends alone with its error, few calls", async () => {
  const batch = await items(16, "job_poison", (i) => (i === 11 ? "POISON" : `text ${i}`));
  const p = scripted((req) => ({ results: req.items.filter((it) => it.text !== "POISON").map((it) => ({ id: it.id, label: "a" })) }));
  const res = await answerOrSplit(ctx(p), batch);
  assert.equal(res.final.size, 16);
  assert.equal(res.transient, undefined);
  // 1 call of 16, then the poison alone, once more alone (2 single attempts).
  assert.deepEqual(p.calls, [16, 1, 1]);
  const rows = await queryRows<{ status: string; n: number }>(db.db, sql`select status, count(*)::int as n from results where job_id = 'job_poison' group by status order by status`);
  assert.deepEqual(rows, [{ status: "error", n: 1 }, { status: "ok", n: 15 }]);
});

test("an unparseable answer is split in halves down to singles", async () => {
  const batch = await items(4, "job_split");
  const p = scripted((req) => (req.items.length > 1 ? { nope: true } : { results: [{ id: req.items[0]!.id, label: "b" }] }));
  await answerOrSplit(ctx(p), batch);
  assert.deepEqual(p.calls, [4, 2, 1, 1, 2, 1, 1]);
  const { length } = await queryRows(db.db, sql`select 1 from results where job_id = 'job_split' and status = 'ok'`);
  assert.equal(length, 4);
});

test("a transient failure stops the batch and reports the items to retry", async () => {
  const batch = await items(5, "job_429");
  const p = scripted(() => new ProviderError({ provider: "openai", kind: "rate_limited", message: "slow down", status: 429, retryAfterMs: 1500 }));
  const res = await answerOrSplit(ctx(p), batch);
  assert.equal(res.final.size, 0);
  assert.equal(res.transient?.itemIds.length, 5);
  assert.equal(res.transient?.error.retryAfterMs, 1500);
  const calls = await queryRows<{ outcome: string }>(db.db, sql`select outcome from llm_calls where batch_key = 'bk' and outcome = 'rate_limited'`);
  assert.equal(calls.length, 1, "the failed request is recorded");
});

test("401 ends every item at once with the provider's message; 400 is split to find the culprit", async () => {
  const b1 = await items(3, "job_401");
  const p1 = scripted(() => new ProviderError({ provider: "openai", kind: "client", status: 401, message: "Incorrect API key provided" }));
  await answerOrSplit(ctx(p1), b1);
  assert.deepEqual(p1.calls, [3]);
  const errs = await queryRows<{ error_message: string }>(db.db, sql`select error_message from results where job_id = 'job_401'`);
  assert.equal(errs.length, 3);
  assert.ok(errs.every((e) => e.error_message.includes("Incorrect API key")));

  const b2 = await items(4, "job_400", (i) => (i === 2 ? "BAD" : `ok ${i}`));
  const p2 = scripted((req) => (req.items.some((it) => it.text === "BAD") ? new ProviderError({ provider: "openai", kind: "client", status: 400, message: "content policy" }) : { results: req.items.map((it) => ({ id: it.id, label: "a" })) }));
  await answerOrSplit(ctx(p2), b2);
  const st = await queryRows<{ status: string; n: number }>(db.db, sql`select status, count(*)::int as n from results where job_id = 'job_400' group by status order by status`);
  assert.deepEqual(st, [{ status: "error", n: 1 }, { status: "ok", n: 3 }]);
});

test("running the same batch twice never creates a second result", async () => {
  const batch = await items(3, "job_twice");
  const p = scripted((req) => ({ results: req.items.map((it) => ({ id: it.id, label: "a" })) }));
  await answerOrSplit(ctx(p), batch);
  await answerOrSplit(ctx(p), batch);
  const { length } = await queryRows(db.db, sql`select 1 from results where job_id = 'job_twice'`);
  assert.equal(length, 3);
  const job = await queryRows<{ done_count: number }>(db.db, sql`select done_count from jobs where id = 'job_twice'`);
  assert.equal(job[0]!.done_count, 3, "counters move only by inserted rows");
});
