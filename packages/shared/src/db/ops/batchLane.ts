/**
 * Database operations of the provider Batch API lane. One query per function, the db (or
 * a transaction, cast to Db) passed in. The lane's state machine is documented in
 * packages/shared/src/db/schema/batch.ts and docs/batch-lane.md.
 */
import { and, eq, sql } from "drizzle-orm";
import type { Db } from "../client.js";
import { queryRows } from "../client.js";
import { providerBatches, type BatchState } from "../schema/index.js";

export type ProviderBatchRow = typeof providerBatches.$inferSelect;
export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
/** A transaction used where a Db is expected (drizzle's transaction type is a different generic). */
export const asDb = (tx: Tx): Db => tx as unknown as Db;

/** States in which a batch counts against admission (sent, or about to be, and not yet ended). */
export const OPEN_STATES: readonly BatchState[] = ["preparing", "uploaded", "submitting", "submitted"];
/** States a crashed submitter may have left a batch in: the poller resumes them once their lease expired. */
export const UNSUBMITTED_STATES: readonly BatchState[] = ["preparing", "uploaded", "submitting"];

// ---------------------------------------------------------------------------------------------
// Queueing items for the lane
// ---------------------------------------------------------------------------------------------

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

/**
 * Batch-lane jobs whose items were never queued: pending, older than `olderThan`, not one
 * batch_items row, yet items without a result (the API process died between storing the job and
 * queueing its items). Likewise lane-auto jobs with an item the router sent to the batch lane that
 * has neither a result nor a batch_items row (the API died before handing it to the lane; an item
 * leaves batch_items only with its result). The packer queues them.
 */
export async function orphanBatchJobs(db: Db, olderThan: Date, limit = 50): Promise<string[]> {
  const rows = await queryRows<{ id: string }>(
    db,
    sql`select j.id from jobs j
        where j.lane = 'batch' and j.status = 'pending' and j.created_at < ${olderThan.toISOString()}
          and not exists (select 1 from batch_items bi where bi.job_id = j.id)
          and exists (select 1 from items i where i.job_id = j.id and not exists (select 1 from results r where r.item_id = i.id))
        union all
        select j.id from jobs j
        where j.lane = 'auto' and j.status = 'pending' and j.created_at < ${olderThan.toISOString()}
          and exists (select 1 from items i where i.job_id = j.id and i.lane = 'batch'
                        and not exists (select 1 from results r where r.item_id = i.id)
                        and not exists (select 1 from batch_items bi where bi.item_id = i.id))
        limit ${limit}`,
  );
  return rows.map((r) => r.id);
}

/** Rewrites a job to the realtime lane (a provider without a batch API, e.g. vLLM: docs/batch-lane.md). */
export async function moveJobToRealtime(db: Db, jobId: string, batchKey: string, parcelCount: number): Promise<void> {
  await db.execute(sql`update jobs set lane = 'realtime', batch_key = ${batchKey}, enqueued = true, parcel_count = ${parcelCount} where id = ${jobId}`);
}

// ---------------------------------------------------------------------------------------------
// Admission and packing
// ---------------------------------------------------------------------------------------------

export interface LaneLoad {
  /** Batches not yet ended (including ones being prepared). */
  openBatches: number;
  /** Their estimated prompt tokens. */
  enqueuedTokens: number;
}

export async function laneLoad(db: Db, provider: string): Promise<LaneLoad> {
  const rows = await queryRows<{ n: number; tokens: string }>(
    db,
    sql`select count(*)::int as n, coalesce(sum(est_input_tokens), 0)::text as tokens
        from provider_batches where provider = ${provider} and state = any(${sql.param([...OPEN_STATES])}::text[])`,
  );
  return { openBatches: rows[0]?.n ?? 0, enqueuedTokens: Number(rows[0]?.tokens ?? 0) };
}

export interface WaitingKey {
  batchKey: string;
  model: string;
  /** A job of this key (all share task, params and model). */
  jobId: string;
  waiting: number;
}

/** Batch keys of a provider with waiting items of fully ingested jobs, fewest attempts and oldest first. */
export async function waitingKeys(db: Db, provider: string): Promise<WaitingKey[]> {
  return queryRows<WaitingKey>(
    db,
    sql`select bi.batch_key as "batchKey", bi.model, min(bi.job_id) as "jobId", count(*)::int as waiting
        from batch_items bi join jobs j on j.id = bi.job_id
        where bi.state = 'waiting' and bi.provider = ${provider} and j.status <> 'ingesting'
        group by bi.batch_key, bi.model
        order by min(bi.item_id)`,
  );
}

/** The task parameters of a job. */
export async function jobParams(db: Db, jobId: string): Promise<unknown> {
  const rows = await queryRows<{ params: unknown }>(db, sql`select params from jobs where id = ${jobId}`);
  return rows[0]?.params;
}

export interface WaitingItem {
  itemId: number;
  jobId: string;
  tenantId: string;
  attempts: number;
  text: string;
  /** The item got a result meanwhile (a cache or an identical in-flight item answered it): drop, do not send. */
  answered: boolean;
}

/**
 * A page of waiting items of one batch key, locked for this transaction (FOR UPDATE SKIP LOCKED:
 * two packers never claim the same item, and never wait for each other). Ordered by attempts, so
 * items being retried are packed together (into smaller requests, see the packer).
 */
export async function claimWaitingPage(
  tx: Db,
  opts: { provider: string; batchKey: string; after?: { attempts: number; itemId: number }; limit: number },
): Promise<WaitingItem[]> {
  const after = opts.after ? sql`and (bi.attempts, bi.item_id) > (${opts.after.attempts}, ${opts.after.itemId})` : sql``;
  const rows = await queryRows<{ itemId: string; jobId: string; tenantId: string; attempts: number; text: string; answered: boolean }>(
    tx,
    sql`select bi.item_id as "itemId", bi.job_id as "jobId", bi.tenant_id as "tenantId", bi.attempts, i.text,
               exists (select 1 from results r where r.item_id = bi.item_id) as answered
        from batch_items bi
        join items i on i.id = bi.item_id
        join jobs j on j.id = bi.job_id
        where bi.state = 'waiting' and bi.provider = ${opts.provider} and bi.batch_key = ${opts.batchKey}
          and j.status <> 'ingesting' ${after}
        order by bi.attempts, bi.item_id
        limit ${opts.limit}
        for update of bi skip locked`,
  );
  return rows.map((r) => ({ ...r, itemId: Number(r.itemId) }));
}

export interface NewProviderBatch {
  provider: string;
  model: string;
  batchKey: string;
  params: unknown;
  tenantId: string;
  tenantIds: string[];
}

/** The batch row, state "preparing", counts filled in by `completePreparedBatch`. */
export async function insertPreparingBatch(tx: Db, b: NewProviderBatch): Promise<number> {
  const rows = await tx
    .insert(providerBatches)
    .values({ ...b, state: "preparing", requestCount: 0, itemCount: 0, estInputTokens: 0 })
    .returning({ id: providerBatches.id });
  return rows[0]!.id;
}

export interface NewBatchRequest {
  customId: string;
  seq: number;
  itemIds: number[];
  estInputTokens: number;
}

/**
 * Inserts the requests of a batch and marks their items packed (attempts + 1), in one statement
 * each whatever the number of requests.
 */
export async function insertRequestsAndPack(tx: Db, batchId: number, reqs: NewBatchRequest[]): Promise<void> {
  if (reqs.length === 0) return;
  // item_ids go in as one text[] of "{1,2,3}" literals: unnest cannot take a ragged 2-D array.
  const inserted = await queryRows<{ id: string; seq: number }>(
    tx,
    sql`insert into batch_requests (batch_id, custom_id, seq, item_ids, est_input_tokens)
        select ${batchId}, u.custom_id, u.seq, u.item_ids::bigint[], u.tokens
        from unnest(${sql.param(reqs.map((r) => r.customId))}::text[], ${sql.param(reqs.map((r) => r.seq))}::int[],
                    ${sql.param(reqs.map((r) => `{${r.itemIds.join(",")}}`))}::text[], ${sql.param(reqs.map((r) => r.estInputTokens))}::int[])
             as u(custom_id, seq, item_ids, tokens)
        returning id, seq`,
  );
  const idBySeq = new Map(inserted.map((r) => [r.seq, Number(r.id)]));
  const itemIds: number[] = [];
  const requestIds: number[] = [];
  for (const r of reqs) {
    const rid = idBySeq.get(r.seq)!;
    for (const it of r.itemIds) {
      itemIds.push(it);
      requestIds.push(rid);
    }
  }
  await tx.execute(
    sql`update batch_items bi set state = 'packed', request_id = m.request_id, attempts = bi.attempts + 1
        from unnest(${sql.param(itemIds)}::bigint[], ${sql.param(requestIds)}::bigint[]) as m(item_id, request_id)
        where bi.item_id = m.item_id`,
  );
}

export async function completePreparedBatch(tx: Db, batchId: number, c: { requestCount: number; itemCount: number; estInputTokens: number; inputBytes: number }): Promise<void> {
  await tx.update(providerBatches).set(c).where(eq(providerBatches.id, batchId));
}

// ---------------------------------------------------------------------------------------------
// Leases, states
// ---------------------------------------------------------------------------------------------

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

export type BatchPatch = Partial<Omit<ProviderBatchRow, "id" | "createdAt">>;

export async function updateBatch(db: Db, batchId: number, patch: BatchPatch): Promise<void> {
  await db.update(providerBatches).set(patch).where(eq(providerBatches.id, batchId));
}

export async function getBatchRow(db: Db, batchId: number): Promise<ProviderBatchRow | undefined> {
  const rows = await db.select().from(providerBatches).where(eq(providerBatches.id, batchId)).limit(1);
  return rows[0];
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

// ---------------------------------------------------------------------------------------------
// Building the input from the database (first submit and crash recovery use the same path)
// ---------------------------------------------------------------------------------------------

export interface RequestWithTexts {
  id: number;
  customId: string;
  seq: number;
  itemIds: number[];
  /** Aligned with itemIds (an item deleted meanwhile reads as null). */
  texts: Array<string | null>;
}

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

// ---------------------------------------------------------------------------------------------
// Settling
// ---------------------------------------------------------------------------------------------

export interface UnsettledRequest {
  id: number;
  customId: string;
  itemIds: number[];
}

export async function unsettledRequests(db: Db, batchId: number): Promise<UnsettledRequest[]> {
  const rows = await queryRows<{ id: string; customId: string; itemIds: Array<string | number> }>(
    db,
    sql`select id, custom_id as "customId", item_ids as "itemIds" from batch_requests where batch_id = ${batchId} and settled_at is null order by seq`,
  );
  return rows.map((r) => ({ id: Number(r.id), customId: r.customId, itemIds: r.itemIds.map(Number) }));
}

/**
 * Marks a request settled; false if it already was. Called first in the transaction that writes
 * the request's llm_calls row and results: the row lock makes a concurrent settler wait, then see
 * `settled_at` set and skip. This is the "cost recorded exactly once per request" guarantee.
 */
export async function claimSettlement(tx: Db, requestId: number, outcome: string): Promise<boolean> {
  const rows = await queryRows<{ id: string }>(
    tx,
    sql`update batch_requests set settled_at = now(), outcome = ${outcome} where id = ${requestId} and settled_at is null returning id`,
  );
  return rows.length > 0;
}

/** Links a settled request to its llm_calls row, with its final outcome. */
export async function setRequestCall(tx: Db, requestId: number, llmCallId: number | null, outcome: string): Promise<void> {
  await tx.execute(sql`update batch_requests set llm_call_id = ${llmCallId}, outcome = ${outcome} where id = ${requestId}`);
}

export interface PackedItem {
  itemId: number;
  jobId: string;
  tenantId: string;
  attempts: number;
}

/** The items a request still carries (an item may have been answered elsewhere meanwhile). Locked. */
export async function itemsOfRequest(tx: Db, requestId: number): Promise<PackedItem[]> {
  const rows = await queryRows<{ itemId: string; jobId: string; tenantId: string; attempts: number }>(
    tx,
    sql`select item_id as "itemId", job_id as "jobId", tenant_id as "tenantId", attempts
        from batch_items where request_id = ${requestId} and state = 'packed' order by item_id for update`,
  );
  return rows.map((r) => ({ ...r, itemId: Number(r.itemId) }));
}

/** Puts items back to waiting (they are packed again by the next packer run). */
export async function requeueItems(tx: Db, itemIds: number[], lastError: string): Promise<void> {
  if (itemIds.length === 0) return;
  await tx.execute(
    sql`update batch_items set state = 'waiting', request_id = null, last_error = ${lastError.slice(0, 1000)} where item_id = any(${sql.param(itemIds)}::bigint[])`,
  );
}

/** Items that got their result leave the lane's queue. */
export async function removeBatchItems(tx: Db, itemIds: number[]): Promise<void> {
  if (itemIds.length === 0) return;
  await tx.execute(sql`delete from batch_items where item_id = any(${sql.param(itemIds)}::bigint[])`);
}

export interface SettleDelta {
  requests: number;
  okItems: number;
  retriedItems: number;
  erroredItems: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

export async function addSettleTotals(tx: Db, batchId: number, d: SettleDelta): Promise<void> {
  await tx.execute(
    sql`update provider_batches set
          settled_requests = settled_requests + ${d.requests},
          ok_items = ok_items + ${d.okItems},
          retried_items = retried_items + ${d.retriedItems},
          errored_items = errored_items + ${d.erroredItems},
          input_tokens = input_tokens + ${d.inputTokens},
          output_tokens = output_tokens + ${d.outputTokens},
          cost_usd = cost_usd + ${d.costUsd.toFixed(8)}::numeric
        where id = ${batchId}`,
  );
}

/**
 * Releases the items of a batch that never reached the provider (abandoned): back to waiting,
 * with the attempt given back unless `countAttempt` (a create the provider refused for a reason
 * that would repeat). Its requests are marked settled with no call: nothing was sent.
 */
export async function releaseUnsentBatch(tx: Db, batchId: number, opts: { countAttempt: boolean; reason: string }): Promise<number> {
  const attempts = opts.countAttempt ? sql`attempts` : sql`greatest(attempts - 1, 0)`;
  const rows = await queryRows<{ n: number }>(
    tx,
    sql`with r as (update batch_requests set settled_at = now(), outcome = 'unsent' where batch_id = ${batchId} and settled_at is null returning id),
             u as (update batch_items set state = 'waiting', request_id = null, attempts = ${attempts}, last_error = ${opts.reason.slice(0, 1000)}
                   where request_id in (select id from r) returning 1)
        select count(*)::int as n from u`,
  );
  return rows[0]?.n ?? 0;
}
