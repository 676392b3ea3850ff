/**
 * The API side of the batch lane (`ctx.batchLane`): queue a new batch-lane job's items in Postgres
 * (batch_items) and kick the packer. Nothing per item goes to Redis: one deduplicated "pack" job.
 */
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { eq } from "drizzle-orm";
import { BATCH_LANE_QUEUE, PACK_KICK_ID, TaskParams, batchKey, coerceError, type Db, type Env, type Logger, type ProviderName } from "@sieve/shared";
import { jobs } from "@sieve/shared/db/schema/index";
import { enqueueJobItems, moveJobToRealtime } from "@sieve/shared/db/ops/batchLane";
import type { ApiContext } from "../context.js";
import { enqueueRealtime } from "./parcels.js";

/** Providers with a batch API (vLLM has none: docs/providers.md). */
export function hasBatchApi(provider: ProviderName): boolean {
  return provider === "openai" || provider === "anthropic";
}

export interface BatchLaneApi {
  /**
   * A batch-lane job was stored (submit.ts). Queues its items without a result (only `itemIds` when
   * given) and kicks the packer. vLLM jobs are moved to the realtime lane (docs/batch-lane.md).
   */
  notify(jobId: string, itemCount: number, itemIds?: number[]): Promise<void>;
  /** Asks the packer to run now (deduplicated: a burst of submits causes one run). */
  kick(): Promise<void>;
  /** Asks the lifecycle poller to run now (after a cancel request). */
  kickPoll(): Promise<void>;
  close(): Promise<void>;
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
        const ctx = deps.ctx();
        const params = TaskParams.parse(job.params);
        const key = batchKey({ tenantId: job.tenantId, params, provider, model: job.model, lane: "realtime", mixTenants: deps.env.SIEVE_MIX_TENANTS });
        const parcels = await enqueueRealtime(ctx, {
          jobId,
          tenantId: job.tenantId,
          params,
          route: { provider, model: job.model },
          key,
          dctx: { tenantId: job.tenantId, params, route: { provider, model: job.model }, cache: undefined },
          useDedup: false,
        });
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
