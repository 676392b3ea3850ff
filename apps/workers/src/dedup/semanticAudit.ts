/**
 * The semantic cache's hit audit: a sample of semantic hits (queued by the API on `cache-audit`)
 * is also answered by the LLM, and the agreement is recorded in Postgres (cache_audits) and in
 * metrics, which gives a live false-hit rate per task. The call is on the ledger like every other
 * (sideCall.ts).
 */
import { Worker } from "bullmq";
import type { Redis } from "ioredis";
import { isDeepStrictEqual } from "node:util";
import { CACHE_AUDIT_QUEUE, CacheAuditJob, coerceError, metrics, observeLlmCall, validateResults, type Db, type DependencyMonitor, type Logger, type PriceTable, type ProviderName } from "@sieve/shared";
import { cacheAudits } from "@sieve/shared/db/schema/index";
import type { LlmProvider } from "../providers/types.js";
import { completeSideCall, sendSideCall } from "../providers/sideCall.js";

export interface CacheAuditOptions {
  db: Db;
  providers: Map<ProviderName, LlmProvider>;
  prices: PriceTable;
  /** Timeout of each audit call (SIEVE_CALL_TIMEOUT_MS). */
  callTimeoutMs: number;
  connection: Redis;
  prefix: string;
  log: Logger;
  monitor?: DependencyMonitor | undefined;
}

export function startSemanticAuditWorker(opts: CacheAuditOptions): Worker {
  const worker = new Worker(CACHE_AUDIT_QUEUE, async (job) => auditSemanticHits(opts, CacheAuditJob.parse(job.data)), { connection: opts.connection, prefix: opts.prefix, concurrency: 1 });
  if (opts.monitor) opts.monitor.watch(worker, "cache-audit worker");
  else worker.on("error", (e) => opts.log.warn({ err: coerceError(e).message }, "cache-audit worker error"));
  return worker;
}

/** One packed call for the sampled hits; one cache_audits row per hit. */
async function auditSemanticHits(opts: CacheAuditOptions, data: CacheAuditJob): Promise<void> {
  const { db } = opts;
  const provider = opts.providers.get(data.scope.provider);
  if (!provider) return;
  const ids = data.hits.map((_, i) => `i${i + 1}`);
  const items = data.hits.map((h, i) => ({ id: ids[i]!, text: h.text }));
  const { res, call } = await sendSideCall(db, opts.prices, provider, {
    tenantId: data.scope.tenantId,
    provider: data.scope.provider,
    model: data.scope.model,
    lane: "audit",
    batchKey: "cache-audit",
    params: data.scope.params,
    items,
    timeoutMs: opts.callTimeoutMs,
  });
  const v = res.answer === undefined ? undefined : validateResults(data.scope.params, ids, res.answer);
  const auditCall = await completeSideCall(db, call, { outcome: v && v.failed.size === 0 ? "ok" : "partial", validCount: v?.ok.size ?? 0 });
  observeLlmCall(auditCall);
  const llmCallId = auditCall.id;
  await db.insert(cacheAudits).values(
    data.hits.map((h, i) => {
      const llm = v?.ok.get(ids[i]!);
      const agree = llm === undefined ? null : isDeepStrictEqual(llm, h.cachedOutput);
      if (agree !== null) metrics.cacheAudits.inc({ task: data.scope.params.task, agree: String(agree) });
      return {
        tenantId: data.scope.tenantId,
        task: data.scope.params.task,
        itemId: h.itemId,
        sourceItemId: h.sourceItemId,
        score: h.score,
        cachedOutput: h.cachedOutput as object,
        llmOutput: (llm ?? null) as object | null,
        agree,
        llmCallId,
      };
    }),
  );
}
