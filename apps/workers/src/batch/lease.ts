/**
 * The per-batch lease: one process at a time works on a provider batch (submitting, polling or
 * settling it). A dead holder's lease expires and another process resumes the batch.
 */
import type { ProviderBatchRow } from "@sieve/shared/db/ops/batchLane";
import { releaseLease, renewLease, tryLeaseBatch } from "./db/batchRows.js";
import type { LaneDeps } from "./laneDeps.js";

/** Holds the lease of a row while `fn` runs (renewed at a third of its duration). */
export async function withLease<T>(deps: LaneDeps, batchId: number, fn: (row: ProviderBatchRow) => Promise<T>): Promise<T | "busy"> {
  const ms = deps.env.SIEVE_BATCH_LEASE_MS;
  const row = await tryLeaseBatch(deps.db, batchId, deps.owner, ms);
  if (!row) return "busy";
  const timer = setInterval(() => {
    renewLease(deps.db, batchId, deps.owner, ms).catch(() => {});
  }, Math.max(500, Math.floor(ms / 3)));
  timer.unref();
  try {
    return await fn(row);
  } finally {
    clearInterval(timer);
    await releaseLease(deps.db, batchId, deps.owner).catch(() => {});
  }
}
