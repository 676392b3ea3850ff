/**
 * Building parcels (the schema is `Parcel` in queues.ts). Everything that puts a job's items on a
 * realtime queue builds them here: accepting a request or a bulk body, the batch lane's realtime
 * fallback, the sweeper's and the console's repair parcels. So parcels have one shape, one size
 * (the task's maxItems, applied in `parcelSize` only) and one set of BullMQ job options.
 */
import type { Env } from "./config/env.js";
import type { Route } from "./config/providers.js";
import { batchPolicy } from "./config/tasks.js";
import type { CachePolicy } from "./dedup/policy.js";
import { parcelJobId, type Parcel } from "./queues.js";
import type { TaskName, TaskParams } from "./tasks/params.js";
import { countTokens } from "./tokens.js";

/** What the parcels of one job (on one route) share. */
export interface ParcelHead {
  jobId: string;
  tenantId: string;
  batchKey: string;
  route: Route;
  params: TaskParams;
  /** The request's cache policy, when the answers are to be written to the caches. */
  cache?: CachePolicy | undefined;
  /** OpenAI flex processing (lane router, docs/gpu-lane.md). */
  tier?: "flex" | undefined;
  /** The caller's deadline, ms since the epoch. */
  deadlineAt?: number | undefined;
}

export interface ParcelItemInput {
  /** The item's row id. */
  id: number;
  text: string;
  /** Its exact-cache key, when its answer is written to the cache or releases followers. */
  cacheKey?: string | undefined;
  /** It holds the in-flight claim of its key: identical items wait for its answer. */
  lead?: boolean | undefined;
}

/** One parcel with these items (a repair parcel holds every item it repairs: the aggregator packs it maxItems at a time). */
export function buildParcel(head: ParcelHead, items: ReadonlyArray<ParcelItemInput>): Parcel {
  return {
    jobId: head.jobId,
    tenantId: head.tenantId,
    batchKey: head.batchKey,
    provider: head.route.provider,
    model: head.route.model,
    params: head.params,
    items: items.map((it) => ({ itemId: it.id, text: it.text, tokens: countTokens(it.text), ...(it.cacheKey ? { cacheKey: it.cacheKey, lead: it.lead === true } : {}) })),
    ...(head.cache ? { cache: head.cache } : {}),
    enqueuedAt: Date.now(),
    ...(head.tier ? { tier: head.tier } : {}),
    ...(head.deadlineAt !== undefined ? { deadlineAt: head.deadlineAt } : {}),
  };
}

/** Most items in one parcel: the task's maxItems, so a parcel is at most one call's worth. */
export function parcelSize(env: Env, task: TaskName): number {
  return batchPolicy(env, task).maxItems;
}

/** A job's items cut into parcels of at most `parcelSize` items. */
export function cutIntoParcels(env: Env, head: ParcelHead, items: ReadonlyArray<ParcelItemInput>): Parcel[] {
  const size = parcelSize(env, head.params.task);
  const parcels: Parcel[] = [];
  for (let i = 0; i < items.length; i += size) parcels.push(buildParcel(head, items.slice(i, i + size)));
  return parcels;
}

/** BullMQ options of a job's `index`-th parcel (its id is deterministic: enqueueing it twice is a no-op). */
export function parcelJobOptions(env: Env, jobId: string, index: number) {
  return {
    jobId: parcelJobId(jobId, index),
    attempts: env.SIEVE_MAX_ATTEMPTS,
    backoff: { type: "exponential" as const, delay: env.SIEVE_RETRY_BASE_MS },
    removeOnComplete: { age: 3_600, count: 50_000 },
    removeOnFail: { age: 7 * 24 * 3_600 },
  };
}

/** The BullMQ id of a job's repair parcel (the sweeper's, or the console's retry): at most one is live. */
export function repairParcelId(jobId: string): string {
  return `${jobId}-repair`;
}

/** BullMQ options of a job's repair parcel. */
export function repairParcelJobOptions(env: Env, jobId: string) {
  return {
    jobId: repairParcelId(jobId),
    attempts: env.SIEVE_MAX_ATTEMPTS,
    backoff: { type: "exponential" as const, delay: env.SIEVE_RETRY_BASE_MS },
    removeOnComplete: { age: 3_600 },
    removeOnFail: { age: 7 * 24 * 3_600 },
  };
}
