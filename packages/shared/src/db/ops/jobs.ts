import { and, asc, eq, gt, sql } from "drizzle-orm";
import type { Db } from "../client.js";
import { queryRows } from "../client.js";
import { items, jobs, results } from "../schema/index.js";
import { claimIdempotencyKey, type IdempotencyClaim } from "./idempotency.js";

export interface NewJob {
  id: string;
  tenantId: string;
  task: string;
  params: unknown;
  lane: "realtime" | "batch" | "auto";
  provider: string;
  model: string;
  promptVersion: string;
  batchKey: string;
  cacheOptions?: unknown;
  /** The caller's deadline, if it gave one. */
  deadlineAt?: Date;
  /** `lane`, `laneReason`, `route`: where the item goes and why (docs/gpu-lane.md). */
  items: Array<{ externalId: string; text: string; cacheKey?: string | null; lane?: string; laneReason?: string; route?: string }>;
  /** The request's Idempotency-Key, claimed in the same transaction (IdempotencyKeyTaken when taken). */
  idempotency?: IdempotencyClaim | undefined;
}

export interface CreatedItem {
  id: number;
  seq: number;
  externalId: string;
  text: string;
}

/** Rows per multi-row INSERT (Postgres allows 65,535 parameters per statement). */
const INSERT_CHUNK = 5_000;

/** Inserts a job, its items and its idempotency key in one transaction; returns the item ids in submission order. */
export async function createJob(db: Db, job: NewJob): Promise<CreatedItem[]> {
  return db.transaction(async (tx) => {
    await tx.insert(jobs).values({
      id: job.id,
      tenantId: job.tenantId,
      task: job.task,
      params: job.params,
      lane: job.lane,
      provider: job.provider,
      model: job.model,
      promptVersion: job.promptVersion,
      batchKey: job.batchKey,
      itemCount: job.items.length,
      cacheOptions: job.cacheOptions ?? null,
      deadlineAt: job.deadlineAt ?? null,
    });
    // Before the items: a second request with the same key waits here for the first to commit.
    if (job.idempotency) await claimIdempotencyKey(tx, job.tenantId, job.id, job.idempotency);
    const out: CreatedItem[] = [];
    for (let start = 0; start < job.items.length; start += INSERT_CHUNK) {
      const chunk = job.items.slice(start, start + INSERT_CHUNK);
      const rows = await tx
        .insert(items)
        .values(
          chunk.map((it, i) => ({
            jobId: job.id,
            tenantId: job.tenantId,
            seq: start + i,
            externalId: it.externalId,
            text: it.text,
            cacheKey: it.cacheKey ?? null,
            lane: it.lane ?? null,
            laneReason: it.laneReason ?? null,
            route: it.route ?? null,
          })),
        )
        .returning({ id: items.id, seq: items.seq, externalId: items.externalId, text: items.text });
      out.push(...rows);
    }
    out.sort((a, b) => a.seq - b.seq);
    return out;
  });
}

export async function markEnqueued(db: Db, jobId: string, parcelCount: number): Promise<void> {
  await db.update(jobs).set({ enqueued: true, parcelCount }).where(eq(jobs.id, jobId));
}

export async function deleteJob(db: Db, jobId: string): Promise<void> {
  await db.delete(jobs).where(eq(jobs.id, jobId));
}

export type JobRow = typeof jobs.$inferSelect;

/** A job, only if it belongs to the tenant (another tenant's id reads as not found). */
export async function getJob(db: Db, tenantId: string, jobId: string): Promise<JobRow | undefined> {
  const rows = await db.select().from(jobs).where(and(eq(jobs.id, jobId), eq(jobs.tenantId, tenantId))).limit(1);
  return rows[0];
}

export interface JobTotals {
  /** Sum of the items' shares of their LLM calls. */
  costUsd: number;
  /** Estimated cost the cache hits avoided. */
  savedUsd: number;
  /** Items answered by a cache (exact, semantic or coalesced). */
  cached: number;
}

export async function getJobTotals(db: Db, jobId: string): Promise<JobTotals> {
  const rows = await queryRows<{ usd: string; saved: string; cached: number }>(
    db,
    sql`select coalesce(sum(cost_usd), 0)::text as usd, coalesce(sum(saved_usd), 0)::text as saved,
               count(*) filter (where cache is not null)::int as cached
        from results where job_id = ${jobId}`,
  );
  const r = rows[0];
  return { costUsd: Number(r?.usd ?? 0), savedUsd: Number(r?.saved ?? 0), cached: r?.cached ?? 0 };
}

export interface ItemView {
  itemId: number;
  seq: number;
  externalId: string;
  status: "pending" | "ok" | "error";
  output: unknown;
  errorCode: string | null;
  errorMessage: string | null;
  provider: string | null;
  model: string | null;
  llmCallId: number | null;
  costUsd: string | null;
  cache: string | null;
  cacheSource: unknown;
  lane: string | null;
  laneReason: string | null;
}

/** Items of a job with their results, in submission order, keyset-paginated by seq. */
export async function listJobItems(db: Db, jobId: string, opts: { afterSeq?: number; limit: number }): Promise<ItemView[]> {
  const rows = await db
    .select({
      itemId: items.id,
      seq: items.seq,
      externalId: items.externalId,
      status: results.status,
      output: results.output,
      errorCode: results.errorCode,
      errorMessage: results.errorMessage,
      provider: results.provider,
      model: results.model,
      llmCallId: results.llmCallId,
      costUsd: results.costUsd,
      cache: results.cache,
      cacheSource: results.cacheSource,
      lane: items.lane,
      laneReason: items.laneReason,
    })
    .from(items)
    .leftJoin(results, eq(results.itemId, items.id))
    .where(and(eq(items.jobId, jobId), gt(items.seq, opts.afterSeq ?? -1)))
    .orderBy(asc(items.seq))
    .limit(opts.limit);
  return rows.map((r) => ({ ...r, status: (r.status ?? "pending") as ItemView["status"] }));
}

/**
 * Items of a job that have no result yet, with their route when the lane router set one.
 * `skipBatchLane`: leave out items the lane router sent to the batch lane (it follows them,
 * docs/batch-lane.md).
 */
export async function pendingItemsOfJob(db: Db, jobId: string, opts: { skipBatchLane?: boolean } = {}): Promise<Array<{ id: number; text: string; route: string | null; cacheKey: string | null }>> {
  const skip = opts.skipBatchLane ? sql`and i.lane is distinct from 'batch'` : sql``;
  return queryRows(
    db,
    sql`select i.id::int as id, i.text, i.route, i.cache_key as "cacheKey" from items i left join results r on r.item_id = i.id
        where i.job_id = ${jobId} and r.item_id is null ${skip} order by i.seq`,
  );
}

/** Jobs not finished, created before `olderThan`: candidates for the sweeper. */
/**
 * Pending realtime/auto jobs created before `olderThan`, oldest first, `limit` at a time. Pass the
 * last row of a page as `after` for the next one (keyset paging: a backlog of live jobs never hides
 * the orphans behind it).
 */
export async function staleJobs(db: Db, olderThan: Date, limit = 100, after?: { createdAt: Date; id: string }): Promise<JobRow[]> {
  return db
    .select()
    .from(jobs)
    .where(
      and(
        eq(jobs.status, "pending"),
        sql`${jobs.lane} in ('realtime', 'auto')`,
        sql`${jobs.createdAt} < ${olderThan.toISOString()}`,
        after ? sql`(${jobs.createdAt}, ${jobs.id}) > (${after.createdAt.toISOString()}::timestamptz, ${after.id})` : undefined,
      ),
    )
    .orderBy(asc(jobs.createdAt), asc(jobs.id))
    .limit(limit);
}

export async function setCachedCount(db: Db, jobId: string, n: number): Promise<void> {
  await db.update(jobs).set({ cachedCount: n }).where(eq(jobs.id, jobId));
}

/** Rewrites the lane and its reason of some items (e.g. lane auto items a cache answered after routing). */
export async function setItemLanes(db: Db, itemIds: readonly number[], lane: string, laneReason: string): Promise<void> {
  if (itemIds.length === 0) return;
  await db.execute(sql`update items set lane = ${lane}, lane_reason = ${laneReason} where id = any(${sql.param([...itemIds])}::bigint[])`);
}
