/**
 * The API process's context: what every route, the inbox and `acceptJob` are handed (built once
 * by server.ts), and the ports it names (the dedup hook, the batch lane). Types only: this module
 * imports no code of the API, so nothing that uses the context is imported back.
 */
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { Db, DependencyMonitor, Env, Logger, ProviderEndpoint, ProviderName } from "@sieve/shared";
import type { JobWaiter } from "./waiter.js";
import type { SubmitDedup } from "./accept/dedupHook.js";
import type { EngineSource } from "./admin/engines.js";

/** Everything a request handler needs, built once at start-up (server.ts). */
export interface ApiContext {
  env: Env;
  db: Db;
  /** Fail-fast connection for enqueueing. */
  redis: Redis;
  /** One realtime queue per configured provider. */
  queues: Map<ProviderName, Queue>;
  endpoints: Map<ProviderName, ProviderEndpoint>;
  waiter: JobWaiter;
  log: Logger;
  /** Up/down state of Redis and Postgres: outages are logged once, shown on /readyz and /metrics. */
  monitor: DependencyMonitor;
  /** When the API started (ms since the epoch): /readyz gives the sweeper this long to show up. */
  startedAt: number;
  /** Extra queues shown in Bull Board (maintenance, batch lane). */
  extraQueues?: Queue[];
  /** Optional pre-enqueue dedup (the caches): answers items without any LLM call. */
  dedup?: SubmitDedup;
  /** The provider Batch API lane, when enabled (accept/batchLane.ts): told about new batch-lane jobs. */
  batchLane?: BatchLaneApi;
  /** GPU engines shown by the console (docs/console.md); default: the configured vLLM server. */
  engines?: EngineSource;
}

/** The API side of the batch lane (accept/batchLane.ts). */
export interface BatchLaneApi {
  /**
   * A batch-lane job was stored. Queues its items without a result (only `itemIds` when given)
   * and kicks the packer. vLLM jobs are moved to the realtime lane (docs/batch-lane.md).
   */
  notify(jobId: string, itemCount: number, itemIds?: number[]): Promise<void>;
  /** Asks the packer to run now (deduplicated: a burst of submits causes one run). */
  kick(): Promise<void>;
  /** Asks the lifecycle poller to run now (after a cancel request). */
  kickPoll(): Promise<void>;
  close(): Promise<void>;
}
