/**
 * Read-only views of the batch lane: GET /v1/batches (tenant-scoped), metrics and tests.
 */
import { and, desc, eq, lt, sql } from "drizzle-orm";
import type { Db } from "../client.js";
import { queryRows } from "../client.js";
import { providerBatches } from "../schema/index.js";
import type { ProviderBatchRow } from "./batchLane.js";

/** Batches holding items of this tenant, newest first, keyset-paginated by id. */
export async function listBatchesForTenant(db: Db, tenantId: string, opts: { beforeId?: number; limit: number; state?: string }): Promise<ProviderBatchRow[]> {
  const conds = [sql`${tenantId} = any(${providerBatches.tenantIds})`];
  if (opts.beforeId !== undefined) conds.push(lt(providerBatches.id, opts.beforeId));
  if (opts.state) conds.push(eq(providerBatches.state, opts.state));
  return db
    .select()
    .from(providerBatches)
    .where(and(...conds))
    .orderBy(desc(providerBatches.id))
    .limit(opts.limit);
}

export async function getBatchForTenant(db: Db, tenantId: string, batchId: number): Promise<ProviderBatchRow | undefined> {
  const rows = await db
    .select()
    .from(providerBatches)
    .where(and(eq(providerBatches.id, batchId), sql`${tenantId} = any(${providerBatches.tenantIds})`))
    .limit(1);
  return rows[0];
}

/** Request outcomes of a batch (operator view). */
export async function requestOutcomes(db: Db, batchId: number): Promise<Record<string, number>> {
  const rows = await queryRows<{ outcome: string | null; n: number }>(
    db,
    sql`select outcome, count(*)::int as n from batch_requests where batch_id = ${batchId} group by outcome`,
  );
  return Object.fromEntries(rows.map((r) => [r.outcome ?? "pending", r.n]));
}

/** Items of batch-lane jobs still waiting for a batch, per provider (metrics, tests). */
export async function waitingCounts(db: Db): Promise<Record<string, { waiting: number; packed: number }>> {
  const rows = await queryRows<{ provider: string; state: string; n: number }>(
    db,
    sql`select provider, state, count(*)::int as n from batch_items group by provider, state`,
  );
  const out: Record<string, { waiting: number; packed: number }> = {};
  for (const r of rows) {
    const c = (out[r.provider] ??= { waiting: 0, packed: 0 });
    if (r.state === "waiting") c.waiting = r.n;
    else c.packed = r.n;
  }
  return out;
}
