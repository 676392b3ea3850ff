/**
 * Writing a call's outcome: its ledger row and its items' results in one transaction, retried
 * through a short Postgres outage so answers already paid for are not asked again
 * (docs/operations.md#outages).
 */
import { classifyInfraError, metrics, observeLlmCall, type Db, type NewResult } from "@sieve/shared";
import { recordOutcome, type FinishedJob, type NewLlmCall } from "@sieve/shared/db/ops/results";

export interface PersistContext {
  db: Db;
  /**
   * How long an answer that could not be written (Postgres unreachable) is kept and its write
   * retried before the items are handed back for another call, in ms: a short Postgres outage
   * then costs no second provider call (docs/operations.md#outages). @defaultValue 120000
   */
  persistRetryMs?: number;
  signal?: AbortSignal;
  /** Called after each persisted write with the jobs it finished (publish events, metrics). */
  onPersisted?: (info: { finishedJobs: FinishedJob[]; llmCallId: number | null; rows: NewResult[]; inserted: Set<number> }) => void | Promise<void>;
}

/** Writes the call row (when given) and the rows, counts the items it finished, then tells `onPersisted`. */
export async function persistAnswers(ctx: PersistContext, call: NewLlmCall | null, rows: NewResult[]): Promise<void> {
  if (call) observeLlmCall(call);
  const out = await writeRetryingOutages(ctx, () => recordOutcome(ctx.db, call, rows));
  for (const r of rows) if (out.inserted.includes(r.itemId)) metrics.itemsFinished.inc({ status: r.status, cache: "none" });
  await ctx.onPersisted?.({ finishedJobs: out.finishedJobs, llmCallId: out.llmCallId, rows, inserted: new Set(out.inserted) });
}

/**
 * Runs a write of answers the provider already gave (and was paid for), retrying while Postgres is
 * unreachable, up to `ctx.persistRetryMs` or until the call's signal aborts: giving up would send
 * the same items to the provider again once Postgres is back. The write is one idempotent
 * transaction (results ON CONFLICT DO NOTHING, the call row updated by id), so a retry after a
 * connection lost mid-commit cannot double anything. Other errors are thrown at once.
 */
export async function writeRetryingOutages<T>(ctx: Pick<PersistContext, "persistRetryMs" | "signal">, write: () => Promise<T>): Promise<T> {
  const until = Date.now() + (ctx.persistRetryMs ?? 120_000);
  for (let delay = 500; ; delay = Math.min(delay * 2, 5_000)) {
    try {
      return await write();
    } catch (e) {
      if (classifyInfraError(e) !== "postgres" || Date.now() + delay > until || ctx.signal?.aborted) throw e;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
