/**
 * The job catalog: the single source of truth for queue names, payload schemas and retry policy.
 * Payloads are safeParse'd on dequeue; a payload that does not parse is a poison message and fails
 * without retry.
 */
import { z } from "zod";
import { TaskParams } from "./tasks/params.js";
import { PROVIDERS, type ProviderName } from "./providerNames.js";
import { CarriedCachePolicy } from "./dedup/policy.js";

/** One realtime queue per provider, so a 429 from one provider rate-limits only its own queue. */
export function realtimeQueueName(provider: ProviderName): string {
  return `realtime-${provider}`;
}
export const MAINTENANCE_QUEUE = "maintenance";

/**
 * A parcel: the items of ONE submission that share a batch key (at most maxItems of them).
 * Workers hold several parcels and pack their items into one LLM call.
 */
export const Parcel = z.object({
  jobId: z.string(),
  tenantId: z.string(),
  batchKey: z.string(),
  provider: z.enum(PROVIDERS),
  model: z.string(),
  params: TaskParams,
  items: z
    .array(
      z.object({
        itemId: z.number().int(),
        text: z.string(),
        tokens: z.number().int().nonnegative(),
        /** Exact-cache key; absent when caching is bypassed. */
        cacheKey: z.string().optional(),
        /** This item holds the in-flight claim for its key: followers wait for its answer. */
        lead: z.boolean().optional(),
      }),
    )
    .min(1),
  /**
   * The request's cache policy (dedup/policy.ts) when this parcel's answers are written to the
   * caches: the exact cache, and the semantic and learned caches when `semantic`/`learned` say so.
   * Absent: nothing is written (cache bypassed, or a repair parcel).
   */
  cache: CarriedCachePolicy.optional(),
  /** Enqueue time (ms since epoch), for latency metrics. */
  enqueuedAt: z.number(),
  /** OpenAI flex processing (lane router, docs/gpu-lane.md). The batch key includes it. */
  tier: z.literal("flex").optional(),
  /** The caller's deadline (ms since epoch), when the request gave one. */
  deadlineAt: z.number().optional(),
  /** Transient failures so far (time-bounded retries, docs/gpu-lane.md "Outages"). */
  outage: z.object({ firstFailedAt: z.number(), failures: z.number().int() }).optional(),
});
export type Parcel = z.infer<typeof Parcel>;

export const MaintenanceJob = z.discriminatedUnion("kind", [
  /** Re-enqueue jobs whose items never reached Redis (producer crashed between commit and enqueue). */
  z.object({ kind: z.literal("sweep-unenqueued") }),
]);
export type MaintenanceJob = z.infer<typeof MaintenanceJob>;

/** Deterministic parcel id: re-enqueueing the same parcel is a no-op while it exists. */
export function parcelJobId(jobId: string, chunk: number): string {
  return `${jobId}-p${chunk}`;
}

/** Redis pub/sub channel on which "job finished" events are published. */
export function jobEventsChannel(prefix: string): string {
  return `${prefix}:events:jobs`;
}

// --- Batch lane (docs/batch-lane.md) ---

/** The provider Batch API lane's housekeeping queue: packer and lifecycle poller (workers process). */
export const BATCH_LANE_QUEUE = "batch-lane";
/** Nightly bulk ingestion of SIEVE_BULK_INBOX (API process). */
export const BULK_INBOX_QUEUE = "bulk-inbox";

/**
 * Jobs of BATCH_LANE_QUEUE. Their payloads carry no items: items wait in Postgres (batch_items),
 * so Redis holds a handful of these however many items wait.
 */
export const BatchLaneJob = z.discriminatedUnion("kind", [
  /** Claim waiting items, pack them into provider batches, submit (also reconciles half-submitted batches). */
  z.object({ kind: z.literal("pack") }),
  /** Follow every open batch; settle the ended ones. */
  z.object({ kind: z.literal("poll") }),
]);
export type BatchLaneJob = z.infer<typeof BatchLaneJob>;

export const BulkInboxJob = z.object({ kind: z.literal("scan-inbox") });
export type BulkInboxJob = z.infer<typeof BulkInboxJob>;

/** Deduplication id of "pack" kicks: many submits in a burst cause one packer run. */
export const PACK_KICK_ID = "pack-kick";

/** Answered items on their way into the semantic cache (embedding happens off the hot path). */
export const CACHE_FILL_QUEUE = "cache-fill";
export const CacheScopeJson = z.object({
  tenantId: z.string(),
  namespace: z.string(),
  params: TaskParams,
  provider: z.enum(PROVIDERS),
  model: z.string(),
});
export const CacheFillJob = z.object({
  entries: z.array(z.object({ text: z.string(), output: z.unknown(), itemId: z.number().int(), ttlSeconds: z.number().int().positive(), scope: CacheScopeJson })).min(1),
});
export type CacheFillJob = z.infer<typeof CacheFillJob>;

/** Semantic hits re-asked to the LLM to measure the false-hit rate. */
export const CACHE_AUDIT_QUEUE = "cache-audit";
export const CacheAuditJob = z.object({
  scope: CacheScopeJson,
  hits: z
    .array(z.object({ itemId: z.number().int(), text: z.string(), cachedOutput: z.unknown(), sourceItemId: z.number().int().nullable(), score: z.number() }))
    .min(1),
});
export type CacheAuditJob = z.infer<typeof CacheAuditJob>;

/** Items answered in multi-item calls, asked again alone off the hot path (docs/quality.md). */
export const RECHECK_QUEUE = "quality-recheck";
export const RecheckJob = z.object({
  batchKey: z.string(),
  tenantId: z.string(),
  provider: z.enum(PROVIDERS),
  model: z.string(),
  params: TaskParams,
  /** Items in the packed call the answers came from. */
  itemsPerCall: z.number().int().min(2),
  items: z.array(z.object({ itemId: z.number().int(), jobId: z.string(), text: z.string(), packedOutput: z.unknown() })).min(1),
});
export type RecheckJob = z.infer<typeof RecheckJob>;

/** LLM labels on their way into the learned cache, and its answers sampled for audit (docs/quality.md). */
/**
 * BullMQ options of an audit job (semantic and learned audits, adjudications): a few retries for
 * a provider hiccup, then kept a day for an operator to see why it failed.
 */
export const AUDIT_JOB_OPTIONS = {
  attempts: 3,
  backoff: { type: "exponential", delay: 2_000 },
  removeOnComplete: { age: 3_600 },
  removeOnFail: { age: 86_400 },
} as const;

export const LEARNED_FILL_QUEUE = "learned-fill";
export const LearnedFillJob = z.object({
  scope: CacheScopeJson,
  /** packed: the label came from a call with several items (adjudication asks those alone). */
  entries: z.array(z.object({ itemId: z.number().int(), text: z.string(), label: z.string(), packed: z.boolean().optional() })).min(1),
});
export type LearnedFillJob = z.infer<typeof LearnedFillJob>;
export const LEARNED_AUDIT_QUEUE = "learned-audit";
export const LearnedAuditJob = z.object({
  scope: CacheScopeJson,
  answers: z.array(z.object({ itemId: z.number().int(), text: z.string(), label: z.string(), confidence: z.number(), threshold: z.number() })).default([]),
  /** Confident disagreements with a packed label, to be asked alone (LearnedCache.adjudicate). */
  adjudications: z.array(z.object({ itemId: z.number().int(), text: z.string(), label: z.string(), predicted: z.string(), confidence: z.number() })).default([]),
});
export type LearnedAuditJob = z.infer<typeof LearnedAuditJob>;
