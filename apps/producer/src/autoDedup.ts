/**
 * The caches for `lane: "auto"` (docs/gpu-lane.md, "The lane router"), step 1 of the router:
 * "caches (free)". An exact-cache key is scoped by the model that answered (a realtime request for
 * one model never gets another model's answer). An auto request leaves the model to the router, so
 * an answer from any route the router may pick for it serves it: the lookup tries the key of each
 * such route. Misses are then keyed by the route the router picked for them, so their answers
 * fill the cache under the model that produced them, and identical items in flight on that route
 * are coalesced exactly as on the realtime lane.
 */
import type { Route, TaskParams } from "@sieve/shared";
import type { ApiContext } from "./context.js";
import { cloudRoute } from "./router.js";
import type { DedupAnswer, DedupContext, SubmitDedup } from "./submit.js";

export const routeKey = (r: Route): string => `${r.provider}:${r.model}`;

/** Every route the lane router can pick for this task, cloud first (the realtime lane's). */
export function autoRoutes(ctx: ApiContext, params: TaskParams): Route[] {
  const out: Route[] = [];
  const cloud = cloudRoute(ctx, params);
  if (cloud) out.push(cloud);
  if (ctx.endpoints.has("openai") && ctx.env.SIEVE_FLEX_MODEL !== "") out.push({ provider: "openai", model: ctx.env.SIEVE_FLEX_MODEL });
  const local = ctx.endpoints.get("vllm");
  if (local) out.push({ provider: "vllm", model: local.defaultModel });
  return out.filter((r, i) => out.findIndex((o) => routeKey(o) === routeKey(r)) === i);
}

export interface AutoLookup {
  /** Answers by item index, with the route whose cache entry answered. */
  answers: Map<number, DedupAnswer & { route: Route }>;
  /** Per route ("provider:model"), each item's exact-cache key under it (null where not computed). */
  keys: Map<string, Array<string | null>>;
}

/** Looks every item up under each route in turn (the items a route answered are not asked again). */
export async function lookupAcrossRoutes(dedup: SubmitDedup, items: ReadonlyArray<{ id: string; text: string }>, routes: Route[], base: DedupContext): Promise<AutoLookup> {
  const answers = new Map<number, DedupAnswer & { route: Route }>();
  const keys = new Map<string, Array<string | null>>();
  for (const route of routes) {
    const rest = items.map((it, i) => ({ it, i })).filter(({ i }) => !answers.has(i));
    const got = await dedup.lookup(rest.map((r) => r.it), { ...base, route });
    const perItem: Array<string | null> = items.map(() => null);
    rest.forEach((r, j) => (perItem[r.i] = got.cacheKeys[j] ?? null));
    keys.set(routeKey(route), perItem);
    for (const [j, a] of got.answers) answers.set(rest[j]!.i, { ...a, route });
  }
  return { answers, keys };
}

/** The laneReason of an item the caches answered: the router's first step. */
export function cacheReason(kind: DedupAnswer["cache"] | "late"): string {
  switch (kind) {
    case "coalesced":
      return "caches (free): coalesced with an identical item in flight; no LLM call of its own";
    case "late":
      return "caches (free): exact cache hit (answered while this request was stored); no LLM call";
    default:
      return `caches (free): ${kind} cache hit; no LLM call`;
  }
}
