/**
 * Accepting a `lane: "auto"` request (docs/gpu-lane.md, "The lane router"), around the router's
 * plan (laneRouter.ts): its primary route, step 1 "caches (free)", and coalescing per segment.
 *
 * An exact-cache key is scoped by the model that answered (a realtime request for one model never
 * gets another model's answer). An auto request leaves the model to the router, so an answer from
 * any route the router may pick for it serves it: the lookup tries the key of each such route.
 * Misses are then keyed by the route the router picked for them, so their answers fill the cache
 * under the model that produced them, and identical items in flight on that route are coalesced
 * exactly as on the realtime lane.
 */
import type { Route, TaskParams } from "@sieve/shared";
import { setItemLanes, type CreatedItem } from "@sieve/shared/db/ops/jobs";
import type { ApiContext } from "../context.js";
import { Unavailable } from "../errors.js";
import type { DedupAnswer, DedupContext, DedupPlan, SubmitDedup } from "./dedupHook.js";
import { cloudRoute, type RoutedSegment } from "./laneRouter.js";

export const routeKey = (r: Route): string => `${r.provider}:${r.model}`;

/** The route an auto request's caches are looked up with first: the task's cloud route (the realtime lane's). */
export function autoPrimaryRoute(ctx: ApiContext, params: TaskParams): Route {
  const cloud = cloudRoute(ctx, params);
  if (cloud) return cloud;
  const local = ctx.endpoints.get("vllm");
  if (!local) throw new Unavailable("lane auto: no provider is configured");
  return { provider: "vllm", model: local.defaultModel };
}

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

/** Each item's exact-cache key, under the route that answered it or the one it takes. */
export function autoCacheKeys(n: number, found: AutoLookup, answers: ReadonlyMap<number, DedupAnswer & { route?: Route }>, segments: RoutedSegment[]): Array<string | null> {
  const routeOfMiss = segments.flatMap((sg) => Array.from({ length: sg.count }, () => sg.route));
  let next = 0;
  return Array.from({ length: n }, (_, i) => {
    const r = answers.get(i)?.route ?? routeOfMiss[next++];
    return r ? (found.keys.get(routeKey(r))?.[i] ?? null) : null;
  });
}

/**
 * In-flight coalescing per segment, on the segment's route (its cache keys). Batch segments only
 * follow. Held items become lane "cache" with the router's first-step reason.
 */
export async function coalesceSegments(ctx: ApiContext, jobId: string, misses: CreatedItem[], keyOf: Map<number, string>, segments: RoutedSegment[], dctx: DedupContext): Promise<DedupPlan[]> {
  const plans: DedupPlan[] = [];
  let at = 0;
  for (const seg of segments) {
    const part = misses.slice(at, at + seg.count);
    at += seg.count;
    const p = await ctx.dedup!.afterCreate!(jobId, part, keyOf, { ...dctx, route: seg.route }, seg.lane === "batch" ? { followOnly: true } : {});
    plans.push(p);
    const late = [...(p.late ?? [])];
    const followers = [...p.hold].filter((id) => !p.late?.has(id));
    if (late.length > 0) await setItemLanes(ctx.db, late, "cache", cacheReason("late"));
    if (followers.length > 0) await setItemLanes(ctx.db, followers, "cache", cacheReason("coalesced"));
  }
  return plans;
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
