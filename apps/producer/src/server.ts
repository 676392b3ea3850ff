/** Builds the API context (queues, waiter) and starts the HTTP server. */
import type { Server } from "node:http";
import { Queue } from "bullmq";
import { BATCH_LANE_QUEUE, LEARNED_AUDIT_QUEUE, LEARNED_FILL_QUEUE, MAINTENANCE_QUEUE, RECHECK_QUEUE, createRedis, realtimeQueueName, type Db, type Env, type Logger, type ProviderEndpoint, type ProviderName } from "@sieve/shared";
import { createApp } from "./app.js";
import type { ApiContext } from "./context.js";
import { JobWaiter } from "./waiter.js";
// Batch lane and bulk ingestion (issue 4, docs/batch-lane.md).
import { createBatchLane, type BatchLaneApi } from "./bulk/lane.js";
import { startInbox, type InboxHandle } from "./bulk/inbox.js";
import { bulkRouter } from "./routes/bulk.js";
import { batchesRouter } from "./routes/batches.js";
import { exportsRouter } from "./routes/exports.js";
import { createDedup, type SemanticLookup } from "./dedup.js";
import { createSemanticService } from "./semantic.js";
import { createLearnedService, type LearnedService } from "./learned.js";
import type { PGlite } from "@electric-sql/pglite";
import { ExactCache } from "@sieve/shared/dedup/exact";

export interface ApiHandle {
  server: Server;
  url: string;
  ctx: ApiContext;
  /** The nightly bulk inbox, when SIEVE_BULK_CRON is set (issue 4). */
  inbox?: InboxHandle;
  /** The learned classification cache, when SIEVE_LEARNED_CACHE=true (docs/quality.md). */
  learned?: LearnedService;
  close(): Promise<void>;
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
}): Promise<ApiHandle> {
  const { env } = opts;
  const prefix = env.SIEVE_QUEUE_PREFIX;
  const redis = createRedis(env.REDIS_URL, "producer");
  const queueConn = createRedis(env.REDIS_URL, "producer");
  const queues = new Map<ProviderName, Queue>();
  for (const name of opts.endpoints.keys()) queues.set(name, new Queue(realtimeQueueName(name), { connection: queueConn, prefix }));
  const extraQueues = [new Queue(MAINTENANCE_QUEUE, { connection: queueConn, prefix })];
  // Batch lane housekeeping queue in Bull Board (issue 4).
  if (env.SIEVE_BATCH_LANE) extraQueues.push(new Queue(BATCH_LANE_QUEUE, { connection: queueConn, prefix }));
  // Answer-quality queues in Bull Board (docs/quality.md).
  if (env.SIEVE_RECHECK_RATE > 0) extraQueues.push(new Queue(RECHECK_QUEUE, { connection: queueConn, prefix }));
  if (env.SIEVE_LEARNED_CACHE) extraQueues.push(new Queue(LEARNED_FILL_QUEUE, { connection: queueConn, prefix }), new Queue(LEARNED_AUDIT_QUEUE, { connection: queueConn, prefix }));
  const waiter = new JobWaiter(createRedis(env.REDIS_URL, "subscriber"), prefix, opts.log);
  const ownSemantic =
    !opts.semantic && env.SIEVE_CACHE_ENABLED && env.SIEVE_SEMANTIC_CACHE !== "off"
      ? await createSemanticService({ env, db: opts.db, log: opts.log, endpoints: opts.endpoints, pglite: opts.pglite, vectorDataDir: opts.vectorDataDir })
      : undefined;
  const semantic = opts.semantic ?? ownSemantic;
  // Learned classification cache (docs/quality.md): shares the semantic cache's embedder when there is one.
  const learned =
    env.SIEVE_CACHE_ENABLED && env.SIEVE_LEARNED_CACHE
      ? await createLearnedService({ env, db: opts.db, log: opts.log, endpoints: opts.endpoints, ...(ownSemantic ? { embedder: ownSemantic.cache.embedder } : {}) })
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
  const ctx: ApiContext = { env, db: opts.db, redis, queues, endpoints: opts.endpoints, waiter, log: opts.log, extraQueues, ...(dedup ? { dedup } : {}) };
  // Batch lane (issue 4): ctx.batchLane makes submit.ts accept lane "batch"; /v1/bulk is always on.
  let lane: BatchLaneApi | undefined;
  if (env.SIEVE_BATCH_LANE) {
    lane = createBatchLane({ env, db: opts.db, connection: queueConn, log: opts.log.child({ lane: "batch" }), ctx: () => ctx });
    ctx.batchLane = lane;
  }
  const app = createApp(ctx, [bulkRouter(ctx, lane), exportsRouter(ctx), ...(lane ? [batchesRouter(ctx, lane)] : [])]);
  const inbox: InboxHandle | undefined = env.SIEVE_BULK_CRON ? await startInbox(ctx, lane) : undefined;
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(env.PORT, env.HOST, () => resolve(s));
    s.once("error", reject);
  });
  // Long-polls can last SIEVE_MAX_WAIT_MS: keep the socket open a little longer than that.
  server.requestTimeout = env.SIEVE_MAX_WAIT_MS + 30_000;
  // A bulk upload (POST /v1/bulk) streams for as long as its body takes to arrive (issue 4).
  server.requestTimeout = Math.max(server.requestTimeout, env.SIEVE_BULK_TIMEOUT_MS);
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : env.PORT;
  const url = `http://${env.HOST === "0.0.0.0" ? "127.0.0.1" : env.HOST}:${port}`;
  return {
    server,
    url,
    ctx,
    ...(inbox ? { inbox } : {}),
    ...(learned ? { learned } : {}),
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections?.();
        setTimeout(() => server.closeAllConnections?.(), 2_000).unref();
      });
      await waiter.close();
      await ownSemantic?.close();
      await learned?.close();
      await inbox?.close();
      await lane?.close();
      await Promise.allSettled([...queues.values(), ...extraQueues].map((q) => q.close()));
      await Promise.allSettled([redis.quit(), queueConn.quit()]);
    },
  };
}
