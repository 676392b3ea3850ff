/**
 * The parcels an aggregator holds: their BullMQ locks (extended while their items wait in bins or
 * calls) and how each one is settled, exactly once, when all its items are settled
 * (docs/operations.md#outages for what an outage does to them).
 */
import { UnrecoverableError, type Job } from "bullmq";
import { safeErrorMessage, type Db, type DependencyMonitor, type Logger, type Parcel, type ProviderError } from "@sieve/shared";
import { itemsWithResults, recordOutcome, resultCounts, type FinishedJob } from "@sieve/shared/db/ops/results";
import type { LandedResult } from "../dedup/afterResults.js";

/** Delay before a parcel set back by an outage is offered again, in ms. */
export const OUTAGE_DELAY_MS = 2_000;

export interface Held {
  job: Job;
  token: string;
  parcel: Parcel;
  /** Items of this parcel not yet settled (final or transient-failed). */
  outstanding: number;
  transientError?: ProviderError;
  /** A call of this parcel could not be persisted (Postgres unreachable): retry without using an attempt. */
  infraError?: boolean;
  /** Our lock is gone (another worker owns the parcel, or Redis lost it): never settle it from here. */
  lockLost?: boolean;
}

export interface HeldParcelsDeps {
  db: Db;
  log: Logger;
  monitor: DependencyMonitor;
  /** BullMQ lock duration of held parcels, in ms. */
  lockMs: number;
  /** 429s a parcel may meet before they count as attempts. @defaultValue 50 */
  maxRateLimitRetries?: number;
  onJobsFinished?: (jobs: FinishedJob[]) => void;
  afterResults?: (landed: LandedResult[]) => Promise<void>;
  /** Outage policy for a parcel whose items hit a transient failure (not a 429); see AggregatorOptions.onTransient. */
  onTransient?: (p: { job: Job; token: string; parcel: Parcel; error: ProviderError }) => Promise<"handled" | "exhausted" | undefined>;
}

export class HeldParcels {
  private readonly map = new Map<string, Held>();
  private extending = false;

  constructor(private readonly deps: HeldParcelsDeps) {}

  get size(): number {
    return this.map.size;
  }

  get(jobId: string): Held | undefined {
    return this.map.get(jobId);
  }

  add(h: Held): void {
    this.map.set(h.job.id!, h);
  }

  /** All items of a parcel are settled: complete it, or hand it back to BullMQ for a retry. */
  async settle(h: Held): Promise<void> {
    this.map.delete(h.job.id!);
    const { job, token } = h;
    if (h.lockLost) {
      // Another worker owns it now (or Redis lost it): its items are persisted or will be re-run
      // there; settling with our stale token could only fail.
      this.deps.log.debug({ jobId: job.id }, "parcel lock lost; not settling it here");
      return;
    }
    try {
      if (h.infraError) {
        await job.moveToDelayed(Date.now() + OUTAGE_DELAY_MS, token);
        return;
      }
      if (!h.transientError) {
        await this.finish(h, false);
        return;
      }
      const err = h.transientError;
      const rl = (job.data as { rateLimited?: number }).rateLimited ?? 0;
      if (err.kind === "rate_limited" && rl < (this.deps.maxRateLimitRetries ?? 50)) {
        await job.updateData({ ...h.parcel, rateLimited: rl + 1 });
        await job.moveToDelayed(Date.now() + (err.retryAfterMs ?? 1_000), token);
        return;
      }
      const verdict = err.kind === "rate_limited" ? undefined : await this.deps.onTransient?.({ job, token, parcel: h.parcel, error: err });
      if (verdict === "handled") return;
      const attempts = job.opts.attempts ?? 1;
      if (verdict !== "exhausted" && job.attemptsMade + 1 < attempts) {
        await job.moveToFailed(new Error(`${err.provider} ${err.kind}: ${err.message}`), token);
        return;
      }
      // Out of attempts: every item still without a result ends with an explicit error.
      const done = await itemsWithResults(this.deps.db, h.parcel.items.map((i) => i.itemId));
      const rows = h.parcel.items
        .filter((i) => !done.has(i.itemId))
        .map((i) => ({
          itemId: i.itemId,
          jobId: h.parcel.jobId,
          tenantId: h.parcel.tenantId,
          status: "error" as const,
          errorCode: "provider_unavailable",
          errorMessage: (verdict === "exhausted"
            ? `${err.provider} kept failing until the retry window ended (${err.kind}${err.status ? ` ${err.status}` : ""}): ${err.message}`
            : `${err.provider} failed ${attempts} times (${err.kind}${err.status ? ` ${err.status}` : ""}): ${err.message}`
          ).slice(0, 2000),
          provider: h.parcel.provider,
          model: h.parcel.model,
        }));
      const out = await recordOutcome(this.deps.db, null, rows);
      if (this.deps.afterResults) {
        const inserted = new Set(out.inserted);
        const byId = new Map(h.parcel.items.map((i) => [i.itemId, i]));
        await this.deps.afterResults(rows.filter((r) => inserted.has(r.itemId)).map((r) => ({ row: r, item: byId.get(r.itemId)!, parcel: h.parcel })));
      }
      if (out.finishedJobs.length > 0) this.deps.onJobsFinished?.(out.finishedJobs);
      await this.finish(h, true);
    } catch (e) {
      const dep = this.deps.monitor.report(e, "aggregator settle");
      if (dep === "postgres") {
        // The out-of-attempts path could not read or write results: offer the parcel again later.
        await job.moveToDelayed(Date.now() + OUTAGE_DELAY_MS, token).catch(() => {});
        return;
      }
      // Redis away: the lock lapses and BullMQ's stalled check hands the parcel back. Lost lock
      // (another worker took the parcel after a stall): it is re-run there. Persisted results
      // make both safe.
      if (!dep) this.deps.log.warn({ jobId: job.id, err: safeErrorMessage(e) }, "could not settle parcel");
    }
  }

  /**
   * Ends a parcel whose items all have a result. Its return value counts ok and failed items; a
   * parcel with failed items ends FAILED (without retry: each failed item already has its final
   * error result) so Bull Board does not show it as a clean success (docs/console.md).
   */
  private async finish(h: Held, exhausted: boolean): Promise<void> {
    const counts = await resultCounts(this.deps.db, h.parcel.items.map((i) => i.itemId));
    const value = { items: h.parcel.items.length, ok: counts.ok, failed: counts.failed, ...(exhausted ? { exhausted: true } : {}) };
    if (counts.failed === 0) {
      await h.job.moveToCompleted(value, h.token, false);
      return;
    }
    const codes = Object.entries(counts.codes).map(([c, n]) => `${c} x${n}`).join(", ");
    await h.job.updateData({ ...h.parcel, outcome: value } as Parcel);
    const err = new UnrecoverableError(`${counts.failed} of ${value.items} items failed (${codes}); their errors are their final results: retry them from /admin/jobs/${h.parcel.jobId}`);
    err.stack = `${err.name}: ${err.message}`; // a verdict on items, not a crash: no stack trace in Bull Board
    await h.job.moveToFailed(err, h.token, false);
  }

  /** Extends the lock of every held parcel; notes the ones that are no longer ours. */
  async extendLocks(): Promise<void> {
    // During a Redis outage a pass waits for the reconnect: never stack passes behind it.
    if (this.extending) return;
    this.extending = true;
    try {
      await this.extendLocksOnce();
    } finally {
      this.extending = false;
    }
  }

  private async extendLocksOnce(): Promise<void> {
    let lost = 0;
    for (const h of this.map.values()) {
      if (h.lockLost) continue;
      try {
        // 0: the lock is no longer ours (it lapsed and BullMQ's stalled check took the parcel back).
        if ((await h.job.extendLock(h.token, this.deps.lockMs)) === 0) {
          h.lockLost = true;
          lost++;
        }
      } catch (e) {
        if (this.deps.monitor.report(e, "aggregator locks")) return; // Redis away: logged once by the monitor
        this.deps.log.warn({ jobId: h.job.id, err: safeErrorMessage(e) }, "could not extend parcel lock");
      }
    }
    // One line per pass, not one per parcel: after Redis lost its data every lock is gone at once.
    if (lost > 0) this.deps.log.warn({ parcels: lost }, "lost the lock of held parcels; their items are finished by whoever holds them now, or by the sweeper");
  }
}
