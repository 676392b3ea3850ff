/**
 * The learned classification cache's fill consumer (docs/quality.md): LLM labels of opted-in
 * requests reach the `learned-fill` queue (afterResults.ts) and are learned here, off the call
 * path. The models live in memory, so this runs in the process that answers lookups from them
 * (cacheConsumers.ts).
 */
import { Worker } from "bullmq";
import type { Redis } from "ioredis";
import { LEARNED_FILL_QUEUE, LearnedFillJob, coerceError, type DependencyMonitor, type Logger } from "@sieve/shared";
import type { CacheScopeInput } from "@sieve/shared/dedup/keys";
import type { CacheScope, Embedder, LearnedCache, PendingAdjudication } from "@sieve/cache";

/** The learned cache as its consumers see it: the models, their embedder, and the scope of a job. */
export interface LearnedModels {
  cache: LearnedCache;
  embedder: Embedder;
  /** A job's scope with the embedder id: what a model is kept per. */
  scopeOf(scope: CacheScopeInput): CacheScope;
}

export interface LearnedFillOptions {
  models: LearnedModels;
  connection: Redis;
  prefix: string;
  log: Logger;
  monitor?: DependencyMonitor | undefined;
  /**
   * Queues the confident disagreements with packed labels that learn() held back, to be asked
   * alone by the audit worker (LearnedCache adjudication, docs/quality.md). Without it they count
   * as errors at once.
   */
  adjudicate?: ((scope: CacheScopeInput, items: Array<{ itemId: number; text: string } & PendingAdjudication>) => Promise<void>) | undefined;
}

export function startLearnedFillWorker(opts: LearnedFillOptions): Worker {
  const { cache, embedder, scopeOf } = opts.models;
  const worker = new Worker(
    LEARNED_FILL_QUEUE,
    async (job) => {
      const data = LearnedFillJob.parse(job.data);
      const scope = scopeOf(data.scope as CacheScopeInput);
      const vectors = await embedder.embed(data.entries.map((e) => e.text));
      const held: Array<{ itemId: number; text: string } & PendingAdjudication> = [];
      data.entries.forEach((e, i) => {
        const pending = cache.learn(scope, vectors[i]!, e.label, e.text, e.packed === true);
        if (!pending) return;
        if (opts.adjudicate) held.push({ itemId: e.itemId, text: e.text, ...pending });
        else cache.adjudicate(scope, pending, undefined);
      });
      if (held.length > 0) await opts.adjudicate!(data.scope as CacheScopeInput, held);
    },
    { connection: opts.connection, prefix: opts.prefix, concurrency: 1 },
  );
  if (opts.monitor) opts.monitor.watch(worker, "learned-fill worker");
  else worker.on("error", (e) => opts.log.warn({ err: coerceError(e).message }, "learned-fill worker error"));
  return worker;
}
