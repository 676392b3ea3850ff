/** JSON shapes the API returns for jobs and items. */
import type { ItemView, JobRow, JobTotals } from "@sieve/shared/db/ops/jobs";

export function itemJson(v: ItemView) {
  return {
    id: v.externalId,
    status: v.status,
    // Where the item went and why (lane router, docs/gpu-lane.md); absent on items stored before it.
    ...(v.lane ? { lane: v.lane, laneReason: v.laneReason } : {}),
    ...(v.status === "ok" ? { output: v.output } : {}),
    ...(v.status === "error" ? { error: { code: v.errorCode, message: v.errorMessage } } : {}),
    ...(v.status !== "pending"
      ? {
          provider: v.provider,
          model: v.model,
          llmCallId: v.llmCallId,
          costUsd: Number(v.costUsd ?? 0),
          cache: v.cache,
          ...(v.cacheSource ? { cacheSource: v.cacheSource } : {}),
        }
      : {}),
  };
}

export function jobJson(job: JobRow, totals?: JobTotals) {
  return {
    id: job.id,
    status: job.status,
    task: job.task,
    lane: job.lane,
    provider: job.provider,
    model: job.model,
    promptVersion: job.promptVersion,
    params: job.params,
    createdAt: job.createdAt,
    completedAt: job.completedAt,
    ...(job.deadlineAt ? { deadline: job.deadlineAt } : {}),
    counts: {
      items: job.itemCount,
      done: job.doneCount,
      succeeded: job.doneCount - job.errorCount,
      failed: job.errorCount,
      pending: job.itemCount - job.doneCount,
      cached: totals?.cached ?? job.cachedCount,
    },
    ...(totals ? { costUsd: totals.costUsd, savedUsd: totals.savedUsd } : {}),
  };
}
