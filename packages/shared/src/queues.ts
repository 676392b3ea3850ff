/**
 * The job catalog: the single source of truth for queue names, payload schemas and retry policy.
 * Payloads are safeParse'd on dequeue; a payload that does not parse is a poison message and fails
 * without retry.
 */
import { z } from "zod";
import { TaskParams } from "./tasks/params.js";
import type { ProviderName } from "./errors.js";

export const PROVIDERS: readonly ProviderName[] = ["openai", "anthropic", "vllm"];

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
  provider: z.enum(["openai", "anthropic", "vllm"]),
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
  /** Cache writes for this parcel's answers (absent: none). */
  cache: z.object({ ttlSeconds: z.number().int().positive(), namespace: z.string() }).optional(),
  /** Enqueue time (ms since epoch), for latency metrics. */
  enqueuedAt: z.number(),
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
