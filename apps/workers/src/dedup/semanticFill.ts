/**
 * The semantic cache's fill consumer: items answered by an LLM reach the `cache-fill` queue
 * (afterResults.ts, batchAnswers.ts) and are embedded and stored here, off the call path. It runs
 * in the process that holds the vector store (cacheConsumers.ts).
 */
import { Worker } from "bullmq";
import type { Redis } from "ioredis";
import { CACHE_FILL_QUEUE, CacheFillJob, coerceError, type DependencyMonitor, type Logger } from "@sieve/shared";
import { scopeFields, type CacheScopeInput } from "@sieve/shared/dedup/keys";
import type { SemanticCache } from "@sieve/cache";

export interface SemanticFillOptions {
  cache: SemanticCache;
  /** Entries the store keeps (SIEVE_SEMANTIC_MAX_ENTRIES); eviction runs every 50 fills. */
  maxEntries: number;
  connection: Redis;
  prefix: string;
  log: Logger;
  monitor?: DependencyMonitor | undefined;
}

export function startSemanticFillWorker(opts: SemanticFillOptions): Worker {
  const { cache } = opts;
  let fills = 0;
  const worker = new Worker(
    CACHE_FILL_QUEUE,
    async (job) => {
      const data = CacheFillJob.parse(job.data);
      await cache.store(
        data.entries.map((e) => ({
          scope: scopeFields(e.scope as CacheScopeInput),
          text: e.text,
          output: e.output,
          sourceItemId: e.itemId,
          ttlMs: e.ttlSeconds * 1000,
        })),
      );
      // Eviction scans the store: do it every ~50 fills, not on every one.
      if (++fills % 50 === 0) await cache.evictIfNeeded(opts.maxEntries);
    },
    { connection: opts.connection, prefix: opts.prefix, concurrency: 1 },
  );
  if (opts.monitor) opts.monitor.watch(worker, "cache-fill worker");
  else worker.on("error", (e) => opts.log.warn({ err: coerceError(e).message }, "cache-fill worker error"));
  return worker;
}
