/**
 * Starts the workers of one process: one aggregator per configured provider, and the maintenance
 * queue (sweeper) driven by a BullMQ job scheduler.
 */
import { Queue, Worker } from "bullmq";
import {
  CACHE_FILL_QUEUE,
  MAINTENANCE_QUEUE,
  MaintenanceJob,
  assertExhaustive,
  batchPolicy,
  coerceError,
  createRedis,
  jobEventsChannel,
  loadPriceTable,
  realtimeQueueName,
  type Db,
  type Env,
  type Logger,
  type ProviderEndpoint,
  type ProviderName,
  type FinishedJob,
} from "@sieve/shared";
import { Aggregator } from "./aggregator/aggregator.js";
import { createProviders } from "./providers/index.js";
import type { LlmProvider } from "./providers/types.js";
import { startBatchLane, type BatchLaneHandle } from "./batch/lane.js";
import { sweepOnce } from "./maintenance/sweeper.js";
import { createAfterResults, type SemanticFill } from "./dedup/afterResults.js";
import { createBatchAnswerWriter } from "./dedup/batchAnswers.js";
import { ExactCache } from "@sieve/shared/dedup/exact";
import { LEARNED_FILL_QUEUE, RECHECK_QUEUE } from "@sieve/shared";
import { BatchLimits } from "./quality/limits.js";
import { createRecheckSampler, startRecheckWorker } from "./quality/recheck.js";

export { Aggregator } from "./aggregator/aggregator.js";
export { executeBatch } from "./aggregator/execute.js";
export { sweepOnce } from "./maintenance/sweeper.js";

export interface WorkersOptions {
  env: Env;
  db: Db;
  endpoints: Map<ProviderName, ProviderEndpoint>;
  log: Logger;
  /** Override providers (tests). */
  providers?: Map<ProviderName, LlmProvider>;
  /** Lock duration of held parcels, ms. @defaultValue 30000 */
  lockDurationMs?: number;
  /** Sweep every N ms (0 = no scheduler). @defaultValue 30000 */
  sweepEveryMs?: number;
  /** Jobs pending longer than this are checked by the sweeper. @defaultValue 60000 */
  staleAfterMs?: number;
  /** Where answered items go for the semantic cache (absent: semantic cache off). */
  semanticFill?: SemanticFill;
}

export interface WorkersHandle {
  aggregators: Aggregator[];
  /** The provider Batch API lane, when SIEVE_BATCH_LANE=true (issue 4). */
  batchLane?: BatchLaneHandle;
  close(): Promise<void>;
}

export async function startWorkers(opts: WorkersOptions): Promise<WorkersHandle> {
  const { env, db, log } = opts;
  const prefix = env.SIEVE_QUEUE_PREFIX;
  const connection = createRedis(env.REDIS_URL, "worker");
  const publisher = createRedis(env.REDIS_URL, "worker");
  const prices = loadPriceTable(env.SIEVE_PRICES);
  const providers = opts.providers ?? createProviders(opts.endpoints);
  const channel = jobEventsChannel(prefix);
  const onJobsFinished = (jobs: FinishedJob[]) => {
    for (const j of jobs) {
      publisher.publish(channel, JSON.stringify(j)).catch((e) => log.warn({ err: coerceError(e).message }, "could not publish job event"));
    }
  };
  // Answered items go to the semantic cache through a queue: the API process, which owns the
  // vector store and the embedder, consumes it (embedding stays off the call path).
  const fillQueue = env.SIEVE_CACHE_ENABLED && env.SIEVE_SEMANTIC_CACHE !== "off" ? new Queue(CACHE_FILL_QUEUE, { connection, prefix }) : undefined;
  const semanticFill: SemanticFill | undefined =
    opts.semanticFill ??
    (fillQueue
      ? {
          enqueue: async (entries) => {
            await fillQueue.add(
              "fill",
              {
                entries: entries.map((e) => ({
                  text: e.text,
                  output: e.output,
                  itemId: e.itemId,
                  ttlSeconds: e.ttlSeconds,
                  scope: e.scope,
                })),
              },
              { attempts: 5, backoff: { type: "exponential", delay: 1_000 }, removeOnComplete: { count: 1_000 }, removeOnFail: { age: 86_400 } },
            );
          },
        }
      : undefined);
  // LLM labels for the learned cache go to the API process, which owns its models (docs/quality.md).
  const learnedQueue = env.SIEVE_CACHE_ENABLED && env.SIEVE_LEARNED_CACHE ? new Queue(LEARNED_FILL_QUEUE, { connection, prefix }) : undefined;
  const exact = env.SIEVE_CACHE_ENABLED ? new ExactCache(publisher, db, { prefix, maxEntries: env.SIEVE_CACHE_MAX_ENTRIES, policy: env.SIEVE_CACHE_EVICTION }) : undefined;
  const afterResults = exact
    ? createAfterResults({
        db,
        exact,
        ...(semanticFill ? { semantic: semanticFill } : {}),
        ...(learnedQueue
          ? { learned: { enqueue: async (scope, entries) => void (await learnedQueue.add("fill", { scope, entries }, { attempts: 5, backoff: { type: "exponential", delay: 1_000 }, removeOnComplete: { count: 1_000 }, removeOnFail: { age: 86_400 } })) } }
          : {}),
        log,
        onJobsFinished,
      })
    : undefined;
  // Packed answers checked live (docs/quality.md): sample -> queue -> single-item call -> controller.
  const recheckQueue = env.SIEVE_RECHECK_RATE > 0 ? new Queue(RECHECK_QUEUE, { connection, prefix }) : undefined;
  const recheckSample = recheckQueue ? createRecheckSampler(recheckQueue, env.SIEVE_RECHECK_RATE, log) : undefined;
  const recheckWorker = recheckQueue ? startRecheckWorker({ db, env, connection, prefix, providers, prices, log: log.child({ role: "recheck" }) }) : undefined;
  const limits = new BatchLimits(db, log);
  await limits.start();
  const aggregators: Aggregator[] = [];
  for (const [name, provider] of providers) {
    const agg = new Aggregator({
      db,
      connection,
      prefix,
      provider,
      prices,
      policies: { classify: batchPolicy(env, "classify"), translate: batchPolicy(env, "translate") },
      concurrency: env.SIEVE_WORKER_CONCURRENCY,
      callTimeoutMs: env.SIEVE_CALL_TIMEOUT_MS,
      lockDurationMs: opts.lockDurationMs ?? 30_000,
      log: log.child({ provider: name }),
      onJobsFinished,
      ...(afterResults ? { afterResults } : {}),
      maxItemsFor: (key) => limits.get(key),
      ...(recheckSample
        ? { onCallAnswered: (c) => recheckSample({ batchKey: c.parcel.batchKey, tenantId: c.parcel.tenantId, provider: c.parcel.provider, model: c.parcel.model, params: c.parcel.params, callItems: c.callItems, rows: c.rows, textOf: c.textOf }) }
        : {}),
    });
    await agg.start();
    aggregators.push(agg);
  }

  // Maintenance: the sweeper runs on a job scheduler, so exactly one run happens per tick
  // however many worker processes there are.
  const queues = new Map<ProviderName, Queue>();
  for (const name of providers.keys()) queues.set(name, new Queue(realtimeQueueName(name), { connection, prefix }));
  const maintenance = new Queue(MAINTENANCE_QUEUE, { connection, prefix });
  const sweepEveryMs = opts.sweepEveryMs ?? 30_000;
  let maintenanceWorker: Worker | undefined;
  if (sweepEveryMs > 0) {
    await maintenance.upsertJobScheduler("sweep", { every: sweepEveryMs }, { name: "sweep", data: { kind: "sweep-unenqueued" } });
    maintenanceWorker = new Worker(
      MAINTENANCE_QUEUE,
      async (job) => {
        const data = MaintenanceJob.parse(job.data);
        switch (data.kind) {
          case "sweep-unenqueued":
            return sweepOnce({ db, env, queues, log, staleAfterMs: opts.staleAfterMs ?? 60_000 });
          default:
            return assertExhaustive(data.kind);
        }
      },
      { connection, prefix, concurrency: 1 },
    );
    maintenanceWorker.on("error", (e) => log.warn({ err: coerceError(e).message }, "maintenance worker error"));
  }
  // Batch lane (issue 4, docs/batch-lane.md): packer and lifecycle poller on job schedulers.
  const batchLane = env.SIEVE_BATCH_LANE
    ? await startBatchLane({
        env,
        db,
        endpoints: opts.endpoints,
        log: log.child({ lane: "batch" }),
        prices,
        connection,
        onJobsFinished,
        ...(exact ? { onAnswered: createBatchAnswerWriter({ db, env, exact, ...(semanticFill ? { semantic: semanticFill } : {}), log }) } : {}),
      })
    : undefined;
  log.info({ providers: [...providers.keys()], concurrency: env.SIEVE_WORKER_CONCURRENCY }, "workers started");

  return {
    aggregators,
    ...(batchLane ? { batchLane } : {}),
    async close() {
      await batchLane?.close();
      await Promise.allSettled(aggregators.map((a) => a.close()));
      await maintenanceWorker?.close().catch(() => {});
      await recheckWorker?.close().catch(() => {});
      limits.close();
      await recheckQueue?.close().catch(() => {});
      await learnedQueue?.close().catch(() => {});
      await Promise.allSettled([maintenance.close(), ...(fillQueue ? [fillQueue.close()] : []), ...[...queues.values()].map((q) => q.close())]);
      await Promise.allSettled([connection.quit(), publisher.quit()]);
    },
  };
}
