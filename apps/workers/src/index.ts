/**
 * Starts the workers of one process: one aggregator per configured provider, and the maintenance
 * queue (sweeper) driven by a BullMQ job scheduler. Every Redis connection, Queue and Worker
 * reports its errors to one DependencyMonitor, and every job scheduler is re-asserted when Redis
 * lost it (docs/operations.md#outages).
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
  safeErrorMessage,
  DependencyMonitor,
  dependencyPorts,
  ScheduleKeeper,
  ping,
  writeHeartbeat,
  publishGpuStats,
  publishGpuEngines,
  withdrawGpuEngines,
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
import { startBatchLane, type BatchLaneHandle } from "./batch/start.js";
import { markInterruptedCalls, sweepOnce } from "./maintenance/sweeper.js";
import { createAfterResults, type SemanticFill } from "./dedup/afterResults.js";
import { createBatchAnswerWriter } from "./dedup/batchAnswers.js";
import { ExactCache } from "@sieve/shared/dedup/exact";
import { createGpuPool, workerLanes } from "./gpu/lane.js";
import type { GpuPool } from "./gpu/pool.js";
import { LEARNED_FILL_QUEUE, RECHECK_QUEUE } from "@sieve/shared";
import { BatchLimits } from "./quality/limits.js";
import { createRecheckSampler, startRecheckWorker } from "./quality/recheck.js";
import { OutagePolicy, fallbackRoutes } from "./router/outageHook.js";
import { SharedBreakers } from "./router/sharedBreakers.js";
import { packingFor } from "@sieve/shared/config/packing";

export { Aggregator } from "./aggregator/aggregator.js";
export { answerOrSplit } from "./aggregator/answerOrSplit.js";
export { sweepOnce } from "./maintenance/sweeper.js";
export { startWorkerHttp } from "./http.js";
export { cacheConsumers, type CacheConsumers } from "./dedup/cacheConsumers.js";

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
  /** Up/down state of Redis and Postgres as this process sees them. */
  monitor: DependencyMonitor;
  /** Re-creates job schedulers Redis lost. */
  schedules: ScheduleKeeper;
  /** The local GPU lane (vLLM engines with adaptive limiters), when this process consumes it. */
  gpu?: GpuPool;
  /** The provider Batch API lane, when SIEVE_BATCH_LANE=true. */
  batchLane?: BatchLaneHandle;
  close(): Promise<void>;
}

export async function startWorkers(opts: WorkersOptions): Promise<WorkersHandle> {
  const { env, db, log } = opts;
  const prefix = env.SIEVE_QUEUE_PREFIX;
  const connection = createRedis(env.REDIS_URL, "worker");
  const publisher = createRedis(env.REDIS_URL, "worker");
  const monitor = new DependencyMonitor({
    role: "workers",
    log,
    ports: dependencyPorts({ postgres: env.DATABASE_URL, redis: env.REDIS_URL }),
    probes: { postgres: () => ping(db), redis: () => publisher.ping() },
  });
  monitor.watch(connection, "redis connection");
  monitor.watch(publisher, "redis publisher");
  const schedules = new ScheduleKeeper({ connection, log, everyMs: env.SIEVE_SCHEDULE_CHECK_MS, monitor });
  const prices = loadPriceTable(env.SIEVE_PRICES);
  const providers = opts.providers ?? createProviders(opts.endpoints);
  const channel = jobEventsChannel(prefix);
  const onJobsFinished = (jobs: FinishedJob[]) => {
    for (const j of jobs) {
      publisher.publish(channel, JSON.stringify(j)).catch((e) => {
        if (!monitor.report(e, "job events")) log.warn({ err: coerceError(e).message }, "could not publish job event");
      });
    }
  };
  // Answered items go to the semantic cache through a queue, consumed beside the vector store and
  // the embedder (dedup/cacheConsumers.ts): embedding stays off the call path.
  const fillQueue = env.SIEVE_CACHE_ENABLED && env.SIEVE_SEMANTIC_CACHE !== "off" ? new Queue(CACHE_FILL_QUEUE, { connection, prefix }) : undefined;
  if (fillQueue) monitor.watch(fillQueue, "cache-fill queue");
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
  // LLM labels for the learned cache go through a queue to the process that holds its models (docs/quality.md).
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
  const recheckSample = recheckQueue ? createRecheckSampler(recheckQueue, env.SIEVE_RECHECK_RATE, log, Math.random, (e) => monitor.report(e, "re-check queue") !== undefined) : undefined;
  const recheckWorker = recheckQueue ? startRecheckWorker({ db, env, connection, prefix, providers, prices, monitor, log: log.child({ role: "recheck" }) }) : undefined;
  const limits = new BatchLimits(db, log, 5_000, (e) => monitor.report(e, "batch limits") !== undefined);
  await limits.start();
  const aggregators: Aggregator[] = [];
  const lanes = workerLanes(env, providers.keys());
  // The local GPU lane: every vLLM engine behind its own adaptive limiter (docs/gpu-lane.md),
  // unless a test handed in its own vLLM provider.
  const vllmEndpoint = opts.endpoints.get("vllm");
  const gpu = lanes.has("vllm") && vllmEndpoint && !opts.providers?.has("vllm") ? createGpuPool(env, vllmEndpoint, providers, log.child({ lane: "gpu" })) : undefined;
  let gpuStatsTimer: NodeJS.Timeout | undefined;
  const gpuProcessId = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  if (gpu) {
    await gpu.start();
    // The API process's lane router reads the lane stats, the console the per-engine state
    // (packages/shared/src/router/laneStats.ts, docs/console.md "GPU engines").
    // One publish at a time: this connection queues commands while Redis is away (it retries
    // forever), so an outage must not pile a report per second into its offline queue.
    let publishing: Promise<void> | undefined;
    const publish = () =>
      (publishing ??= Promise.all([publishGpuStats(publisher, prefix, gpuProcessId, gpu.laneStats()), publishGpuEngines(publisher, prefix, gpuProcessId, gpu.engineStates())])
        .then(() => undefined)
        .catch((e) => {
          // During a Redis outage the monitor logs once; anything else is worth a line.
          if (!monitor.report(e, "gpu lane stats")) log.warn({ err: safeErrorMessage(e) }, "could not publish GPU lane stats");
        })
        .finally(() => {
          publishing = undefined;
        }));
    await publish();
    gpuStatsTimer = setInterval(() => void publish(), 1_000);
  }
  // Outages cost time, not items: breakers, time-bounded retries, moving to the next route.
  const queues = new Map<ProviderName, Queue>();
  for (const name of providers.keys()) {
    const q = new Queue(realtimeQueueName(name), { connection, prefix });
    monitor.watch(q, "provider queue");
    queues.set(name, q);
  }
  const sharedBreakers = new SharedBreakers(publisher, prefix, log);
  const outage = new OutagePolicy({ env, db, queues, fallbackRoutes: fallbackRoutes(env, [...opts.endpoints.values()]), log, shared: sharedBreakers });
  for (const name of providers.keys()) outage.breaker(name);
  sharedBreakers.start();
  for (const [name, configured] of providers) {
    if (!lanes.has(name)) continue;
    const provider = name === "vllm" && gpu ? gpu : configured;
    const agg = new Aggregator({
      db,
      connection,
      prefix,
      provider,
      prices,
      // The GPU lane packs per its model's defaults (a 7-8B model holds fewer items per call).
      policies:
        provider === gpu
          ? { classify: packingFor(batchPolicy(env, "classify"), "classify", vllmEndpoint!.defaultModel), translate: packingFor(batchPolicy(env, "translate"), "translate", vllmEndpoint!.defaultModel) }
          : { classify: batchPolicy(env, "classify"), translate: batchPolicy(env, "translate") },
      concurrency: provider === gpu ? () => gpu.capacity() : env.SIEVE_WORKER_CONCURRENCY,
      callTimeoutMs: env.SIEVE_CALL_TIMEOUT_MS,
      lockDurationMs: opts.lockDurationMs ?? 30_000,
      log: log.child({ provider: name }),
      ...outage.forProvider(name),
      onJobsFinished,
      monitor,
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
  const maintenance = new Queue(MAINTENANCE_QUEUE, { connection, prefix });
  monitor.watch(maintenance, "maintenance queue");
  // A GPU-only process leaves maintenance and the batch lane to the workers processes.
  const sweepEveryMs = env.SIEVE_ROLE === "gpu" ? 0 : (opts.sweepEveryMs ?? 30_000);
  let maintenanceWorker: Worker | undefined;
  if (sweepEveryMs > 0) {
    // The schedule lives in Redis: the keeper re-creates it when Redis comes back without it.
    await schedules.add(maintenance, "sweep", { every: sweepEveryMs }, { name: "sweep", data: { kind: "sweep-unenqueued" }, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } });
    maintenanceWorker = new Worker(
      MAINTENANCE_QUEUE,
      async (job) => {
        const data = MaintenanceJob.parse(job.data);
        switch (data.kind) {
          case "sweep-unenqueued": {
            const out = await sweepOnce({ db, env, queues, log, staleAfterMs: opts.staleAfterMs ?? 60_000, ...(exact ? { exact } : {}) });
            // /readyz reads this: no recent sweep means nothing would rescue stranded items.
            await writeHeartbeat(publisher, prefix, "sweeper");
            return out;
          }
          default:
            return assertExhaustive(data.kind);
        }
      },
      { connection, prefix, concurrency: 1 },
    );
    monitor.watch(maintenanceWorker, "maintenance worker");
    maintenanceWorker.on("failed", (_job, e) => {
      if (!monitor.report(e, "sweeper")) log.warn({ err: safeErrorMessage(e) }, "sweep failed; the next tick retries");
    });
  }
  // Batch lane (docs/batch-lane.md): packer and lifecycle poller on job schedulers.
  const batchLane = env.SIEVE_BATCH_LANE && env.SIEVE_ROLE !== "gpu"
    ? await startBatchLane({
        env,
        db,
        endpoints: opts.endpoints,
        log: log.child({ lane: "batch" }),
        prices,
        connection,
        monitor,
        schedules,
        onJobsFinished,
        ...(exact ? { onAnswered: createBatchAnswerWriter({ db, env, exact, ...(semanticFill ? { semantic: semanticFill } : {}), log }) } : {}),
      })
    : undefined;
  schedules.start();
  // Calls a crashed predecessor left "sent" are marked at once, not only at the next sweep.
  await markInterruptedCalls({ db, env, log }).catch((e) => log.warn({ err: coerceError(e).message }, "could not mark interrupted calls"));
  log.info({ lanes: [...lanes], concurrency: env.SIEVE_WORKER_CONCURRENCY, gpuEngines: gpu?.engines.length ?? 0 }, "workers started");

  return {
    aggregators,
    ...(gpu ? { gpu } : {}),
    monitor,
    schedules,
    ...(batchLane ? { batchLane } : {}),
    async close() {
      sharedBreakers.close();
      schedules.close();
      await batchLane?.close();
      await Promise.allSettled(aggregators.map((a) => a.close()));
      if (gpuStatsTimer) clearInterval(gpuStatsTimer);
      // The console stops listing this process at once (a killed one ages out after GPU_STATS_TTL_MS).
      // Bounded: this connection would wait for Redis forever during an outage.
      if (gpu) await withTimeout(withdrawGpuEngines(publisher, prefix, gpuProcessId), 1_000).catch(() => {});
      gpu?.close();
      await maintenanceWorker?.close().catch(() => {});
      await recheckWorker?.close().catch(() => {});
      limits.close();
      await recheckQueue?.close().catch(() => {});
      await learnedQueue?.close().catch(() => {});
      await Promise.allSettled([maintenance.close(), ...(fillQueue ? [fillQueue.close()] : []), ...[...queues.values()].map((q) => q.close())]);
      monitor.close();
      await Promise.allSettled([connection.quit(), publisher.quit()]);
    },
  };
}

/** `p`, or a rejection after `ms`. */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}
