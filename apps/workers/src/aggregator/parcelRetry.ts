/**
 * A parcel whose items met a transient provider failure (429, 5xx, timeout), once all its items
 * are settled: offered again, or ended with an error row for each item still without a result.
 *
 * - 429: delayed by Retry-After, not counted as an attempt, up to `maxRateLimitRetries` times;
 * - otherwise the outage policy (router/outageHook.ts) may take the parcel ("handled": it was
 *   delayed or moved to another provider) or end it now ("exhausted": its retry window is over);
 * - else, while attempts remain, `job.moveToFailed` lets BullMQ retry it with exponential backoff;
 * - out of attempts: each item still without a result ends with a `provider_unavailable` error,
 *   and the caller ends the parcel.
 */
import type { Job } from "bullmq";
import type { Db, Parcel, ProviderError } from "@sieve/shared";
import { itemsWithResults, recordOutcome, type FinishedJob } from "@sieve/shared/db/ops/results";
import type { LandedResult } from "../dedup/afterResults.js";

export interface ParcelRetryDeps {
  db: Db;
  /** 429s a parcel may meet before they count as attempts. @defaultValue 50 */
  maxRateLimitRetries?: number;
  /**
   * Outage policy for a parcel whose items hit a transient failure (not a 429): "handled" (it
   * was delayed or moved to another provider), "exhausted" (end its items with their error now),
   * or undefined (attempt-counted retries as before).
   */
  onTransient?: (p: { job: Job; token: string; parcel: Parcel; error: ProviderError }) => Promise<"handled" | "exhausted" | undefined>;
  afterResults?: (landed: LandedResult[]) => Promise<void>;
  onJobsFinished?: (jobs: FinishedJob[]) => void;
}

export interface FailedParcel {
  job: Job;
  token: string;
  parcel: Parcel;
  /** The transient failure its items met. */
  error: ProviderError;
}

/** "retried": BullMQ offers the parcel again (or another route took it); "ended": its unanswered items have their error rows, end the parcel. */
export async function retryOrEndWithErrors(p: FailedParcel, deps: ParcelRetryDeps): Promise<"retried" | "ended"> {
  const { job, token, parcel, error: err } = p;
  const rl = (job.data as { rateLimited?: number }).rateLimited ?? 0;
  if (err.kind === "rate_limited" && rl < (deps.maxRateLimitRetries ?? 50)) {
    await job.updateData({ ...parcel, rateLimited: rl + 1 });
    await job.moveToDelayed(Date.now() + (err.retryAfterMs ?? 1_000), token);
    return "retried";
  }
  const verdict = err.kind === "rate_limited" ? undefined : await deps.onTransient?.({ job, token, parcel, error: err });
  if (verdict === "handled") return "retried";
  const attempts = job.opts.attempts ?? 1;
  if (verdict !== "exhausted" && job.attemptsMade + 1 < attempts) {
    await job.moveToFailed(new Error(`${err.provider} ${err.kind}: ${err.message}`), token);
    return "retried";
  }
  const why = `${err.kind}${err.status ? ` ${err.status}` : ""}`;
  await endUnansweredWithError(
    parcel,
    verdict === "exhausted"
      ? `${err.provider} kept failing until the retry window ended (${why}): ${err.message}`
      : `${err.provider} failed ${attempts} times (${why}): ${err.message}`,
    deps,
  );
  return "ended";
}

/** Out of attempts: every item of the parcel still without a result ends with an explicit error. */
async function endUnansweredWithError(parcel: Parcel, message: string, deps: ParcelRetryDeps): Promise<void> {
  const done = await itemsWithResults(deps.db, parcel.items.map((i) => i.itemId));
  const rows = parcel.items
    .filter((i) => !done.has(i.itemId))
    .map((i) => ({
      itemId: i.itemId,
      jobId: parcel.jobId,
      tenantId: parcel.tenantId,
      status: "error" as const,
      errorCode: "provider_unavailable",
      errorMessage: message.slice(0, 2000),
      provider: parcel.provider,
      model: parcel.model,
    }));
  const out = await recordOutcome(deps.db, null, rows);
  if (deps.afterResults) {
    const inserted = new Set(out.inserted);
    const byId = new Map(parcel.items.map((i) => [i.itemId, i]));
    await deps.afterResults(rows.filter((r) => inserted.has(r.itemId)).map((r) => ({ row: r, item: byId.get(r.itemId)!, parcel })));
  }
  if (out.finishedJobs.length > 0) deps.onJobsFinished?.(out.finishedJobs);
}
