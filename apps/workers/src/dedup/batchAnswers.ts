/**
 * Batch-lane answers go into the caches too: the exact cache (key stored on the item at submit)
 * and, through the fill queue, the semantic cache, under each job's cache policy: resolved from
 * the job's stored `cache` options by the same function that resolved it at submit
 * (packages/shared/src/dedup/policy.ts; a job submitted with cache.mode "bypass" writes nothing).
 * Batch-lane items never coalesce: a leader in a provider batch can take hours, so accepting a job
 * takes no in-flight claims for that lane.
 */
import { sql } from "drizzle-orm";
import { TaskParams, coerceError, queryRows, type CacheOptions, type Db, type Env, type Logger, type NewResult, type ProviderName, type TaskName } from "@sieve/shared";
import { resolveCachePolicy } from "@sieve/shared/dedup/policy";
import type { ExactCache } from "@sieve/shared/dedup/exact";
import type { SemanticFill } from "./afterResults.js";

export function createBatchAnswerWriter(deps: { db: Db; env: Env; exact: ExactCache; semantic?: SemanticFill; log: Logger }) {
  return async (rows: NewResult[]): Promise<void> => {
    const ok = rows.filter((r) => r.status === "ok");
    if (ok.length === 0) return;
    try {
      const info = await queryRows<{ item_id: number; text: string; cache_key: string | null; tenant_id: string; params: unknown; provider: string; model: string; task: TaskName; cache_options: CacheOptions | null }>(
        deps.db,
        sql`select i.id::int as item_id, i.text, i.cache_key, j.tenant_id, j.params, j.provider, j.model, j.task, j.cache_options
            from items i join jobs j on j.id = i.job_id where i.id = any(${sql.param(ok.map((r) => r.itemId))}::bigint[])`,
      );
      const byId = new Map(info.map((r) => [r.item_id, r]));
      const writes = ok.flatMap((r) => {
        const it = byId.get(r.itemId);
        if (!it?.cache_key) return [];
        // The request's options as stored when the job was accepted (validated then).
        const policy = resolveCachePolicy(deps.env, it.task, it.cache_options);
        if (policy.mode === "bypass") return [];
        return [{ r, it, policy }];
      });
      if (writes.length === 0) return;
      await deps.exact.setMany(
        writes.map((w) => ({ key: w.it.cache_key!, tenantId: w.it.tenant_id, namespace: w.policy.namespace, task: w.it.task, model: w.it.model, output: w.r.output, sourceItemId: w.r.itemId, ttlSeconds: w.policy.ttlSeconds })),
      );
      await deps.semantic?.enqueue(
        writes
          .filter((w) => w.policy.semantic)
          .map((w) => ({
            text: w.it.text,
            output: w.r.output,
            itemId: w.r.itemId,
            ttlSeconds: w.policy.ttlSeconds,
            scope: { tenantId: w.it.tenant_id, params: TaskParams.parse(w.it.params), provider: w.it.provider as ProviderName, model: w.it.model, namespace: w.policy.namespace },
          })),
      );
    } catch (e) {
      deps.log.warn({ err: coerceError(e).message }, "could not write batch answers to the cache");
    }
  };
}
