/**
 * The learned classification cache in the API process (docs/quality.md): it owns a LearnedCache
 * (packages/cache/src/learned) and an embedder, answers opted-in classify items at submit time,
 * learns from LLM labels that workers put on the `learned-fill` queue, and audits a sample of its
 * own answers (`learned-audit` queue: each asked alone to the same model; recorded in
 * cache_audits with kind "learned", counted in metrics, and fed back into the threshold).
 *
 * Models live in this process's memory: a restart starts them cold, and with several API
 * processes each one learns only from the labels it happens to consume.
 */
import { Queue, Worker } from "bullmq";
import { sql } from "drizzle-orm";
import {
  LEARNED_AUDIT_QUEUE,
  LEARNED_FILL_QUEUE,
  LearnedAuditJob,
  LearnedFillJob,
  coerceError,
  createRedis,
  loadPriceTable,
  observeLlmCall,
  qualityMetrics,
  queryRows,
  validateResults,
  type Db,
  type DependencyMonitor,
  type Env,
  type Logger,
  type ProviderEndpoint,
  type ProviderName,
} from "@sieve/shared";
import { scopeFields, type CacheScopeInput } from "@sieve/shared/dedup/keys";
import { cacheAudits } from "@sieve/shared/db/schema/index";
import { MemoEmbedder } from "@sieve/cache/embeddings/memo";
import { LearnedCache, type CacheScope, type Embedder, type LearnedAnswer } from "@sieve/cache";
import { createProviders } from "@sieve/workers/providers/index";
import { completeSideCall, sendSideCall } from "@sieve/workers/providers/sideCall";
import { createEmbedder } from "./semantic.js";

export interface LearnedLookup {
  /** Answers for the texts the model is certified and confident about, by index. */
  lookup(texts: string[], scope: CacheScopeInput): Promise<Map<number, LearnedAnswer>>;
  /** Queues a sample of answers it gave for audit by the LLM. */
  audit(answers: Array<{ itemId: number; text: string } & LearnedAnswer>, scope: CacheScopeInput): Promise<void>;
}

export interface LearnedService extends LearnedLookup {
  cache: LearnedCache;
  close(): Promise<void>;
}

export async function createLearnedService(opts: { env: Env; db: Db; log: Logger; endpoints: Map<ProviderName, ProviderEndpoint>; embedder?: Embedder; monitor?: DependencyMonitor }): Promise<LearnedService> {
  const { env, db, log } = opts;
  const embedder = new MemoEmbedder(opts.embedder ?? createEmbedder(env));
  const cache = new LearnedCache({
    maxError: env.SIEVE_LEARNED_MAX_ERROR,
    minExamples: env.SIEVE_LEARNED_MIN_EXAMPLES,
    auditRate: env.SIEVE_LEARNED_AUDIT_RATE,
    dimensions: embedder.dimensions,
  });
  const fullScope = (s: CacheScopeInput): CacheScope => ({ ...scopeFields(s), embedderId: embedder.id });
  const connection = createRedis(env.REDIS_URL, "worker");
  const prefix = env.SIEVE_QUEUE_PREFIX;
  const auditQueue = new Queue(LEARNED_AUDIT_QUEUE, { connection, prefix });
  const providers = createProviders(opts.endpoints);
  const prices = loadPriceTable(env.SIEVE_PRICES);

  const fillWorker = new Worker(
    LEARNED_FILL_QUEUE,
    async (job) => {
      const data = LearnedFillJob.parse(job.data);
      const scope = fullScope(data.scope as CacheScopeInput);
      const vectors = await embedder.embed(data.entries.map((e) => e.text));
      data.entries.forEach((e, i) => cache.learn(scope, vectors[i]!, e.label));
    },
    { connection, prefix, concurrency: 1 },
  );
  if (opts.monitor) opts.monitor.watch(fillWorker, "learned-fill worker");
  else fillWorker.on("error", (e) => log.warn({ err: coerceError(e).message }, "learned-fill worker error"));

  const auditWorker = new Worker(
    LEARNED_AUDIT_QUEUE,
    async (job) => {
      const data = LearnedAuditJob.parse(job.data);
      const provider = providers.get(data.scope.provider);
      if (!provider) return;
      const scope = fullScope(data.scope as CacheScopeInput);
      const vectors = await embedder.embed(data.answers.map((a) => a.text));
      for (const [i, a] of data.answers.entries()) {
        // Alone, like a re-check: a packed call's own noise would blur the audit.
        const { res, call: answered } = await sendSideCall(db, prices, provider, {
          tenantId: data.scope.tenantId,
          provider: data.scope.provider,
          model: data.scope.model,
          lane: "audit",
          batchKey: "learned-audit",
          params: data.scope.params,
          items: [{ id: "i1", text: a.text }],
          timeoutMs: env.SIEVE_CALL_TIMEOUT_MS,
        });
        const v = res.answer === undefined ? undefined : validateResults(data.scope.params, ["i1"], res.answer);
        const llm = v?.ok.get("i1") as { label: string } | undefined;
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
        cache.audit(scope, vectors[i]!, { label: a.label, confidence: a.confidence, threshold: a.threshold }, llm.label);
      }
      const [row] = await queryRows<{ rate: number | null }>(
        db,
        sql`select avg(case when agree then 0.0 else 1.0 end)::float8 as rate from (
              select agree from cache_audits where kind = 'learned' and task = ${data.scope.params.task} and agree is not null order by id desc limit 1000) a`,
      );
      if (row?.rate !== null && row?.rate !== undefined) qualityMetrics.learnedErrorRate.set({ task: data.scope.params.task }, row.rate);
    },
    { connection, prefix, concurrency: 1 },
  );
  if (opts.monitor) opts.monitor.watch(auditWorker, "learned-audit worker");
  else auditWorker.on("error", (e) => log.warn({ err: coerceError(e).message }, "learned-audit worker error"));
  log.info({ embedder: embedder.id, maxError: env.SIEVE_LEARNED_MAX_ERROR, minExamples: env.SIEVE_LEARNED_MIN_EXAMPLES }, "learned cache ready");

  return {
    cache,
    async lookup(texts, scopeInput) {
      const out = new Map<number, LearnedAnswer>();
      if (scopeInput.params.task !== "classify" || texts.length === 0) return out;
      const scope = fullScope(scopeInput);
      const stats = cache.stats(scope);
      if (!stats || stats.threshold === undefined) {
        // Cold (warming up or not certified): no embedding cost at submit until it can answer.
        qualityMetrics.learnedLookups.inc({ task: scopeInput.params.task, outcome: "cold" }, texts.length);
        return out;
      }
      const vectors = await embedder.embed(texts);
      vectors.forEach((v, i) => {
        const a = cache.lookup(scope, v);
        if (a) out.set(i, a);
      });
      qualityMetrics.learnedLookups.inc({ task: scopeInput.params.task, outcome: "hit" }, out.size);
      qualityMetrics.learnedLookups.inc({ task: scopeInput.params.task, outcome: "miss" }, texts.length - out.size);
      return out;
    },
    async audit(answers, scopeInput) {
      const sample = answers.filter(() => Math.random() < env.SIEVE_LEARNED_AUDIT_RATE);
      if (sample.length === 0) return;
      await auditQueue.add(
        "audit",
        { scope: scopeInput, answers: sample.map((a) => ({ itemId: a.itemId, text: a.text, label: a.label, confidence: a.confidence, threshold: a.threshold })) },
        { attempts: 3, backoff: { type: "exponential", delay: 2_000 }, removeOnComplete: { age: 3_600 }, removeOnFail: { age: 86_400 } },
      );
    },
    async close() {
      await Promise.allSettled([fillWorker.close(), auditWorker.close()]);
      await auditQueue.close().catch(() => {});
      await connection.quit().catch(() => {});
    },
  };
}
