/**
 * Starts the batch lane in a workers process (SIEVE_BATCH_LANE=true): two BullMQ job schedulers on
 * BATCH_LANE_QUEUE ("pack" every SIEVE_BATCH_PACK_EVERY_MS, "poll" every SIEVE_BATCH_POLL_EVERY_MS),
 * plus "pack"/"poll" kicks from the API, processed by one worker per process.
 *
 * Redis holds only these few housekeeping jobs; items wait in Postgres. A job scheduler produces
 * one job per tick however many workers processes run, and every step is safe to run concurrently
 * anyway (SKIP LOCKED claims, per-batch leases, settle-once requests).
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { Queue, Worker } from "bullmq";
import type { Redis } from "ioredis";
import { BATCH_LANE_QUEUE, BatchLaneJob, PACK_KICK_ID, safeErrorMessage, type DependencyMonitor, type ScheduleKeeper, type Db, type Env, type Logger, type PriceTable, type ProviderEndpoint, type ProviderName } from "@sieve/shared";
import type { NewResult } from "@sieve/shared";
import type { FinishedJob } from "@sieve/shared/db/ops/results";
import type { BatchApi, BatchProviderName } from "../providers/batch-types.js";
import { createBatchApis } from "../providers/index.js";
import type { LaneDeps } from "./laneDeps.js";
import { packOnce, type PackResult } from "./packer.js";
import { pollOnce, type PollReport } from "./poller.js";

export interface BatchLaneOptions {
  env: Env;
  db: Db;
  endpoints: Map<ProviderName, ProviderEndpoint>;
  log: Logger;
  prices: PriceTable;
  /** A worker connection (maxRetriesPerRequest: null). */
  connection: Redis;
  /** Outages are logged once per dependency, not once per tick (docs/operations.md#outages). */
  monitor: DependencyMonitor;
  /** Re-creates the pack/poll schedulers when Redis lost them. */
  schedules: ScheduleKeeper;
  onJobsFinished?: (jobs: FinishedJob[]) => void;
  /** Valid answers just persisted (the caches are written from here). */
  onAnswered?: (rows: NewResult[]) => Promise<void>;
  /** Override the provider batch APIs (tests). */
  apis?: Map<BatchProviderName, BatchApi>;
}

export interface BatchLaneHandle {
  deps: LaneDeps;
  /** One packer run now, in this process (tests, operators). */
  packNow(): Promise<PackResult | undefined>;
  /** One poller run now, in this process. */
  pollNow(): Promise<PollReport | undefined>;
  close(): Promise<void>;
}

/** Runs `fn` alone in this process; a call while it runs makes it run once more afterwards. */
function exclusive<T>(fn: () => Promise<T>): () => Promise<T | undefined> {
  let running: Promise<T | undefined> | undefined;
  let again = false;
  const loop = async (): Promise<T | undefined> => {
    let last: T | undefined;
    do {
      again = false;
      last = await fn();
    } while (again);
    return last;
  };
  return () => {
    if (running) {
      again = true;
      return running;
    }
    running = loop().finally(() => {
      running = undefined;
    });
    return running;
  };
}

export async function startBatchLane(opts: BatchLaneOptions): Promise<BatchLaneHandle> {
  const { env, log } = opts;
  const prefix = env.SIEVE_QUEUE_PREFIX;
  const deps: LaneDeps = {
    env,
    db: opts.db,
    log,
    prices: opts.prices,
    apis: opts.apis ?? createBatchApis(opts.endpoints),
    owner: `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`,
    backoffUntil: new Map(),
    capacityHint: new Map(),
    ...(opts.onJobsFinished ? { onJobsFinished: opts.onJobsFinished } : {}),
    ...(opts.onAnswered ? { onAnswered: opts.onAnswered } : {}),
  };
  const queue = new Queue(BATCH_LANE_QUEUE, { connection: opts.connection, prefix });
  opts.monitor.watch(queue, "batch lane queue");
  const pack = exclusive(() => packOnce(deps));
  const poll = exclusive(async () => {
    const r = await pollOnce(deps);
    // Items put back by a settled batch go out in the next batch without waiting for the tick.
    if (r.requeued > 0 || r.settled > 0) {
      await queue.add("pack", { kind: "pack" }, { deduplication: { id: PACK_KICK_ID, ttl: 1_000 }, removeOnComplete: true, removeOnFail: true }).catch(() => {});
    }
    return r;
  });
  const keep = { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } };
  await opts.schedules.add(queue, "batch-pack", { every: env.SIEVE_BATCH_PACK_EVERY_MS }, { name: "pack", data: { kind: "pack" }, opts: keep });
  await opts.schedules.add(queue, "batch-poll", { every: env.SIEVE_BATCH_POLL_EVERY_MS }, { name: "poll", data: { kind: "poll" }, opts: keep });
  const worker = new Worker(
    BATCH_LANE_QUEUE,
    async (job) => {
      const parsed = BatchLaneJob.safeParse(job.data);
      if (!parsed.success) return { skipped: "unknown payload" };
      return parsed.data.kind === "pack" ? pack() : poll();
    },
    // pack and poll may run side by side (a long upload must not delay settling); each is exclusive in-process.
    { connection: opts.connection, prefix, concurrency: 2, lockDuration: 60_000 },
  );
  opts.monitor.watch(worker, "batch lane worker");
  worker.on("failed", (job, e) => {
    if (!opts.monitor.report(e, "batch lane")) log.warn({ job: job?.name, err: safeErrorMessage(e) }, "batch lane run failed; the next tick retries");
  });
  log.info({ providers: [...deps.apis.keys()], packEveryMs: env.SIEVE_BATCH_PACK_EVERY_MS, pollEveryMs: env.SIEVE_BATCH_POLL_EVERY_MS }, "batch lane started");
  return {
    deps,
    packNow: pack,
    pollNow: poll,
    async close() {
      await worker.close().catch(() => {});
      await queue.close().catch(() => {});
    },
  };
}
