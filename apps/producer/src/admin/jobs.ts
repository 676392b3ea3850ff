/**
 * Job queries and the "retry failed items" action of the console. A retry deletes the job's error
 * results (one transaction that also moves the job counters back and takes the failures out of the
 * rollups), then hands the items back to their lane: the realtime lane gets ONE repair parcel under
 * the id the sweeper uses (`<job>-repair`, so a second click or the sweeper cannot add another),
 * the batch lane gets the items back in `batch_items` (ON CONFLICT DO NOTHING). Results stay one
 * per item: the primary key on results.item_id and the workers' skip of items that already have
 * one (README, "Crash safety").
 */
import { sql } from "drizzle-orm";
import { buildParcel, queryRows, repairParcelId, repairParcelJobOptions, TaskParams, type Db, type ProviderName } from "@sieve/shared";
import { pendingItemsOfJob, type JobRow } from "@sieve/shared/db/ops/jobs";
import { unrollFailed } from "@sieve/shared/db/ops/rollups";
import type { ApiContext } from "../context.js";

export interface JobListRow {
  id: string;
  tenantId: string;
  task: string;
  lane: string;
  provider: string;
  model: string;
  status: string;
  itemCount: number;
  doneCount: number;
  errorCount: number;
  cachedCount: number;
  createdAt: string;
}

export const JOB_STATUSES = ["pending", "completed", "partial", "failed"] as const;

export async function listJobs(db: Db, f: { tenant?: string | undefined; status?: string | undefined; before?: string | undefined; limit: number }): Promise<JobListRow[]> {
  const conds = [sql`true`];
  if (f.tenant) conds.push(sql`tenant_id = ${f.tenant}`);
  if (f.status) conds.push(sql`status = ${f.status}`);
  if (f.before) conds.push(sql`created_at < ${f.before}`);
  return queryRows(
    db,
    sql`select id, tenant_id as "tenantId", task, lane, provider, model, status, item_count as "itemCount", done_count as "doneCount",
          error_count as "errorCount", cached_count as "cachedCount", created_at as "createdAt"
        from jobs where ${sql.join(conds, sql` and `)} order by created_at desc limit ${f.limit}`,
  );
}

export async function getJobAny(db: Db, id: string): Promise<JobRow | undefined> {
  const rows = await queryRows<Record<string, unknown>>(db, sql`select * from jobs where id = ${id}`);
  const r = rows[0];
  if (!r) return undefined;
  return {
    id: r.id, tenantId: r.tenant_id, task: r.task, params: r.params, lane: r.lane, provider: r.provider, model: r.model,
    promptVersion: r.prompt_version, batchKey: r.batch_key, status: r.status, itemCount: r.item_count, doneCount: r.done_count,
    errorCount: r.error_count, enqueued: r.enqueued, parcelCount: r.parcel_count, cachedCount: r.cached_count, cacheOptions: r.cache_options,
    createdAt: new Date(r.created_at as string), completedAt: r.completed_at ? new Date(r.completed_at as string) : null,
  } as JobRow;
}

export interface ItemRow {
  itemId: number;
  seq: number;
  externalId: string;
  text: string;
  status: string | null;
  output: unknown;
  errorCode: string | null;
  errorMessage: string | null;
  cache: string | null;
  costUsd: string | null;
  savedUsd: string | null;
  llmCallId: number | null;
  callProvider: string | null;
  callModel: string | null;
  callItems: number | null;
  callCostUsd: string | null;
  callLatencyMs: number | null;
  callOutcome: string | null;
  resultProvider: string | null;
  resultModel: string | null;
}

const ITEM_COLS = sql`i.id::int as "itemId", i.seq, i.external_id as "externalId", left(i.text, 300) as text, r.status, r.output, r.error_code as "errorCode",
  r.error_message as "errorMessage", r.cache, r.cost_usd::text as "costUsd", r.saved_usd::text as "savedUsd", r.llm_call_id::int as "llmCallId",
  c.provider as "callProvider", c.model as "callModel", c.item_count as "callItems", c.cost_usd::text as "callCostUsd", c.latency_ms as "callLatencyMs",
  c.outcome as "callOutcome", r.provider as "resultProvider", r.model as "resultModel"`;

/** Failed items first (index results_job_status_idx), then a page of all items in order. */
export async function jobItems(db: Db, jobId: string, afterSeq: number, limit: number): Promise<{ failed: ItemRow[]; page: ItemRow[] }> {
  const failed = await queryRows<ItemRow>(
    db,
    sql`select ${ITEM_COLS} from results r join items i on i.id = r.item_id left join llm_calls c on c.id = r.llm_call_id
        where r.job_id = ${jobId} and r.status = 'error' order by i.seq limit 200`,
  );
  const page = await queryRows<ItemRow>(
    db,
    sql`select ${ITEM_COLS} from items i left join results r on r.item_id = i.id left join llm_calls c on c.id = r.llm_call_id
        where i.job_id = ${jobId} and i.seq > ${afterSeq} order by i.seq limit ${limit}`,
  );
  return { failed, page };
}

/** Cost and savings of a job, summed from its results (bounded by the job's own size). */
export async function jobMoney(db: Db, jobId: string): Promise<{ cost: number; saved: number; calls: number }> {
  const rows = await queryRows<{ cost: number; saved: number; calls: number }>(
    db,
    sql`select coalesce(sum(cost_usd), 0)::float8 as cost, coalesce(sum(saved_usd), 0)::float8 as saved, count(distinct llm_call_id)::int as calls
        from results where job_id = ${jobId}`,
  );
  return rows[0] ?? { cost: 0, saved: 0, calls: 0 };
}

/** Re-enqueues a job's failed items. Returns how many were handed back (0 when none had failed). */
export async function retryFailedItems(ctx: ApiContext, jobId: string): Promise<number> {
  const job = await getJobAny(ctx.db, jobId);
  if (!job) return 0;
  const removed = await ctx.db.transaction(async (tx) => {
    const rows = await queryRows<{ itemId: number; createdAt: string; tenantId: string; provider: string | null; model: string | null; code: string | null }>(
      tx as unknown as Db,
      sql`delete from results where job_id = ${jobId} and status = 'error'
          returning item_id::int as "itemId", created_at as "createdAt", tenant_id as "tenantId", provider, model, error_code as code`,
    );
    if (rows.length === 0) return rows;
    await (tx as unknown as Db).execute(
      sql`update jobs set done_count = done_count - ${rows.length}, error_count = greatest(0, error_count - ${rows.length}),
            status = 'pending', completed_at = null where id = ${jobId}`,
    );
    await unrollFailed(tx as unknown as Db, rows.map((r) => ({ ...r, createdAt: new Date(r.createdAt).toISOString(), lane: job.lane })));
    return rows;
  });
  if (removed.length === 0) return 0;
  const itemIds = removed.map((r) => r.itemId);
  if (job.lane === "batch" && ctx.batchLane) {
    await ctx.batchLane.notify(jobId, itemIds.length, itemIds);
    return itemIds.length;
  }
  const queue = ctx.queues.get(job.provider as ProviderName);
  if (!queue) throw new Error(`provider ${job.provider} is not configured in this process`);
  // Only the items this retry reopened: other pending items of the job still have their parcels.
  const reopened = new Set(itemIds);
  const pending = (await pendingItemsOfJob(ctx.db, jobId)).filter((it) => reopened.has(it.id));
  const parcel = buildParcel(
    { jobId, tenantId: job.tenantId, batchKey: job.batchKey, route: { provider: job.provider as ProviderName, model: job.model }, params: TaskParams.parse(job.params) },
    pending.map((it) => ({ id: it.id, text: it.text })),
  );
  // Same id as the sweeper's repair parcel: at most one live, and the sweeper sees it.
  const state = await queue.getJobState(repairParcelId(jobId));
  if (state === "completed" || state === "failed") await queue.remove(repairParcelId(jobId)).catch(() => 0);
  await queue.add("parcel", parcel, repairParcelJobOptions(ctx.env, jobId));
  return itemIds.length;
}
