/**
 * Database operations of the batch lane's packer: admission (what is open at a provider), the
 * waiting items of each batch key, claiming them (FOR UPDATE SKIP LOCKED) and preparing a batch row
 * with its requests, plus the sweep for batch-lane jobs whose items were never queued. One query
 * per function, the db (or a transaction, cast to Db) passed in. The lane's state machine is
 * documented in packages/shared/src/db/schema/batch.ts and docs/batch-lane.md.
 */
import { eq, sql } from "drizzle-orm";
import { queryRows, type Db } from "@sieve/shared";
import { OPEN_STATES } from "@sieve/shared/db/ops/batchLane";
import { providerBatches } from "@sieve/shared/db/schema/index";

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
