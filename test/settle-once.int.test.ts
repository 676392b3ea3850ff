/**
 * One settle per parcel. When a held parcel's lock lapses (a busy event loop, a Redis hiccup),
 * BullMQ's stalled check hands the parcel back to the queue and the SAME worker may fetch it
 * again while its items still wait in a bin. The aggregator must then adopt the new lock and
 * settle the parcel once, with it: not hold it twice (its items sent twice in one call, and a
 * second settle failing with "Missing lock for job ... moveToFinished").
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { sql } from "drizzle-orm";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { createLogger, parcelJobId, providerEndpoints, queryOne } from "@sieve/shared";
import { startWorkers, type WorkersHandle } from "@sieve/workers";
import { startHarness, waitForJob, LABELS, type Harness } from "./support/harness.js";

let h: Harness;
let workers: WorkersHandle;
let queue: Queue;
let redis: Redis;
const lines: string[] = [];

before(async () => {
  // A long maxWait keeps the parcel in a bin while its lock lapses and it comes back.
  h = await startHarness({ workers: false, env: { SIEVE_CLASSIFY_MAX_ITEMS: "50", SIEVE_CLASSIFY_MAX_WAIT_MS: "9000" } });
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      cb();
    },
  });
  const log = createLogger({ level: "debug", destination: sink });
  workers = await startWorkers({ env: h.env, db: h.db.db, endpoints: providerEndpoints(h.env), log, lockDurationMs: 3_000, sweepEveryMs: 0 });
  queue = new Queue("realtime-openai", { connection: { url: h.env.REDIS_URL }, prefix: h.env.SIEVE_QUEUE_PREFIX });
  redis = new Redis(h.env.REDIS_URL);
});

after(async () => {
  await workers.close();
  await queue.close();
  await redis.keys(`${h.env.SIEVE_QUEUE_PREFIX}:*`).then((k) => (k.length > 0 ? redis.del(...k) : 0));
  redis.disconnect();
  await h.close();
});

test("a parcel handed back to the same worker is settled once, its items sent once", async () => {
  const items = Array.from({ length: 5 }, (_, i) => ({ id: `s${i}`, text: `settle once headline ${i}` }));
  const r = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items });
  assert.equal(r.status, 202, r.text);
  const parcelId = parcelJobId(r.body.id, 0);
  const until = async (what: string, fn: () => Promise<boolean>, ms: number) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (await fn()) return;
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.fail(`${what} within ${ms} ms`);
  };
  await until("the parcel is held", async () => (await queue.getJobState(parcelId)) === "active", 10_000);
  // The lock lapses (as when the event loop was blocked for longer than the lock duration).
  await redis.del(`${h.env.SIEVE_QUEUE_PREFIX}:realtime-openai:${parcelId}:lock`);
  await until("the stalled check hands the parcel back and the worker fetches it again", async () => {
    const job = await queue.getJob(parcelId);
    return (job?.stalledCounter ?? 0) >= 1 && (await queue.getJobState(parcelId)) === "active";
  }, 8_000);
  const job = await waitForJob(h, "acme", r.body.id, 30_000);
  assert.equal(job.status, "completed");
  await until("the parcel is completed", async () => (await queue.getJobState(parcelId)) === "completed", 10_000);
  const { sent, calls } = await queryOne<{ sent: number; calls: number }>(h.db.db, sql`select coalesce(sum(item_count), 0)::int as sent, count(*)::int as calls from llm_calls`);
  assert.equal(sent, 5, `each item was sent once (${calls} call(s) carried ${sent} items)`);
  const { results } = await queryOne<{ results: number }>(h.db.db, sql`select count(*)::int as results from results`);
  assert.equal(results, 5);
  const settleFailures = lines.filter((l) => /could not settle parcel|Missing lock/.test(l));
  assert.deepEqual(settleFailures, [], "no second settle of the parcel");
});
