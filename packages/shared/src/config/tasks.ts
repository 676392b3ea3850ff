/**
 * Per-task settings: every `SIEVE_*_CLASSIFY` / `SIEVE_*_TRANSLATE` pair of the environment read
 * in one place. Code asks `taskSettings(env, task)` instead of picking a variable with
 * `task === "classify" ? … : …`; adding a task means adding one entry here (docs/architecture.md).
 */
import type { Env } from "./env.js";
import type { TaskName } from "../tasks/params.js";

export interface BatchPolicy {
  /** Items in one call at most. */
  maxItems: number;
  /** Estimated item tokens in one call at most. */
  maxTokens: number;
  /** Longest the first item of a batch waits, in ms. */
  maxWaitMs: number;
}

export interface TaskSettings {
  /** Packing of realtime multi-item calls. */
  packing: BatchPolicy;
  /** Items in one request of a provider batch (Batch API lane) at most. */
  batchMaxItems: number;
  /** Requests of this task use the semantic cache unless they say otherwise. */
  semanticByDefault: boolean;
  /** Cosine similarity at or above which a semantic neighbour answers. */
  semanticThreshold: number;
  /** Semantic guards this task may skip (comma list of "negation", "numbers"). */
  semanticAllowMismatch: string;
  /** Configured route, "provider:model", if any; and the variable it came from (for messages). */
  route: string | undefined;
  routeVariable: string;
}

const SETTINGS: Record<TaskName, (env: Env) => Omit<TaskSettings, "semanticByDefault">> = {
  classify: (env) => ({
    packing: { maxItems: env.SIEVE_CLASSIFY_MAX_ITEMS, maxTokens: env.SIEVE_CLASSIFY_MAX_TOKENS, maxWaitMs: env.SIEVE_CLASSIFY_MAX_WAIT_MS },
    batchMaxItems: env.SIEVE_BATCH_CLASSIFY_MAX_ITEMS,
    semanticThreshold: env.SIEVE_SEMANTIC_THRESHOLD_CLASSIFY,
    semanticAllowMismatch: env.SIEVE_SEMANTIC_ALLOW_MISMATCH_CLASSIFY,
    route: env.SIEVE_ROUTE_CLASSIFY,
    routeVariable: "SIEVE_ROUTE_CLASSIFY",
  }),
  translate: (env) => ({
    packing: { maxItems: env.SIEVE_TRANSLATE_MAX_ITEMS, maxTokens: env.SIEVE_TRANSLATE_MAX_TOKENS, maxWaitMs: env.SIEVE_TRANSLATE_MAX_WAIT_MS },
    batchMaxItems: env.SIEVE_BATCH_TRANSLATE_MAX_ITEMS,
    semanticThreshold: env.SIEVE_SEMANTIC_THRESHOLD_TRANSLATE,
    semanticAllowMismatch: env.SIEVE_SEMANTIC_ALLOW_MISMATCH_TRANSLATE,
    route: env.SIEVE_ROUTE_TRANSLATE,
    routeVariable: "SIEVE_ROUTE_TRANSLATE",
  }),
};

export function taskSettings(env: Env, task: TaskName): TaskSettings {
  return { ...SETTINGS[task](env), semanticByDefault: semanticTaskSet(env).has(task) };
}

/** Tasks whose requests use the semantic cache unless they say otherwise. */
export function semanticTaskSet(env: Env): Set<string> {
  return new Set(env.SIEVE_SEMANTIC_TASKS.split(",").map((t) => t.trim()).filter(Boolean));
}

/** Packing of realtime calls of a task (shorthand for `taskSettings(env, task).packing`). */
export function batchPolicy(env: Env, task: TaskName): BatchPolicy {
  return SETTINGS[task](env).packing;
}
