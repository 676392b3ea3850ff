/**
 * Items a cache answered while their job was being accepted get their result at once, written
 * the way a worker writes an LLM answer (results, job counters, rollups, metrics).
 */
import { metrics, recordOutcome, type Route } from "@sieve/shared";
import type { ApiContext } from "../context.js";
import type { DedupAnswer } from "./dedupHook.js";

export async function recordCacheAnswers(
  ctx: ApiContext,
  job: { jobId: string; tenantId: string; route: Route },
  answered: ReadonlyArray<{ itemId: number; answer: DedupAnswer & { route?: Route | undefined } }>,
): Promise<void> {
  const rows = answered.map(({ itemId, answer: a }) => ({
    itemId,
    jobId: job.jobId,
    tenantId: job.tenantId,
    status: "ok" as const,
    output: a.output,
    cache: a.cache,
    cacheSource: a.source ?? null,
    provider: (a.route ?? job.route).provider,
    model: (a.route ?? job.route).model,
    savedUsd: a.savedUsd ?? 0,
  }));
  await recordOutcome(ctx.db, null, rows);
  for (const { answer } of answered) metrics.itemsFinished.inc({ status: "ok", cache: answer.cache });
}
