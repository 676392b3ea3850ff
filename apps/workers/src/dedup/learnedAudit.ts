/**
 * The learned cache's audit (docs/quality.md): a sample of its answers (queued by the API on
 * `learned-audit`) is asked alone to the same model; each is recorded in cache_audits with kind
 * "learned", counted in metrics, and fed back into the model's threshold. The same queue carries
 * adjudications (SIEVE_LEARNED_ADJUDICATE_ABOVE): confident disagreements with a packed label,
 * asked alone (an llm_calls row, lane audit) and handed to LearnedCache.adjudicate. Runs beside
 * the models (cacheConsumers.ts).
 */
import { Worker } from "bullmq";
import { sql } from "drizzle-orm";
import { LEARNED_AUDIT_QUEUE, LearnedAuditJob, coerceError, observeLlmCall, qualityMetrics, queryRows, validateResults, type Db } from "@sieve/shared";
import type { CacheScopeInput } from "@sieve/shared/dedup/keys";
import { cacheAudits } from "@sieve/shared/db/schema/index";
import { completeSideCall, sendSideCall } from "../providers/sideCall.js";
import type { CacheAuditOptions } from "./semanticAudit.js";
import type { LearnedModels } from "./learnedFill.js";

export interface LearnedAuditOptions extends CacheAuditOptions {
  models: LearnedModels;
}

export function startLearnedAuditWorker(opts: LearnedAuditOptions): Worker {
  const worker = new Worker(LEARNED_AUDIT_QUEUE, async (job) => auditLearnedAnswers(opts, LearnedAuditJob.parse(job.data)), { connection: opts.connection, prefix: opts.prefix, concurrency: 1 });
  if (opts.monitor) opts.monitor.watch(worker, "learned-audit worker");
  else worker.on("error", (e) => opts.log.warn({ err: coerceError(e).message }, "learned-audit worker error"));
  return worker;
}

async function auditLearnedAnswers(opts: LearnedAuditOptions, data: LearnedAuditJob): Promise<void> {
  const { db } = opts;
  const { cache, embedder, scopeOf } = opts.models;
  const provider = opts.providers.get(data.scope.provider);
  if (!provider) return;
  const scope = scopeOf(data.scope as CacheScopeInput);
  /** One item asked alone to the scope's model (an llm_calls row, lane audit); its label when the answer is valid. */
  const askAlone = async (text: string, batchKey: string) => {
    const { res, call: answered } = await sendSideCall(db, opts.prices, provider, {
      tenantId: data.scope.tenantId,
      provider: data.scope.provider,
      model: data.scope.model,
      lane: "audit",
      batchKey,
      params: data.scope.params,
      items: [{ id: "i1", text }],
      timeoutMs: opts.callTimeoutMs,
    });
    const v = res.answer === undefined ? undefined : validateResults(data.scope.params, ["i1"], res.answer);
    return { llm: v?.ok.get("i1") as { label: string } | undefined, answered };
  };
  // Adjudications (docs/quality.md): the item alone decides whether the model's disagreement
  // with a packed label counts as its error; a failed call counts as one.
  for (const a of data.adjudications) {
    const { llm, answered } = await askAlone(a.text, "learned-adjudicate");
    observeLlmCall(await completeSideCall(db, answered, { outcome: llm ? "ok" : "invalid_output", validCount: llm ? 1 : 0 }));
    cache.adjudicate(scope, { predicted: a.predicted, confidence: a.confidence, label: a.label }, llm?.label);
  }
  if (data.answers.length === 0) return;
  const vectors = await embedder.embed(data.answers.map((a) => a.text));
  for (const [i, a] of data.answers.entries()) {
    // Alone, like a re-check: a packed call's own noise would blur the audit.
    const { llm, answered } = await askAlone(a.text, "learned-audit");
    const agree = llm === undefined ? null : llm.label === a.label;
    const call = await db.transaction(async (tx) => {
      const completed = await completeSideCall(tx as unknown as Db, answered, { outcome: llm ? "ok" : "invalid_output", validCount: llm ? 1 : 0 });
      await tx.insert(cacheAudits).values({
        tenantId: data.scope.tenantId,
        task: data.scope.params.task,
        kind: "learned",
        itemId: a.itemId,
        sourceItemId: null,
        score: a.confidence,
        cachedOutput: { label: a.label },
        llmOutput: llm ?? null,
        agree,
        llmCallId: completed.id,
      });
      return completed;
    });
    observeLlmCall(call);
    if (agree === null || !llm) continue;
    qualityMetrics.learnedAudits.inc({ task: data.scope.params.task, agree: String(agree) });
    cache.audit(scope, vectors[i]!, { label: a.label, confidence: a.confidence, threshold: a.threshold }, llm.label, a.text);
  }
  const [row] = await queryRows<{ rate: number | null }>(
    db,
    sql`select avg(case when agree then 0.0 else 1.0 end)::float8 as rate from (
          select agree from cache_audits where kind = 'learned' and task = ${data.scope.params.task} and agree is not null order by id desc limit 1000) a`,
  );
  if (row?.rate !== null && row?.rate !== undefined) qualityMetrics.learnedErrorRate.set({ task: data.scope.params.task }, row.rate);
}
