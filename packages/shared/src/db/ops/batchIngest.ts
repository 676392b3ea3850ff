/**
 * Bulk ingestion (POST /v1/bulk, the nightly inbox): a job row first, items streamed in by chunks,
 * the item count fixed at the end.
 *
 * While a bulk job is being ingested its status is "ingesting" and its item_count is
 * INGESTING_ITEM_COUNT (the largest integer), so results that arrive before the upload ends (the
 * realtime lane starts on the first chunk) can never make recordOutcome think the job is done; the
 * sweeper (status "pending" only) and the batch packer (skips "ingesting" jobs) leave it alone.
 * `finishBulkJob` then sets the real count and the status recordOutcome would have set.
 */
import { sql } from "drizzle-orm";
import type { Db } from "../client.js";
import { queryRows } from "../client.js";
import { jobs } from "../schema/index.js";
import type { FinishedJob } from "./results.js";
import type { NewJob } from "./jobs.js";
import { claimIdempotencyKey, completeIdempotencyKey, type IdempotencyClaim } from "./idempotency.js";

/** item_count of a job still being ingested (Postgres integer max). */
export const INGESTING_ITEM_COUNT = 2_147_483_647;

/** A bulk job is created before its items arrive. */
export type NewBulkJob = Omit<NewJob, "items" | "idempotency">;

/** The job row of an upload, and its Idempotency-Key (hash still null) in the same transaction. */
export async function createBulkJob(db: Db, job: NewBulkJob, idempotency?: IdempotencyClaim): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.insert(jobs).values({
      ...job,
      cacheOptions: job.cacheOptions ?? null,
      status: "ingesting",
      itemCount: INGESTING_ITEM_COUNT,
      enqueued: false,
    });
    if (idempotency) await claimIdempotencyKey(tx, job.tenantId, job.id, idempotency);
  });
}

export interface BulkItemRow {
  /** Position in the submission (0-based item line index). */
  seq: number;
  externalId: string;
  text: string;
  cacheKey?: string | null;
}

export interface InsertedItem {
  id: number;
  seq: number;
}

/**
 * One multi-row INSERT (unnest: 5 parameters whatever the chunk size) of a chunk of items. A row
 * whose id already exists in the job is skipped (ON CONFLICT DO NOTHING): the caller reports it as
 * a duplicate line. With `batchLane`, the same statement also queues the inserted items for the
 * batch packer (batch_items), so an item can never exist without its queue row.
 */
export async function insertBulkItems(
  db: Db,
  job: { id: string; tenantId: string },
  rows: BulkItemRow[],
  batchLane?: { batchKey: string; provider: string; model: string },
): Promise<InsertedItem[]> {
  if (rows.length === 0) return [];
  const seqs = sql.param(rows.map((r) => r.seq));
  const ids = sql.param(rows.map((r) => r.externalId));
  const texts = sql.param(rows.map((r) => r.text));
  const keys = sql.param(rows.map((r) => r.cacheKey ?? null));
  const insert = sql`insert into items (job_id, tenant_id, seq, external_id, text, cache_key)
      select ${job.id}, ${job.tenantId}, u.seq, u.external_id, u.text, u.cache_key
      from unnest(${seqs}::int[], ${ids}::text[], ${texts}::text[], ${keys}::text[]) with ordinality as u(seq, external_id, text, cache_key, ord)
      order by u.ord
      on conflict (job_id, external_id) do nothing
      returning id, seq`;
  const query = batchLane
    ? sql`with ins as (${insert}),
           q as (insert into batch_items (item_id, job_id, tenant_id, batch_key, provider, model)
                 select id, ${job.id}, ${job.tenantId}, ${batchLane.batchKey}, ${batchLane.provider}, ${batchLane.model} from ins)
           select id::bigint as id, seq from ins`
    : insert;
  const out = await queryRows<{ id: string | number; seq: number }>(db, query);
  return out.map((r) => ({ id: Number(r.id), seq: r.seq }));
}

/**
 * Ends ingestion: the real item count, and the status recordOutcome would have set had it known
 * the count (results may all be in already: cache hits). `enqueued: false` while realtime parcels
 * are still to be enqueued (the sweeper enqueues them if this process dies first). created_at
 * becomes the acceptance time: the sweeper's staleness clock must not count the upload.
 */
export async function finishBulkJob(
  db: Db,
  jobId: string,
  itemCount: number,
  opts: { enqueued: boolean; idempotency?: { requestHash: string; response: unknown } },
): Promise<FinishedJob | undefined> {
  const rows = await db.transaction(async (tx) => {
    // The key gets its body hash in the transaction that makes the job "accepted".
    if (opts.idempotency) await completeIdempotencyKey(tx, jobId, opts.idempotency.requestHash, opts.idempotency.response);
    return finishRow(tx as unknown as Db, jobId, itemCount, opts.enqueued);
  });
  const r = rows[0];
  return r?.finished ? { id: r.id, status: r.status } : undefined;
}

async function finishRow(db: Db, jobId: string, itemCount: number, enqueued: boolean) {
  return queryRows<{ id: string; status: string; finished: boolean }>(
    db,
    sql`update jobs set
          item_count = ${itemCount},
          created_at = now(),
          enqueued = ${enqueued},
          status = case when done_count >= ${itemCount} then
                     case when error_count = 0 then 'completed'
                          when error_count >= ${itemCount} then 'failed'
                          else 'partial' end
                   else 'pending' end,
          completed_at = case when done_count >= ${itemCount} then now() else null end
        where id = ${jobId}
        returning id, status, (done_count >= item_count) as finished`,
  );
}

/** Bulk jobs whose ingestion never finished (the uploading process died), older than `olderThan`. */
export async function abandonedIngests(db: Db, olderThan: Date, limit = 20): Promise<string[]> {
  const rows = await queryRows<{ id: string }>(
    db,
    sql`select id from jobs where status = 'ingesting' and created_at < ${olderThan.toISOString()} order by created_at limit ${limit}`,
  );
  return rows.map((r) => r.id);
}

export interface PendingItem {
  id: number;
  seq: number;
  externalId: string;
  text: string;
  cacheKey: string | null;
}

/** Items of a job without a result, in submission order, keyset-paginated by seq (enqueueing a bulk job in pages). */
export async function pendingItemsPage(db: Db, jobId: string, afterSeq: number, limit: number): Promise<PendingItem[]> {
  const rows = await queryRows<{ id: string; seq: number; externalId: string; text: string; cacheKey: string | null }>(
    db,
    sql`select i.id, i.seq, i.external_id as "externalId", i.text, i.cache_key as "cacheKey"
        from items i where i.job_id = ${jobId} and i.seq > ${afterSeq}
          and not exists (select 1 from results r where r.item_id = i.id)
        order by i.seq limit ${limit}`,
  );
  return rows.map((r) => ({ ...r, id: Number(r.id) }));
}

/**
 * Keeps a bulk job "fresh" for the sweeper while its parcels are being enqueued (a large job takes
 * longer than the sweeper's staleness threshold; a repair parcel meanwhile would call the LLM twice).
 */
export async function touchBulkJob(db: Db, jobId: string): Promise<void> {
  await db.execute(sql`update jobs set created_at = now() where id = ${jobId}`);
}

/** Inbox files name their tenant: it must exist (jobs reference tenants). */
export async function tenantExists(db: Db, tenantId: string): Promise<boolean> {
  const rows = await queryRows<{ id: string }>(db, sql`select id from tenants where id = ${tenantId}`);
  return rows.length > 0;
}
