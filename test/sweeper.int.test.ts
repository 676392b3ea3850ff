/**
 * The sweeper ON (every other suite turns it off): items whose parcel vanished from Redis (lost
 * with Redis's data, removed by hand) and followers of an in-flight leader whose parcel vanished
 * are finished by the sweeper alone, each with exactly one result; /readyz reports its heartbeat.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { parcelJobId, queryOne, queryRows } from "@sieve/shared";
import { startHarness, waitForJob, LABELS, type Harness } from "./support/harness.js";

describe("the sweeper", () => {
  let h: Harness;
  let queue: Queue;
  before(async () => {
    h = await startHarness({ workers: false, env: { SIEVE_CLASSIFY_MAX_WAIT_MS: "50" } });
    queue = new Queue("realtime-openai", { connection: { url: h.env.REDIS_URL }, prefix: h.env.SIEVE_QUEUE_PREFIX });
  });
  after(async () => {
    await queue.close();
    await h.close();
    const redis = new Redis(h.env.REDIS_URL);
    const keys = await redis.keys(`${h.env.SIEVE_QUEUE_PREFIX}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  test("orphaned items and followers of a vanished leader are finished, once each", async () => {
    // Accepted while no worker runs: the parcels wait in Redis.
    const orphan = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items: Array.from({ length: 12 }, (_, i) => ({ id: `o${i}`, text: `orphaned headline number ${i}` })) });
    assert.equal(orphan.status, 202, orphan.text);
    const shared = "Leader and follower share this exact headline";
    const leader = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items: [{ id: "lead", text: shared }, { id: "other", text: "a text of the leader's job alone" }] });
    const follower = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, items: [{ id: "follow", text: shared }] });
    assert.equal(leader.status, 202);
    assert.equal(follower.status, 202);
    const { parcels } = await queryOne<{ parcels: number }>(h.db.db, sql`select parcel_count as parcels from jobs where id = ${follower.body.id}`);
    assert.equal(parcels, 0, "the follower was not enqueued: it waits for the leader's answer");

    // The parcels vanish (as when Redis comes back empty).
    for (const jobId of [orphan.body.id, leader.body.id]) assert.equal(await queue.remove(parcelJobId(jobId, 0)), 1);
    assert.equal(await queue.count(), 0);

    await h.startWorkers({ sweepEveryMs: 500, staleAfterMs: 1_000 });
    for (const r of [orphan, leader, follower]) {
      const job = await waitForJob(h, "acme", r.body.id, 60_000);
      assert.equal(job.status, "completed", `${r.body.id}: ${JSON.stringify(job.counts)}`);
    }
    const dup = await queryRows<{ item_id: number }>(h.db.db, sql`select item_id from results group by item_id having count(*) > 1`);
    assert.deepEqual(dup, [], "no item has two results");
    const { items, results } = await queryOne<{ items: number; results: number }>(h.db.db, sql`select (select count(*)::int from items) as items, (select count(*)::int from results) as results`);
    assert.equal(results, items);
    assert.equal(items, 15);

    const ready = await fetch(`${h.api.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as any).checks.sweeper, "ok", "the sweeper's heartbeat is seen");
  });
});
