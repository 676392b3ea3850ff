/**
 * When answers land: write them to the exact cache (and hand them to the semantic cache), and
 * answer every follower that coalesced onto a leader item with the leader's result.
 * A leader that ended in an error passes that error to its followers (marked "coalesced"), so a
 * follower never waits for an answer that will not come.
 */
import { coerceError, recordOutcome, type Db, type FinishedJob, type Logger, type NewResult, type Parcel } from "@sieve/shared";
import type { ExactCache } from "@sieve/shared/dedup/exact";

export interface LandedResult {
  row: NewResult;
  item: Parcel["items"][number];
  parcel: Parcel;
  /** Items in the LLM call that answered it (absent: not an LLM answer). */
  callItems?: number;
}

/** Where an answer is valid: what a semantic-cache entry is filtered by. */
export type AnswerScope = Pick<Parcel, "tenantId" | "params" | "provider" | "model"> & { namespace: string };

export interface SemanticFill {
  /** Queues answered items for the semantic cache (embedding happens off the hot path). */
  enqueue(entries: Array<{ text: string; output: unknown; itemId: number; scope: AnswerScope; ttlSeconds: number }>): Promise<void>;
}

/** Where LLM labels go for the learned cache (docs/quality.md). */
export interface LearnedFill {
  enqueue(scope: AnswerScope, entries: Array<{ itemId: number; text: string; label: string; packed: boolean }>): Promise<void>;
}

export interface AfterResultsDeps {
  db: Db;
  exact: ExactCache;
  semantic?: SemanticFill;
  learned?: LearnedFill;
  log: Logger;
  onJobsFinished?: (jobs: FinishedJob[]) => void;
}

export function createAfterResults(deps: AfterResultsDeps) {
  return async (landed: LandedResult[]): Promise<void> => {
    try {
      const writes = landed.filter((l) => l.row.status === "ok" && l.item.cacheKey && l.parcel.cache);
      if (writes.length > 0) {
        await deps.exact.setMany(
          writes.map((l) => ({
            key: l.item.cacheKey!,
            tenantId: l.parcel.tenantId,
            namespace: l.parcel.cache!.namespace,
            task: l.parcel.params.task,
            model: l.parcel.model,
            output: l.row.output,
            sourceItemId: l.item.itemId,
            ttlSeconds: l.parcel.cache!.ttlSeconds,
          })),
        );
        // Only answers of requests that use the semantic cache, and no empty fill jobs.
        const semantic = writes.filter((l) => l.parcel.cache!.semantic);
        if (semantic.length > 0) {
          await deps.semantic?.enqueue(
            semantic.map((l) => ({
              text: l.item.text,
              output: l.row.output,
              itemId: l.item.itemId,
              scope: { tenantId: l.parcel.tenantId, params: l.parcel.params, provider: l.parcel.provider, model: l.parcel.model, namespace: l.parcel.cache!.namespace },
              ttlSeconds: l.parcel.cache!.ttlSeconds,
            })),
          );
        }
      }
      if (deps.learned) {
        // Grouped by parcel: one scope (tenant, label set, model) per queue job.
        const byParcel = new Map<Parcel, Array<{ itemId: number; text: string; label: string; packed: boolean }>>();
        for (const l of writes.filter((w) => w.parcel.cache!.learned && typeof (w.row.output as { label?: unknown }).label === "string")) {
          byParcel.set(l.parcel, [...(byParcel.get(l.parcel) ?? []), { itemId: l.item.itemId, text: l.item.text, label: (l.row.output as { label: string }).label, packed: (l.callItems ?? 1) > 1 }]);
        }
        for (const [p, entries] of byParcel) {
          await deps.learned.enqueue({ tenantId: p.tenantId, params: p.params, provider: p.provider, model: p.model, namespace: p.cache!.namespace }, entries);
        }
      }
      const followerRows: NewResult[] = [];
      const leaders = landed.filter((l) => l.item.lead && l.item.cacheKey);
      const followersOf = await deps.exact.completeMany(leaders.map((l) => ({ key: l.item.cacheKey!, leaderItemId: l.item.itemId })));
      for (const [i, l] of leaders.entries()) {
        for (const f of followersOf[i]!) {
          followerRows.push({
            itemId: f.itemId,
            jobId: f.jobId,
            tenantId: f.tenantId,
            status: l.row.status,
            output: l.row.output,
            ...(l.row.errorCode ? { errorCode: l.row.errorCode } : {}),
            ...(l.row.errorMessage ? { errorMessage: l.row.errorMessage } : {}),
            provider: l.row.provider ?? null,
            model: l.row.model ?? null,
            cache: "coalesced",
            cacheSource: { itemId: l.item.itemId },
            savedUsd: l.row.costUsd ?? 0,
          });
        }
      }
      if (followerRows.length > 0) {
        const out = await recordOutcome(deps.db, null, followerRows);
        if (out.finishedJobs.length > 0) deps.onJobsFinished?.(out.finishedJobs);
      }
    } catch (e) {
      // Results are already persisted; a cache failure must not fail the call. Followers left
      // waiting are picked up by the sweeper once their claim expires.
      deps.log.warn({ err: coerceError(e).message }, "cache write / follower completion failed");
    }
  };
}
