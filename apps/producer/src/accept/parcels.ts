/**
 * Putting an accepted job's items on the realtime queues as parcels (built by
 * packages/shared/src/parcels.ts): from memory (a request's items), or page by page from Postgres
 * (a bulk job in the realtime lane; a batch-lane job of a provider without a batch API).
 */
import { cutIntoParcels, parcelJobOptions, parcelSize, type Parcel, type ParcelItemInput, type ProviderName, type Route, type TaskParams } from "@sieve/shared";
import { pendingItemsPage, touchBulkJob } from "@sieve/shared/db/ops/batchIngest";
import type { ApiContext } from "../context.js";
import type { DedupContext, DedupPlan } from "./dedupHook.js";

/**
 * Parcel items with their cache instructions: with a dedup plan, each item's exact-cache key
 * (its answer is written under it) and whether it leads its key's in-flight claim.
 */
export function parcelItems(items: ReadonlyArray<{ id: number; text: string }>, plan: DedupPlan | undefined, keyOf: ReadonlyMap<number, string>): ParcelItemInput[] {
  return items.map((it) => {
    const key = plan ? keyOf.get(it.id) : undefined;
    return { id: it.id, text: it.text, ...(key ? { cacheKey: key, lead: plan!.lead.has(it.id) } : {}) };
  });
}

/**
 * One addBulk per provider queue. Parcel ids are the job's, numbered from `first` across queues
 * (the sweeper looks for them on each). Returns the next free number.
 */
export async function addParcels(ctx: ApiContext, jobId: string, parcels: readonly Parcel[], first = 0): Promise<number> {
  let index = first;
  const byQueue = new Map<ProviderName, Array<{ name: string; data: Parcel; opts: ReturnType<typeof parcelJobOptions> }>>();
  for (const p of parcels) {
    const list = byQueue.get(p.provider) ?? [];
    list.push({ name: "parcel", data: p, opts: parcelJobOptions(ctx.env, jobId, index++) });
    byQueue.set(p.provider, list);
  }
  for (const [provider, list] of byQueue) {
    const q = ctx.queues.get(provider);
    if (!q) throw new Error(`no queue for provider ${provider}`);
    await q.addBulk(list);
  }
  return index;
}

/**
 * Reads a stored job's pending items back page by page and enqueues them as parcels. With `dctx`
 * (the caches are on for the job), each page is coalesced first, as on submit, and the answers are
 * written to the caches under its policy. Returns the number of parcels.
 */
export async function enqueueStoredItems(
  ctx: ApiContext,
  job: { jobId: string; tenantId: string; params: TaskParams; route: Route; batchKey: string },
  dctx: DedupContext | undefined,
): Promise<number> {
  const size = parcelSize(ctx.env, job.params.task);
  // Whole parcels per page: only the job's last parcel holds fewer than `size` items.
  const page = Math.max(size, Math.floor(ctx.env.SIEVE_BULK_CHUNK_ITEMS / size) * size);
  let after = -1;
  let parcelNo = 0;
  for (;;) {
    const items = await pendingItemsPage(ctx.db, job.jobId, after, page);
    if (items.length === 0) break;
    after = items[items.length - 1]!.seq;
    let misses = items;
    const keyOf = new Map<number, string>();
    for (const it of items) if (it.cacheKey) keyOf.set(it.id, it.cacheKey);
    const plan = dctx && ctx.dedup?.afterCreate ? await ctx.dedup.afterCreate(job.jobId, items, keyOf, dctx) : undefined;
    if (plan) misses = misses.filter((m) => !plan.hold.has(m.id));
    const parcels = cutIntoParcels(ctx.env, { ...job, cache: plan ? dctx!.policy : undefined }, parcelItems(misses, plan, keyOf));
    if (parcels.length > 0) parcelNo = await addParcels(ctx, job.jobId, parcels, parcelNo);
    if (items.length < page) break;
    await touchBulkJob(ctx.db, job.jobId);
    // Let other requests run between pages of a large job.
    await new Promise((r) => setImmediate(r));
  }
  return parcelNo;
}
