/**
 * Database operations on a provider batch row while the lane submits and follows it: the
 * per-batch lease, the poller's list, the ids a lost create must not adopt, and the pages of
 * requests its input is rebuilt from (the first submit and crash recovery use the same path).
 * Reading and flagging a row (getBatchRow, updateBatch) is shared with the API:
 * packages/shared/src/db/ops/batchLane.ts.
 */
import { and, eq, sql } from "drizzle-orm";
import { queryRows, type Db } from "@sieve/shared";
import type { ProviderBatchRow } from "@sieve/shared/db/ops/batchLane";
import { providerBatches, type BatchState } from "@sieve/shared/db/schema/index";

/** States a crashed submitter may have left a batch in: the poller resumes them once their lease expired. */
export const UNSUBMITTED_STATES: readonly BatchState[] = ["preparing", "uploaded", "submitting"];

/** Takes the exclusive lease of a batch row if free or expired; the row as leased, or undefined. */
export async function tryLeaseBatch(db: Db, batchId: number, owner: string, ms: number): Promise<ProviderBatchRow | undefined> {
  const rows = await db
    .update(providerBatches)
    .set({ leaseOwner: owner, leaseUntil: sql`now() + ${`${ms} milliseconds`}::interval` })
    .where(and(eq(providerBatches.id, batchId), sql`(${providerBatches.leaseUntil} is null or ${providerBatches.leaseUntil} < now() or ${providerBatches.leaseOwner} = ${owner})`))
    .returning();
  return rows[0];
}

/** Extends a lease this owner holds; false when it was lost (another process took it over). */
export async function renewLease(db: Db, batchId: number, owner: string, ms: number): Promise<boolean> {
  const rows = await db
    .update(providerBatches)
    .set({ leaseUntil: sql`now() + ${`${ms} milliseconds`}::interval` })
    .where(and(eq(providerBatches.id, batchId), eq(providerBatches.leaseOwner, owner)))
    .returning({ id: providerBatches.id });
  return rows.length > 0;
}

export async function releaseLease(db: Db, batchId: number, owner: string): Promise<void> {
  await db
    .update(providerBatches)
    .set({ leaseOwner: null, leaseUntil: null })
    .where(and(eq(providerBatches.id, batchId), eq(providerBatches.leaseOwner, owner)));
}

/** Batches the poller must look at: at the provider or ended (not settled), and unsubmitted ones whose lease expired. */
export async function batchesToPoll(db: Db, limit = 500): Promise<ProviderBatchRow[]> {
  return db
    .select()
    .from(providerBatches)
    .where(
      sql`(${providerBatches.state} in ('submitted', 'ended')
           or (${providerBatches.state} = any(${sql.param([...UNSUBMITTED_STATES])}::text[]) and (${providerBatches.leaseUntil} is null or ${providerBatches.leaseUntil} < now())))`,
    )
    .orderBy(providerBatches.id)
    .limit(limit);
}

/** Provider batch ids already recorded (reconciling a create whose answer was lost must not adopt one of these). */
export async function knownProviderBatchIds(db: Db, provider: string, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await queryRows<{ id: string }>(
    db,
    sql`select provider_batch_id as id from provider_batches where provider = ${provider} and provider_batch_id = any(${sql.param(ids)}::text[])`,
  );
  return new Set(rows.map((r) => r.id));
}

export interface RequestWithTexts {
  id: number;
  customId: string;
  seq: number;
  itemIds: number[];
  /** Aligned with itemIds (an item deleted meanwhile reads as null). */
  texts: Array<string | null>;
}

/** A page of a batch's requests with their item texts, in file order, after `afterSeq`. */
export async function requestsPage(db: Db, batchId: number, afterSeq: number, limit: number): Promise<RequestWithTexts[]> {
  const rows = await queryRows<{ id: string; customId: string; seq: number; itemIds: Array<string | number>; texts: Array<string | null> }>(
    db,
    sql`select r.id, r.custom_id as "customId", r.seq, r.item_ids as "itemIds",
               array(select i.text from unnest(r.item_ids) with ordinality as u(item_id, ord)
                     left join items i on i.id = u.item_id order by u.ord) as texts
        from batch_requests r where r.batch_id = ${batchId} and r.seq > ${afterSeq}
        order by r.seq limit ${limit}`,
  );
  return rows.map((r) => ({ id: Number(r.id), customId: r.customId, seq: r.seq, itemIds: r.itemIds.map(Number), texts: r.texts }));
}
