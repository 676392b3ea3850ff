/**
 * Recording what an LLM call produced. One transaction: the call row, the results (INSERT ... ON
 * CONFLICT DO NOTHING: a result that already exists is never overwritten or duplicated), and the
 * job counters, incremented ONLY by the rows actually inserted. That is what makes a retried or
 * duplicated call (crash mid-call, stalled job re-run) unable to double-count anything.
 */
import { eq, sql } from "drizzle-orm";
import type { Db } from "../client.js";
import { queryRows } from "../client.js";
import { llmCalls, results } from "../schema/index.js";
import { rollupOutcome, type RollupBatch } from "./rollups.js";
import type { NewLlmCall, NewResult } from "./rows.js";

export type { NewLlmCall, NewResult } from "./rows.js";

export interface FinishedJob {
  id: string;
  status: string;
}

export interface RecordOutcome {
  llmCallId: number | null;
  /** Item ids whose result this call inserted (others already had one). */
  inserted: number[];
  /** Jobs that this write completed. */
  finishedJobs: FinishedJob[];
}

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

async function insertResults(tx: Tx, rows: NewResult[], llmCallId: number | null): Promise<Array<{ itemId: number; jobId: string; status: string }>> {
  if (rows.length === 0) return [];
  return tx
    .insert(results)
    .values(
      rows.map((r) => ({
        itemId: r.itemId,
        jobId: r.jobId,
        tenantId: r.tenantId,
        status: r.status,
        output: r.output ?? null,
        errorCode: r.errorCode ?? null,
        errorMessage: r.errorMessage ?? null,
        llmCallId: r.status === "ok" && !r.cache ? llmCallId : null,
        provider: r.provider ?? null,
        model: r.model ?? null,
        cache: r.cache ?? null,
        cacheSource: r.cacheSource ?? null,
        costUsd: (r.costUsd ?? 0).toFixed(8),
        savedUsd: (r.savedUsd ?? 0).toFixed(8),
      })),
    )
    .onConflictDoNothing({ target: results.itemId })
    .returning({ itemId: results.itemId, jobId: results.jobId, status: results.status });
}

/** Bumps job counters by what was inserted; jobs are updated in id order so concurrent writers never deadlock. */
async function bumpJobs(tx: Tx, inserted: Array<{ jobId: string; status: string }>, laneOf: Map<string, string>): Promise<FinishedJob[]> {
  const per = new Map<string, { n: number; e: number }>();
  for (const r of inserted) {
    const c = per.get(r.jobId) ?? { n: 0, e: 0 };
    c.n++;
    if (r.status === "error") c.e++;
    per.set(r.jobId, c);
  }
  const finished: FinishedJob[] = [];
  for (const jobId of [...per.keys()].sort()) {
    const c = per.get(jobId)!;
    const rows = await queryRows<{ id: string; status: string; finished: boolean; lane: string }>(
      tx as unknown as Db,
      sql`update jobs set
            done_count = done_count + ${c.n},
            error_count = error_count + ${c.e},
            status = case when done_count + ${c.n} >= item_count then
                       case when error_count + ${c.e} = 0 then 'completed'
                            when error_count + ${c.e} >= item_count then 'failed'
                            else 'partial' end
                     else status end,
            completed_at = case when done_count + ${c.n} >= item_count then now() else completed_at end
          where id = ${jobId}
          returning id, status, (done_count >= item_count) as finished, lane`,
    );
    const row = rows[0];
    if (row) laneOf.set(row.id, row.lane);
    if (row?.finished) finished.push({ id: row.id, status: row.status });
  }
  return finished;
}

/**
 * Records one LLM call (if any) and its results atomically. A call with an `id` was opened before
 * it was sent (openLlmCall): its row is completed, not inserted again. `rollups`: collect the
 * console's rollup deltas there for the caller to flush at the end of its own transaction
 * (docs/console.md).
 */
export async function recordOutcome(db: Db, call: NewLlmCall | null, rows: NewResult[], rollups?: RollupBatch): Promise<RecordOutcome> {
  return db.transaction(async (tx) => {
    let llmCallId: number | null = null;
    if (call?.id !== undefined) {
      const { id, ...rest } = call;
      await tx.update(llmCalls).set({ ...rest, completedAt: sql`now()` }).where(eq(llmCalls.id, id));
      llmCallId = id;
    } else if (call) {
      const r = await tx.insert(llmCalls).values({ ...call, completedAt: sql`now()` }).returning({ id: llmCalls.id });
      llmCallId = r[0]!.id;
    }
    const inserted = await insertResults(tx, rows, llmCallId);
    const laneOf = new Map<string, string>();
    const finishedJobs = await bumpJobs(tx, inserted, laneOf);
    // The operator console's rollups (docs/console.md): last, after every job row lock.
    const ids = new Set(inserted.map((r) => r.itemId));
    await rollupOutcome(tx as unknown as Db, call, rows.filter((r) => ids.delete(r.itemId)), laneOf, rollups);
    return { llmCallId, inserted: inserted.map((r) => r.itemId), finishedJobs };
  });
}

/** Item ids among `itemIds` that already have a result. */
export async function itemsWithResults(db: Db, itemIds: number[]): Promise<Set<number>> {
  if (itemIds.length === 0) return new Set();
  const rows = await queryRows<{ item_id: number }>(
    db,
    sql`select item_id::int as item_id from results where item_id = any(${sql.param(itemIds)}::bigint[])`,
  );
  return new Set(rows.map((r) => r.item_id));
}

/**
 * The ledger entry of a provider request, written BEFORE the request is sent (state "sent", the
 * estimated prompt tokens and their cost): a call cut off by a crash stays visible. recordOutcome
 * completes it with the real usage.
 */
export async function openLlmCall(db: Db, call: Omit<NewLlmCall, "id" | "state" | "outcome">): Promise<number> {
  const r = await db.insert(llmCalls).values({ ...call, state: "sent", outcome: "sent" }).returning({ id: llmCalls.id });
  return r[0]!.id;
}

/**
 * Calls still "sent" after `olderThan` can no longer be answered (a call never outlives its
 * timeout): their worker died. They become "interrupted", keeping their estimate. Returns how many.
 */
export async function interruptStaleCalls(db: Db, olderThan: Date): Promise<number> {
  const rows = await queryRows<{ id: number }>(
    db,
    sql`update llm_calls set state = 'interrupted', outcome = 'interrupted', completed_at = now(),
               error = 'no answer recorded: the process making the call stopped (crash or kill)'
        where state = 'sent' and created_at < ${olderThan.toISOString()} returning id`,
  );
  return rows.length;
}

/** Results of `itemIds` by status, with failed items per error code (a parcel's return value). */
export async function resultCounts(db: Db, itemIds: number[]): Promise<{ ok: number; failed: number; codes: Record<string, number> }> {
  const out = { ok: 0, failed: 0, codes: {} as Record<string, number> };
  if (itemIds.length === 0) return out;
  const rows = await queryRows<{ status: string; code: string | null; n: number }>(
    db,
    sql`select status, error_code as code, count(*)::int as n from results where item_id = any(${sql.param(itemIds)}::bigint[]) group by status, error_code`,
  );
  for (const r of rows) {
    if (r.status === "ok") out.ok += r.n;
    else {
      out.failed += r.n;
      out.codes[r.code ?? "unknown"] = (out.codes[r.code ?? "unknown"] ?? 0) + r.n;
    }
  }
  return out;
}
