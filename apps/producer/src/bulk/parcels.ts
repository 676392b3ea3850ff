/**
 * Enqueueing the items of a stored job as realtime parcels, page by page from Postgres (bulk jobs
 * in the realtime lane; batch-lane jobs of a provider without a batch API). Same parcel shape and
 * options as submit.ts.
 */
import { batchPolicy, parcelJobId, type ProviderName, type TaskParams } from "@sieve/shared";
import { pendingItemsPage, touchBulkJob } from "@sieve/shared/db/ops/batchIngest";
import type { ApiContext } from "../context.js";
import { buildParcels, parcelOpts, type DedupContext } from "../submit.js";

/** Reads the job's pending items back page by page and enqueues them as parcels (same shape as submit.ts). */
export async function enqueueRealtime(
  ctx: ApiContext,
  j: { jobId: string; tenantId: string; params: TaskParams; route: { provider: ProviderName; model: string }; key: string; dctx: DedupContext; useDedup: boolean },
): Promise<number> {
  const queue = ctx.queues.get(j.route.provider)!;
  const policy = batchPolicy(ctx.env, j.params.task);
  const page = Math.max(policy.maxItems, Math.floor(ctx.env.SIEVE_BULK_CHUNK_ITEMS / policy.maxItems) * policy.maxItems);
  let after = -1;
  let parcelNo = 0;
  for (;;) {
    const items = await pendingItemsPage(ctx.db, j.jobId, after, page);
    if (items.length === 0) break;
    after = items[items.length - 1]!.seq;
    let misses = items;
    const keyOf = new Map<number, string>();
    for (const it of items) if (it.cacheKey) keyOf.set(it.id, it.cacheKey);
    // Same plan as submit.ts (in-flight coalescing, cache writes) when the cache is on.
    const plan = j.useDedup && ctx.dedup?.afterCreate ? await ctx.dedup.afterCreate(j.jobId, items, keyOf, j.dctx) : undefined;
    if (plan) misses = misses.filter((m) => !plan.hold.has(m.id));
    const parcels = buildParcels({ jobId: j.jobId, tenantId: j.tenantId, batchKey: j.key, route: j.route, params: j.params }, misses, policy.maxItems, plan, keyOf);
    if (parcels.length > 0) {
      await queue.addBulk(parcels.map((p) => ({ name: "parcel", data: p, opts: parcelOpts(ctx, parcelJobId(j.jobId, parcelNo++)) })));
    }
    if (items.length < page) break;
    await touchBulkJob(ctx.db, j.jobId);
    // Let other requests run between pages of a large job.
    await new Promise((r) => setImmediate(r));
  }
  return parcelNo;
}
