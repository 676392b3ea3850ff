/**
 * The API side of the batch lane (`ctx.batchLane`): queue a stored batch-lane job's items in
 * Postgres (batch_items) and kick the packer. Nothing per item goes to Redis: one deduplicated
 * "pack" job. A provider without a batch API gets its jobs' items as realtime parcels instead.
 */
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { eq } from "drizzle-orm";
import { BATCH_LANE_QUEUE, PACK_KICK_ID, TaskParams, batchKeyFor, coerceError, type Db, type Env, type Logger, type ProviderName } from "@sieve/shared";
import { jobs } from "@sieve/shared/db/schema/index";
import { enqueueJobItems, moveJobToRealtime } from "@sieve/shared/db/ops/batchLane";
import type { ApiContext, BatchLaneApi } from "../context.js";
import { enqueueStoredItems } from "./parcels.js";

/** Providers with a batch API (vLLM has none: docs/providers.md). */
export function hasBatchApi(provider: ProviderName): boolean {
  return provider === "openai" || provider === "anthropic";
}

export function createBatchLane(deps: { env: Env; db: Db; connection: Redis; log: Logger; ctx: () => ApiContext }): BatchLaneApi {
  const queue = new Queue(BATCH_LANE_QUEUE, { connection: deps.connection, prefix: deps.env.SIEVE_QUEUE_PREFIX });
  deps.ctx().monitor.watch(queue, "batch lane queue");
  const kick = async () => {
    await queue.add("pack", { kind: "pack" }, { deduplication: { id: PACK_KICK_ID, ttl: 1_000 }, removeOnComplete: true, removeOnFail: true });
  };
  const kickPoll = async () => {
    await queue.add("poll", { kind: "poll" }, { deduplication: { id: `${PACK_KICK_ID}-poll`, ttl: 1_000 }, removeOnComplete: true, removeOnFail: true });
  };
  return {
    async notify(jobId, _itemCount, itemIds) {
      const job = (await deps.db.select().from(jobs).where(eq(jobs.id, jobId)).limit(1))[0];
      if (!job) return;
      const provider = job.provider as ProviderName;
      if (!hasBatchApi(provider)) {
        const params = TaskParams.parse(job.params);
        const route = { provider, model: job.model };
        const key = batchKeyFor(deps.env, { tenantId: job.tenantId, params }, route, "realtime");
        // No dedup context: no in-flight claims, and the parcels carry no cache policy (their answers are not cached).
        const parcels = await enqueueStoredItems(deps.ctx(), { jobId, tenantId: job.tenantId, params, route, batchKey: key }, undefined);
        await moveJobToRealtime(deps.db, jobId, key, parcels);
        deps.log.info({ jobId, provider, parcels }, "batch-lane job moved to the realtime lane: the provider has no batch API");
        return;
      }
      const n = await enqueueJobItems(deps.db, jobId, itemIds);
      deps.log.debug({ jobId, queued: n }, "batch-lane items queued");
      // A lost kick only delays packing until the packer's next tick.
      await kick().catch((e) => deps.log.warn({ err: coerceError(e).message }, "could not kick the batch packer"));
    },
    kick,
    kickPoll,
    close: () => queue.close(),
  };
}
