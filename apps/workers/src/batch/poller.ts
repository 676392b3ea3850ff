/**
 * The lifecycle poller: a repeatable job that follows every open provider batch through
 * all its statuses, from Postgres state alone (a restarted process resumes exactly where the
 * database says things are):
 *
 * - preparing / uploaded / submitting with an expired lease: a submitter died; resume it (submitBatch.ts).
 * - submitted: retrieve; record the provider status and counts; cancel at the provider when an
 *   operator asked; once the provider says it ended (completed, expired, cancelled, failed),
 *   record the output/error file ids and state "ended".
 * - ended: settle (settle.ts). Crashing mid-settle is fine: settled requests are skipped next time.
 *
 * Each batch is handled under its lease, so two pollers never work on one batch at once.
 */
import { classifyInfraError, coerceError, dependencyPorts } from "@sieve/shared";
import { updateBatch, type ProviderBatchRow } from "@sieve/shared/db/ops/batchLane";
import { batchesToPoll, UNSUBMITTED_STATES } from "./db/batchRows.js";
import type { LaneDeps } from "./laneDeps.js";
import { settleBatch, type SettleReport } from "./settle.js";
import { withLease } from "./lease.js";
import { submitBatch } from "./submitBatch.js";
import type { BatchProviderName } from "../providers/batch-types.js";

export interface PollReport {
  looked: number;
  resumed: number;
  ended: number;
  settled: number;
  /** Items put back to waiting by the settled batches (the packer should run). */
  requeued: number;
}

async function followOne(deps: LaneDeps, row: ProviderBatchRow, report: PollReport): Promise<void> {
  const api = deps.apis.get(row.provider as BatchProviderName);
  if (!api) return;
  const log = deps.log.child({ batchId: row.id, provider: row.provider, providerBatchId: row.providerBatchId });
  if ((UNSUBMITTED_STATES as readonly string[]).includes(row.state)) {
    const r = await submitBatch(deps, api, row.id);
    if (r !== "busy" && r !== "not_pending") report.resumed++;
    return;
  }
  const res = await withLease(deps, row.id, async (leased) => {
    let cur = leased;
    if (cur.state === "submitted" && cur.providerBatchId) {
      const st = await api.retrieve(cur.providerBatchId);
      if (cur.cancelRequested && !st.end && !st.cancelling) {
        await api.cancel(cur.providerBatchId);
        log.info("batch cancelled at the provider (operator request)");
      }
      const patch = {
        providerStatus: st.end ?? st.status,
        providerCounts: { ...st.counts, ...(st.errors.length > 0 ? { errors: st.errors } : {}) },
        lastPolledAt: new Date(),
        ...(st.outputFileId ? { outputFileId: st.outputFileId } : {}),
        ...(st.errorFileId ? { errorFileId: st.errorFileId } : {}),
        ...(st.end ? { state: "ended" as const, endedAt: new Date() } : {}),
      };
      await updateBatch(deps.db, cur.id, patch);
      cur = { ...cur, ...patch } as ProviderBatchRow;
      if (st.end) {
        report.ended++;
        log.info({ end: st.end, counts: st.counts }, "provider batch ended");
      }
    }
    if (cur.state === "ended") {
      const s: SettleReport = await settleBatch(deps, api, cur);
      report.settled++;
      report.requeued += s.retriedItems;
    }
  });
  void res;
}

export async function pollOnce(deps: LaneDeps): Promise<PollReport> {
  const report: PollReport = { looked: 0, resumed: 0, ended: 0, settled: 0, requeued: 0 };
  const rows = await batchesToPoll(deps.db);
  for (const row of rows) {
    report.looked++;
    try {
      await followOne(deps, row, report);
    } catch (e) {
      // Postgres or Redis away: stop this run (the lane logs the outage once); the next tick retries.
      const dep = classifyInfraError(e, dependencyPorts({ postgres: deps.env.DATABASE_URL, redis: deps.env.REDIS_URL }));
      if (dep === "postgres" || dep === "redis") throw e;
      // One batch's trouble (provider 5xx, network) never stops the others; the next tick retries.
      const msg = coerceError(e).message.slice(0, 2000);
      deps.log.warn({ batchId: row.id, provider: row.provider, err: msg }, "poll of a batch failed; retried next tick");
      await updateBatch(deps.db, row.id, { lastError: msg }).catch(() => {});
    }
  }
  return report;
}
