/**
 * Database operations of settling a provider batch's requests exactly once, and of giving items
 * back to the lane's queue: claim a request's settlement, link its llm_calls row, requeue or remove
 * its items, add to the batch's totals, release a batch that never reached the provider. One query
 * per function, a transaction (cast to Db) passed in.
 */
import { sql } from "drizzle-orm";
import { queryRows, type Db } from "@sieve/shared";

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
