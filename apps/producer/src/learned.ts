/**
 * The learned classification cache in the API process (docs/quality.md): it owns a LearnedCache
 * (packages/cache/src/learned) and an embedder, answers opted-in classify items at submit time
 * and queues a sample of its own answers for audit (`learned-audit` queue). What learns from the
 * LLM labels workers put on the `learned-fill` queue, and what answers the audits and feeds them
 * back into the threshold, is worker code (apps/workers/src/dedup/), started beside the models
 * through the `consumers` hook the composition root hands in.
 *
 * Models live in this process's memory: a restart starts them cold, and with several API
 * processes each one learns only from the labels it happens to consume.
 */
import { Queue } from "bullmq";
import { AUDIT_JOB_OPTIONS, LEARNED_AUDIT_QUEUE, createRedis, qualityMetrics, type DependencyMonitor, type Env, type Logger } from "@sieve/shared";
import { scopeFields, type CacheScopeInput } from "@sieve/shared/dedup/keys";
import { MemoEmbedder } from "@sieve/cache/embeddings/memo";
import { LearnedCache, type CacheScope, type Embedder, type LearnedAnswer } from "@sieve/cache";
import { createEmbedder, type RunningConsumers } from "./semantic.js";

export interface LearnedLookup {
  /** Answers for the texts the model is certified and confident about, by index. */
  lookup(texts: string[], scope: CacheScopeInput): Promise<Map<number, LearnedAnswer>>;
  /** Queues a sample of answers it gave for audit by the LLM. */
  audit(answers: Array<{ itemId: number; text: string } & LearnedAnswer>, scope: CacheScopeInput): Promise<void>;
}

/** The models as their consumers see them: the cache, its embedder, and the scope of a job. */
export interface LearnedModels {
  cache: LearnedCache;
  embedder: Embedder;
  scopeOf(scope: CacheScopeInput): CacheScope;
}

export interface LearnedService extends LearnedLookup {
  cache: LearnedCache;
  close(): Promise<void>;
}

export interface LearnedServiceOptions {
  env: Env;
  log: Logger;
  embedder?: Embedder;
  monitor?: DependencyMonitor;
  /** Starts the models' fill and audit consumers (apps/workers/src/dedup/cacheConsumers.ts); without it nothing trains them. */
  consumers?: ((models: LearnedModels, monitor?: DependencyMonitor) => RunningConsumers) | undefined;
}

export async function createLearnedService(opts: LearnedServiceOptions): Promise<LearnedService> {
  const { env, log } = opts;
  const embedder = new MemoEmbedder(opts.embedder ?? createEmbedder(env));
  const cache = new LearnedCache({
    maxError: env.SIEVE_LEARNED_MAX_ERROR,
    minExamples: env.SIEVE_LEARNED_MIN_EXAMPLES,
    auditRate: env.SIEVE_LEARNED_AUDIT_RATE,
    dimensions: embedder.dimensions,
    startFactor: env.SIEVE_LEARNED_START_FACTOR,
    ...(env.SIEVE_LEARNED_ADJUDICATE_ABOVE !== undefined ? { adjudicateAbove: env.SIEVE_LEARNED_ADJUDICATE_ABOVE } : {}),
  });
  const fullScope = (s: CacheScopeInput): CacheScope => ({ ...scopeFields(s), embedderId: embedder.id });
  const connection = createRedis(env.REDIS_URL, "worker");
  const prefix = env.SIEVE_QUEUE_PREFIX;
  const auditQueue = new Queue(LEARNED_AUDIT_QUEUE, { connection, prefix });
  const consumers = opts.consumers?.({ cache, embedder, scopeOf: fullScope }, opts.monitor);
  log.info({ embedder: embedder.id, maxError: env.SIEVE_LEARNED_MAX_ERROR, minExamples: env.SIEVE_LEARNED_MIN_EXAMPLES }, "learned cache ready");

  return {
    cache,
    async lookup(texts, scopeInput) {
      const out = new Map<number, LearnedAnswer>();
      if (scopeInput.params.task !== "classify" || texts.length === 0) return out;
      const scope = fullScope(scopeInput);
      if (cache.threshold(scope) === undefined) {
        // Cold (warming up or not certified): no embedding cost at submit until it can answer.
        qualityMetrics.learnedLookups.inc({ task: scopeInput.params.task, outcome: "cold" }, texts.length);
        return out;
      }
      const vectors = await embedder.embed(texts);
      vectors.forEach((v, i) => {
        const a = cache.lookup(scope, v, texts[i]);
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
        AUDIT_JOB_OPTIONS,
      );
    },
    async close() {
      await consumers?.close();
      await auditQueue.close().catch(() => {});
      await connection.quit().catch(() => {});
    },
  };
}
