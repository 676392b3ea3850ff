/**
 * The hook through which accepting a job asks the caches (implemented by dedup.ts): answers
 * before anything is enqueued, in-flight coalescing once the items are stored, and a call with
 * the items it answered. Types only, so the API context can name the hook without importing
 * the code that accepts jobs.
 */
import type { Route, TaskParams } from "@sieve/shared";
import type { CachePolicy } from "@sieve/shared/dedup/policy";
import type { CreatedItem } from "@sieve/shared/db/ops/jobs";
import type { CacheScopeInput } from "@sieve/shared/dedup/keys";

export interface DedupContext {
  tenantId: string;
  params: TaskParams;
  route: Route;
  /** The request's cache policy, resolved once when it was accepted (dedup/policy.ts). */
  policy: CachePolicy;
}

export interface DedupAnswer {
  output: unknown;
  cache: "exact" | "semantic" | "coalesced" | "learned";
  source?: unknown;
  /** Estimated cost of the LLM call this answer avoided. */
  savedUsd?: number;
}

/** Answers items before they are enqueued. Returns answers by item index. */
export interface SubmitDedup {
  /** Cache keys per item (stored on the items), and answers for the items it can answer now. */
  lookup(items: Array<{ id: string; text: string }>, ctx: DedupContext): Promise<{ cacheKeys: Array<string | null>; answers: Map<number, DedupAnswer> }>;
  /**
   * Called once the job's items are persisted, with the items that still need the LLM. Returns
   * the items NOT to enqueue (followers of an identical in-flight item, late cache hits it has
   * answered itself) and which of the enqueued items lead their key.
   */
  afterCreate?(jobId: string, items: CreatedItem[], cacheKeys: Map<number, string>, ctx: DedupContext, opts?: { followOnly?: boolean }): Promise<DedupPlan>;
  /** Called with the items answered at submit time (their results are written): e.g. to audit semantic hits. */
  afterAnswered?(answered: Array<{ itemId: number; text: string; answer: DedupAnswer }>, ctx: DedupContext): Promise<void>;
}

/** What coalescing decided for a job's stored items; their answers are written to the caches under the request's policy. */
export interface DedupPlan {
  hold: Set<number>;
  lead: Set<number>;
  /** The held items that were late cache hits (answered in afterCreate), the rest of `hold` follow a leader. */
  late?: Set<number>;
  /** Items answered during afterCreate (late hits). */
  answered: number;
}

/** Semantic lookups (implemented with @sieve/cache); absent when SIEVE_SEMANTIC_CACHE=off. */
export interface SemanticLookup {
  /** Answers for the texts it finds a close-enough neighbour for, by index. */
  lookup(texts: string[], scope: CacheScopeInput, threshold: number): Promise<Map<number, { output: unknown; score: number; sourceItemId: number | null; sourceText: string }>>;
  /** Queues audits of some semantic hits (the LLM answers them too; agreement is recorded). */
  audit?(hits: Array<{ itemId: number; text: string; cachedOutput: unknown; sourceItemId: number | null; score: number }>, ctx: DedupContext): Promise<void>;
}
