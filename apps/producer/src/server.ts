/** Builds the API context (queues, waiter) and starts the HTTP server. */
import { createServer, type Server } from "node:http";
import { Queue } from "bullmq";
import { BATCH_LANE_QUEUE, BULK_INBOX_QUEUE, CACHE_AUDIT_QUEUE, CACHE_FILL_QUEUE, DependencyMonitor, LEARNED_AUDIT_QUEUE, LEARNED_FILL_QUEUE, MAINTENANCE_QUEUE, RECHECK_QUEUE, createRedis, dependencyPorts, ping, semanticTaskSet, realtimeQueueName, type Db, type Env, type Logger, type ProviderEndpoint, type ProviderName } from "@sieve/shared";
import { createApp } from "./app.js";
import type { ApiContext, BatchLaneApi } from "./context.js";
import { JobWaiter } from "./waiter.js";
import { vllmDirectSampler } from "./admin/engines.js";
import { gpuLaneEngineSource } from "./admin/gpuEngines.js";
// Batch lane and bulk ingestion (docs/batch-lane.md).
import { createBatchLane } from "./accept/batchLane.js";
import { startInbox, type InboxHandle } from "./bulk/inbox.js";
import { bulkRouter } from "./routes/bulk.js";
import { batchesDisabledRouter, batchesRouter } from "./routes/batches.js";
import { exportsRouter } from "./routes/exports.js";
import { learnedRouter } from "./routes/learned.js";
import { createDedup } from "./dedup.js";
import type { SemanticLookup } from "./accept/dedupHook.js";
import { LazySemantic, createSemanticService, type SemanticServiceOptions } from "./semantic.js";
import { createLearnedService, type LearnedService, type LearnedServiceOptions } from "./learned.js";
import type { PGlite } from "@electric-sql/pglite";
import { ExactCache } from "@sieve/shared/dedup/exact";

export interface ApiHandle {
  server: Server;
  url: string;
  ctx: ApiContext;
  /** The semantic cache this process owns (started lazily), when SIEVE_SEMANTIC_CACHE is not off. */
  semantic?: LazySemantic;
  /** The nightly bulk inbox, when SIEVE_BULK_CRON is set. */
  inbox?: InboxHandle;
  /** The learned classification cache, when SIEVE_LEARNED_CACHE=true (docs/quality.md). */
  learned?: LearnedService;
  close(): Promise<void>;
}

/**
 * What fills and audits the caches this process holds (the vector store, the learned models):
 * worker code (apps/workers/src/dedup/cacheConsumers.ts) that the composition root hands in and
 * that starts with each cache. The API itself only reads the caches.
 */
export interface CacheConsumers {
  semantic: NonNullable<SemanticServiceOptions["consumers"]>;
  learned: NonNullable<LearnedServiceOptions["consumers"]>;
}

export async function startApi(opts: {
  env: Env;
  db: Db;
  endpoints: Map<ProviderName, ProviderEndpoint>;
  log: Logger;
  dedup?: ApiContext["dedup"];
  /** Semantic lookups; by default built here when SIEVE_SEMANTIC_CACHE is not off. */
  semantic?: SemanticLookup;
  /** The embedded database (the pgvector table lives in it). */
  pglite?: PGlite;
  /** Data dir of a separate vector PGlite when the database is a real Postgres. */
  vectorDataDir?: string;
  /** The caches' fill and audit consumers; without them the caches are only read. */
  cacheConsumers?: CacheConsumers;
}): Promise<ApiHandle> {
  const { env } = opts;
  const prefix = env.SIEVE_QUEUE_PREFIX;
  const redis = createRedis(env.REDIS_URL, "producer");
  const queueConn = createRedis(env.REDIS_URL, "producer");
  const monitor = new DependencyMonitor({
    role: "api",
    log: opts.log,
    ports: dependencyPorts({ postgres: env.DATABASE_URL, redis: env.REDIS_URL }),
    probes: { postgres: () => ping(opts.db), redis: () => redis.ping() },
  });
  const queues = new Map<ProviderName, Queue>();
  for (const name of opts.endpoints.keys()) queues.set(name, new Queue(realtimeQueueName(name), { connection: queueConn, prefix }));
  const extraQueues = [new Queue(MAINTENANCE_QUEUE, { connection: queueConn, prefix })];
  // Batch lane housekeeping queue in Bull Board.
  if (env.SIEVE_BATCH_LANE) extraQueues.push(new Queue(BATCH_LANE_QUEUE, { connection: queueConn, prefix }));
  // Every queue Sieve runs is listed in Bull Board (docs/console.md).
  if (env.SIEVE_CACHE_ENABLED) for (const n of [CACHE_FILL_QUEUE, CACHE_AUDIT_QUEUE]) extraQueues.push(new Queue(n, { connection: queueConn, prefix }));
  if (env.SIEVE_BULK_CRON) extraQueues.push(new Queue(BULK_INBOX_QUEUE, { connection: queueConn, prefix }));
  // Answer-quality queues in Bull Board (docs/quality.md).
  if (env.SIEVE_RECHECK_RATE > 0) extraQueues.push(new Queue(RECHECK_QUEUE, { connection: queueConn, prefix }));
  if (env.SIEVE_LEARNED_CACHE) extraQueues.push(new Queue(LEARNED_FILL_QUEUE, { connection: queueConn, prefix }), new Queue(LEARNED_AUDIT_QUEUE, { connection: queueConn, prefix }));
  const subscriber = createRedis(env.REDIS_URL, "subscriber");
  // Every connection and Queue reports here: one JSON log line per outage, never a raw stack.
  for (const [e, name] of [[redis, "redis"], [queueConn, "redis queues"], [subscriber, "redis events"]] as const) monitor.watch(e, name);
  for (const q of [...queues.values(), ...extraQueues]) monitor.watch(q, `queue ${q.name}`);
  const waiter = new JobWaiter(subscriber, prefix, opts.log);
  const ownSemantic =
    !opts.semantic && env.SIEVE_CACHE_ENABLED && env.SIEVE_SEMANTIC_CACHE !== "off"
      ? new LazySemantic(() => createSemanticService({ env, log: opts.log, pglite: opts.pglite, vectorDataDir: opts.vectorDataDir, monitor, consumers: opts.cacheConsumers?.semantic }))
      : undefined;
  if (ownSemantic && (semanticTaskSet(env).size > 0 || (await semanticWorkWaiting(queueConn, prefix)))) await ownSemantic.start();
  const semantic = opts.semantic ?? ownSemantic;
  // Learned classification cache (docs/quality.md): shares the semantic cache's embedder when there is one.
  const learned =
    env.SIEVE_CACHE_ENABLED && env.SIEVE_LEARNED_CACHE
      ? await createLearnedService({ env, log: opts.log, monitor, consumers: opts.cacheConsumers?.learned, ...(ownSemantic ? { embedder: (await ownSemantic.start()).cache.embedder } : {}) })
      : undefined;
  const dedup =
    opts.dedup ??
    (env.SIEVE_CACHE_ENABLED
      ? createDedup({
          env,
          db: opts.db,
          exact: new ExactCache(redis, opts.db, { prefix, maxEntries: env.SIEVE_CACHE_MAX_ENTRIES, policy: env.SIEVE_CACHE_EVICTION }),
          ...(semantic ? { semantic } : {}),
          ...(learned ? { learned } : {}),
          log: opts.log,
        })
      : undefined);
  const ctx: ApiContext = { env, db: opts.db, redis, queues, endpoints: opts.endpoints, waiter, log: opts.log, monitor, startedAt: Date.now(), extraQueues, ...(dedup ? { dedup } : {}) };
  // GPU engines on the console's Lanes page (docs/console.md "GPU engines"): what the GPU worker
  // processes report, or the configured vLLM server probed directly while none does.
  if (env.SIEVE_ADMIN_USER) ctx.engines = gpuLaneEngineSource({ redis, prefix, log: opts.log, monitor, direct: vllmDirectSampler(env) });
  // Batch lane: ctx.batchLane makes acceptJob accept lane "batch"; /v1/bulk is always on.
  let lane: BatchLaneApi | undefined;
  if (env.SIEVE_BATCH_LANE) {
    lane = createBatchLane({ env, db: opts.db, connection: queueConn, log: opts.log.child({ lane: "batch" }), ctx: () => ctx });
    ctx.batchLane = lane;
  }
  const app = createApp(ctx, [bulkRouter(ctx), exportsRouter(ctx), learnedRouter(env, learned), lane ? batchesRouter(ctx, lane) : batchesDisabledRouter()]);
  const inbox: InboxHandle | undefined = env.SIEVE_BULK_CRON ? await startInbox(ctx) : undefined;
  // Not app.listen(): express 5 calls its callback on an error too, so a busy port looked like
  // "listening" while nothing was served. A listen error rejects here and the process exits.
  const server = createServer(app);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(env.PORT, env.HOST, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (e) {
    monitor.close();
    await waiter.close();
    await ownSemantic?.close();
    await inbox?.close();
    await lane?.close();
    await Promise.allSettled([...queues.values(), ...extraQueues].map((q) => q.close()));
    await Promise.allSettled([redis.quit(), queueConn.quit()]);
    const err = e as NodeJS.ErrnoException;
    if (err.code === "EADDRINUSE") throw new ListenError(`PORT ${env.PORT} on HOST ${env.HOST} is already in use (EADDRINUSE): stop the other process or set PORT`, e);
    if (err.code === "EACCES") throw new ListenError(`PORT ${env.PORT} on HOST ${env.HOST} needs privileges (EACCES): set PORT above 1023`, e);
    throw e;
  }
  // Long-polls can last SIEVE_MAX_WAIT_MS: keep the socket open a little longer than that.
  server.requestTimeout = env.SIEVE_MAX_WAIT_MS + 30_000;
  // A bulk upload (POST /v1/bulk) streams for as long as its body takes to arrive.
  server.requestTimeout = Math.max(server.requestTimeout, env.SIEVE_BULK_TIMEOUT_MS);
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : env.PORT;
  const url = `http://${env.HOST === "0.0.0.0" ? "127.0.0.1" : env.HOST}:${port}`;
  return {
    server,
    url,
    ctx,
    ...(ownSemantic ? { semantic: ownSemantic } : {}),
    ...(inbox ? { inbox } : {}),
    ...(learned ? { learned } : {}),
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections?.();
        setTimeout(() => server.closeAllConnections?.(), 2_000).unref();
      });
      await waiter.close();
      ctx.engines?.close?.();
      await ownSemantic?.close();
      await learned?.close();
      await inbox?.close();
      await lane?.close();
      await Promise.allSettled([...queues.values(), ...extraQueues].map((q) => q.close()));
      monitor.close();
      await Promise.allSettled([redis.quit(), queueConn.quit()]);
    },
  };
}

/** The API could not listen (busy port, no permission): the process must exit non-zero. */
export class ListenError extends Error {
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = "ListenError";
  }
}

/** Cache-fill or audit jobs left by an earlier run: the semantic service must start to consume them. */
async function semanticWorkWaiting(connection: ReturnType<typeof createRedis>, prefix: string): Promise<boolean> {
  for (const name of [CACHE_FILL_QUEUE, CACHE_AUDIT_QUEUE]) {
    const q = new Queue(name, { connection, prefix });
    try {
      const c = await q.getJobCounts("waiting", "delayed", "prioritized", "active");
      if (Object.values(c).some((n) => n > 0)) return true;
    } finally {
      await q.close();
    }
  }
  return false;
}
