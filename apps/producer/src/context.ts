import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { Db, DependencyMonitor, Env, Logger, ProviderEndpoint, ProviderName } from "@sieve/shared";
import type { JobWaiter } from "./waiter.js";

/** Everything a request handler needs, built once at start-up. */
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
  /** Optional pre-enqueue dedup (cache issue): answers items without any LLM call. */
  dedup?: import("./submit.js").SubmitDedup;
  /** The provider Batch API lane, when enabled: told about new batch-lane jobs. */
  batchLane?: { notify(jobId: string, itemCount: number, itemIds?: number[]): Promise<void>; kickPoll?(): Promise<void> };
  /** GPU engines shown by the console (docs/console.md); default: the configured vLLM server. */
  engines?: import("./admin/engines.js").EngineSource;
}
