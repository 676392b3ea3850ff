/**
 * The cache behaviour of one request: its `cache` options (README, "Caches") completed with the
 * server's defaults, resolved ONCE when the request is accepted and then carried with its work
 * (on the parcels of the realtime lane; for the batch lane, re-resolved from the job's stored
 * options by this same function). Nothing else interprets `cache.mode`, the TTL, the namespace or
 * the semantic and learned switches.
 */
import { z } from "zod";
import { CacheMode, type CacheOptions } from "../api/schemas.js";
import type { Env } from "../config/env.js";
import { taskSettings } from "../config/tasks.js";
import type { TaskName } from "../tasks/params.js";

export const CachePolicy = z.object({
  /** use: read, write and coalesce; refresh: write only (the new answer overwrites); bypass: none of it. */
  mode: CacheMode,
  /** Time to live of the entries this request writes, in seconds. */
  ttlSeconds: z.number().int().positive(),
  /** Cache space inside the tenant. */
  namespace: z.string(),
  /** Semantic lookups (mode "use") and fills for this request. */
  semantic: z.boolean(),
  /** Similarity at or above which a semantic neighbour answers an item. */
  semanticThreshold: z.number().min(0).max(1),
  /** The learned classification cache answers and learns from this request (docs/quality.md). */
  learned: z.boolean(),
});
export type CachePolicy = z.infer<typeof CachePolicy>;

/**
 * The policy as a parcel carries it. Parcels enqueued before the policy was carried whole hold
 * only `ttlSeconds`, `namespace` and optional `semantic`/`learned`: they still parse.
 */
export const CarriedCachePolicy = CachePolicy.extend({
  mode: CacheMode.default("use"),
  semantic: z.boolean().default(false),
  semanticThreshold: z.number().min(0).max(1).optional(),
  learned: z.boolean().default(false),
});

/** Where a request came from: a bulk body (POST /v1/bulk, an inbox file) has other defaults. */
export type CachePolicySource = "request" | "bulk";

/**
 * The policy of a request of `task` with these `cache` options.
 *
 * - With the caches off (SIEVE_CACHE_ENABLED=false) every request bypasses them.
 * - `semantic` defaults to the task's SIEVE_SEMANTIC_TASKS membership, and is off whatever the
 *   request says when SIEVE_SEMANTIC_CACHE=off.
 * - `learned` needs the request to opt in, a classify task and SIEVE_LEARNED_CACHE=true.
 * - A bulk body: semantic lookups embed every text on the CPU, so it uses them only when its header
 *   asks (`cache.semantic: true`); the learned cache serves realtime requests only.
 */
export function resolveCachePolicy(env: Env, task: TaskName, options: CacheOptions | null | undefined, source: CachePolicySource = "request"): CachePolicy {
  const on = env.SIEVE_CACHE_ENABLED;
  const settings = taskSettings(env, task);
  const semanticDefault = source === "bulk" ? false : settings.semanticByDefault;
  return {
    mode: on ? (options?.mode ?? "use") : "bypass",
    ttlSeconds: options?.ttlSeconds ?? env.SIEVE_CACHE_TTL_SECONDS,
    namespace: options?.namespace ?? "default",
    semantic: on && env.SIEVE_SEMANTIC_CACHE !== "off" && (options?.semantic ?? semanticDefault),
    semanticThreshold: settings.semanticThreshold,
    learned: on && env.SIEVE_LEARNED_CACHE && source === "request" && options?.learned === true && task === "classify",
  };
}
