/**
 * The consumers that fill and audit the semantic and learned caches, bundled as the hook the
 * composition root hands to the API (`startApi({ cacheConsumers })`, apps/producer/src/server.ts).
 *
 * Where they run: beside the cache they fill. The pgvector store lives in an embedded PGlite,
 * which only one process can open, and the learned models live in memory; both are opened by the
 * process that answers lookups from them, and these consumers start with them (the semantic cache
 * starts lazily). With SIEVE_ROLE=all that is the one process; with split roles, the `api`
 * process. The API's own code only reads the caches and queues samples of their answers for audit.
 */
import { Queue, type Worker } from "bullmq";
import type { Redis } from "ioredis";
import { AUDIT_JOB_OPTIONS, LEARNED_AUDIT_QUEUE, createRedis, loadPriceTable, type LearnedAuditJob, type Db, type DependencyMonitor, type Env, type Logger, type PriceTable, type ProviderEndpoint, type ProviderName } from "@sieve/shared";
import type { SemanticCache } from "@sieve/cache";
import type { CacheScopeInput } from "@sieve/shared/dedup/keys";
import { createProviders } from "../providers/index.js";
import type { LlmProvider } from "../providers/types.js";
import { startSemanticFillWorker } from "./semanticFill.js";
import { startSemanticAuditWorker, type CacheAuditOptions } from "./semanticAudit.js";
import { startLearnedFillWorker, type LearnedModels } from "./learnedFill.js";
import { startLearnedAuditWorker } from "./learnedAudit.js";

export type { LearnedModels } from "./learnedFill.js";

export interface CacheConsumerDeps {
  env: Env;
  db: Db;
  /** The providers audits are sent to. */
  endpoints: Map<ProviderName, ProviderEndpoint>;
  log: Logger;
}

export interface RunningConsumers {
  close(): Promise<void>;
}

export interface CacheConsumers {
  /** Starts the `cache-fill` and `cache-audit` consumers of an opened semantic cache. */
  semantic(cache: SemanticCache, monitor?: DependencyMonitor): RunningConsumers;
  /** Starts the `learned-fill` and `learned-audit` consumers of the learned models. */
  learned(models: LearnedModels, monitor?: DependencyMonitor): RunningConsumers;
}

export function cacheConsumers(deps: CacheConsumerDeps): CacheConsumers {
  const { env, log } = deps;
  // SDK clients and prices for audits, built once (not per audit job), when first needed.
  let providers: Map<ProviderName, LlmProvider> | undefined;
  let prices: PriceTable | undefined;
  const auditDeps = (connection: Redis, monitor: DependencyMonitor | undefined): CacheAuditOptions => ({
    db: deps.db,
    providers: (providers ??= createProviders(deps.endpoints)),
    prices: (prices ??= loadPriceTable(env.SIEVE_PRICES)),
    callTimeoutMs: env.SIEVE_CALL_TIMEOUT_MS,
    connection,
    prefix: env.SIEVE_QUEUE_PREFIX,
    log,
    monitor,
  });
  const connect = (name: string, monitor: DependencyMonitor | undefined): Redis => {
    const connection = createRedis(env.REDIS_URL, "worker");
    monitor?.watch(connection, name);
    return connection;
  };
  const running = (connection: Redis, workers: Worker[]): RunningConsumers => ({
    async close() {
      await Promise.allSettled(workers.map((w) => w.close()));
      await connection.quit().catch(() => {});
    },
  });
  return {
    semantic(cache, monitor) {
      const connection = connect("cache consumers redis", monitor);
      const common = { connection, prefix: env.SIEVE_QUEUE_PREFIX, log, monitor };
      return running(connection, [startSemanticFillWorker({ cache, maxEntries: env.SIEVE_SEMANTIC_MAX_ENTRIES, ...common }), startSemanticAuditWorker(auditDeps(connection, monitor))]);
    },
    learned(models, monitor) {
      const connection = connect("learned consumers redis", monitor);
      const auditQueue = new Queue(LEARNED_AUDIT_QUEUE, { connection, prefix: env.SIEVE_QUEUE_PREFIX });
      const adjudicate = async (scope: CacheScopeInput, items: LearnedAuditJob["adjudications"]) =>
        void (await auditQueue.add("adjudicate", { scope, adjudications: items }, AUDIT_JOB_OPTIONS));
      const workers = [startLearnedFillWorker({ models, connection, prefix: env.SIEVE_QUEUE_PREFIX, log, monitor, adjudicate }), startLearnedAuditWorker({ ...auditDeps(connection, monitor), models })];
      return {
        async close() {
          await Promise.allSettled(workers.map((w) => w.close()));
          await auditQueue.close().catch(() => {});
          await connection.quit().catch(() => {});
        },
      };
    },
  };
}
