/**
 * The batch lane's tables as both the API and the lane use them: handing a job's items to the lane
 * (enqueueJobItems) or moving a job off it (moveJobToRealtime), reading a batch row and flagging it
 * (getBatchRow, updateBatch: an operator's cancel). The lane's own operations (packing, leases,
 * settling) live beside it in apps/workers/src/batch/db/; read-only views are in batchViews.ts.
 * The lane's state machine is documented in packages/shared/src/db/schema/batch.ts and
 * docs/batch-lane.md.
 */
import { eq, sql } from "drizzle-orm";
import type { Db } from "../client.js";
import { queryRows } from "../client.js";
import { providerBatches, type BatchState } from "../schema/index.js";

export type ProviderBatchRow = typeof providerBatches.$inferSelect;

/** States in which a batch counts against admission (sent, or about to be, and not yet ended). */
export const OPEN_STATES: readonly BatchState[] = ["preparing", "uploaded", "submitting", "submitted"];

/**
 * Queues the items of a batch-lane job that have no result yet (all of them, or only `itemIds`);
 * of a lane-auto job, only the items the router sent to the batch lane. Idempotent (ON CONFLICT DO NOTHING): a repeated notify or the orphan sweep cannot queue an item twice.
 */
export async function enqueueJobItems(db: Db, jobId: string, itemIds?: readonly number[]): Promise<number> {
  const only = itemIds ? sql`and i.id = any(${sql.param([...itemIds])}::bigint[])` : sql``;
  const rows = await queryRows<{ n: number }>(
    db,
    sql`with q as (
          insert into batch_items (item_id, job_id, tenant_id, batch_key, provider, model)
          select i.id, j.id, j.tenant_id, j.batch_key, j.provider, j.model
          from items i join jobs j on j.id = i.job_id
          where i.job_id = ${jobId} ${only}
            and (j.lane <> 'auto' or i.lane = 'batch')
            and not exists (select 1 from results r where r.item_id = i.id)
          on conflict (item_id) do nothing
          returning 1)
        select count(*)::int as n from q`,
  );
  return rows[0]?.n ?? 0;
}

/** Rewrites a job to the realtime lane (a provider without a batch API, e.g. vLLM: docs/batch-lane.md). */
export async function moveJobToRealtime(db: Db, jobId: string, batchKey: string, parcelCount: number): Promise<void> {
  await db.execute(sql`update jobs set lane = 'realtime', batch_key = ${batchKey}, enqueued = true, parcel_count = ${parcelCount} where id = ${jobId}`);
}

export type BatchPatch = Partial<Omit<ProviderBatchRow, "id" | "createdAt">>;

export async function updateBatch(db: Db, batchId: number, patch: BatchPatch): Promise<void> {
  await db.update(providerBatches).set(patch).where(eq(providerBatches.id, batchId));
}

export async function getBatchRow(db: Db, batchId: number): Promise<ProviderBatchRow | undefined> {
  const rows = await db.select().from(providerBatches).where(eq(providerBatches.id, batchId)).limit(1);
  return rows[0];
}
