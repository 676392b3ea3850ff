/**
 * A lane-auto job whose API process died between storing it and queueing it (real Redis and
 * Postgres, in-process workers with the sweeper and the batch packer, the provider simulator):
 * its GPU/flex items are re-enqueued by the sweeper, its batch-lane items adopted by the batch
 * packer's orphan sweep; every item is answered exactly once.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { sql } from "drizzle-orm";
import { Queue } from "bullmq";
import { createRedis, publishGpuStats, queryRows, realtimeQueueName, type ProviderName } from "@sieve/shared";
import { startHarness, waitForJob, LABELS, type Harness } from "./support/harness.js";
import { agNewsItems } from "./support/datasets.js";

describe("lane auto: the API dies between storing a job and queueing it", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ workers: false, batchLane: true, batchKnobs: { phaseMs: 100, seed: 4 }, env: { SIEVE_CACHE_ENABLED: "false" } });
  });
  after(async () => h.close());

  test("the sweeper and the batch lane find every item (GPU and batch) and each is answered once", async () => {
    const redis = createRedis(h.env.REDIS_URL, "producer");
    const queues = [...(["openai", "anthropic", "vllm"] as ProviderName[])].map((p) => new Queue(realtimeQueueName(p), { connection: redis, prefix: h.env.SIEVE_QUEUE_PREFIX }));
    try {
      // What a GPU worker publishes: some local capacity, so the job has GPU and batch items.
      await publishGpuStats(redis, h.env.SIEVE_QUEUE_PREFIX, "test-gpu-worker", { itemsPerS: 50, healthyEngines: 1, capacity: 8 });
      const its = agNewsItems(200).map(({ id, text }) => ({ id, text: `${text} [crash]` }));
      const res = await h.call("acme", "POST", "/v1/jobs", { task: "classify", labels: LABELS, lane: "auto", deadline: "P1D", items: its });
      assert.equal(res.status, 202, res.text);
      const id: string = res.body.id;
      const lanes = await queryRows<{ lane: string; n: number }>(h.db.db, sql`select lane, count(*)::int as n from items where job_id = ${id} group by lane order by lane`);
      assert.deepEqual(lanes.map((l) => l.lane), ["batch", "local"], JSON.stringify(lanes));

      // The crash window: the job and its items are stored, nothing is queued (no parcel, no
      // batch_items row, not marked enqueued), and it is old enough for the sweeps.
      for (const q of queues) await q.obliterate({ force: true });
      await h.db.db.execute(sql`delete from batch_items where job_id = ${id}`);
      await h.db.db.execute(sql`update jobs set enqueued = false, parcel_count = 0, created_at = now() - interval '5 minutes' where id = ${id}`);

      await h.startWorkers({ sweepEveryMs: 500, staleAfterMs: 1_000 });
      const job = await waitForJob(h, "acme", id, 90_000);
      assert.equal(job.status, "completed");
      assert.ok(job.items.every((i: any) => i.status === "ok"));
      const [row] = await queryRows<{ results: number; distinct: number; local: number; batch: number }>(
        h.db.db,
        sql`select count(*)::int as results, count(distinct r.item_id)::int as distinct,
                   count(*) filter (where i.lane = 'local' and r.provider = 'vllm')::int as local,
                   count(*) filter (where i.lane = 'batch' and r.provider = 'openai')::int as batch
            from results r join items i on i.id = r.item_id where r.job_id = ${id}`,
      );
      const want = Object.fromEntries(lanes.map((l) => [l.lane, l.n]));
      assert.deepEqual(row, { results: 200, distinct: 200, local: want.local, batch: want.batch });
      // Each item went to exactly one provider request: the GPU calls' items and the provider
      // batch's requests together count every item once.
      const [sent] = await queryRows<{ local: number; batch: number }>(
        h.db.db,
        sql`select (select coalesce(sum(item_count), 0)::int from llm_calls where provider = 'vllm' and outcome = 'ok') as local,
                   (select coalesce(sum(item_count), 0)::int from llm_calls where lane = 'batch' and outcome = 'ok') as batch`,
      );
      assert.equal(sent!.local, want.local, "GPU items answered once each");
      assert.equal(sent!.batch, want.batch, "batch items sent in a provider batch once each");
      const left = await queryRows<{ n: number }>(h.db.db, sql`select count(*)::int as n from batch_items where job_id = ${id}`);
      assert.equal(left[0]!.n, 0, "the batch lane's queue is empty once every item has its result");
    } finally {
      await Promise.all(queues.map((q) => q.close()));
      await redis.quit();
    }
  });
});
