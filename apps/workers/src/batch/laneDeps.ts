/** What every part of the batch lane (packer, submitter, poller, settler) is given. */
import { taskSettings, type Db, type Env, type Logger, type NewResult, type PriceTable, type TaskName } from "@sieve/shared";
import type { FinishedJob } from "@sieve/shared/db/ops/results";
import type { BatchApi, BatchProviderName } from "../providers/batch-types.js";

export interface LaneDeps {
  env: Env;
  db: Db;
  log: Logger;
  prices: PriceTable;
  apis: Map<BatchProviderName, BatchApi>;
  /** This process's lease owner id. */
  owner: string;
  /** Providers that answered "at capacity" (enqueued-token or open-batch limit): no new batch before this time (ms). */
  backoffUntil: Map<BatchProviderName, number>;
  /**
   * Learned from a provider refusing a batch at capacity while no other batch of ours was open
   * there: the batch alone was over its enqueued-token limit. New batches stay under this many
   * estimated tokens (halved on each such refusal), so a limit below one full batch never stalls the lane.
   */
  capacityHint: Map<BatchProviderName, number>;
  /** Jobs finished by a write (publish "job finished" events). */
  onJobsFinished?: (jobs: FinishedJob[]) => void;
  /** Valid answers just persisted (cache writes). */
  onAnswered?: (rows: NewResult[]) => Promise<void>;
}

/** Items per request for a task (the batch lane packs larger requests than the realtime lane). */
export function maxItemsPerRequest(env: Env, task: TaskName): number {
  return taskSettings(env, task).batchMaxItems;
}

/** Backoff after a provider said "at capacity": one packer interval (at least 1 s). */
export function capacityBackoffMs(env: Env): number {
  return Math.max(1_000, env.SIEVE_BATCH_PACK_EVERY_MS);
}
