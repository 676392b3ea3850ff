/**
 * Accepting a submission: validate -> route -> dedup (caches) -> persist -> enqueue parcels.
 * Postgres is written first (the source of truth); if the enqueue then fails the job is deleted
 * and the caller gets a 503, and if this process dies between the two, the sweeper enqueues it.
 */
import { randomUUID } from "node:crypto";
import {
  HttpError,
  batchKey,
  batchPolicy,
  countTokens,
  defaultRoute,
  metrics,
  parcelJobId,
  promptVersionOf,
  recordOutcome,
  resolveDeadline,
  DeadlineError,
  type CacheOptions,
  type Parcel,
  type ProviderName,
  type Route,
  type TaskParams,
} from "@sieve/shared";
import { createJob, deleteJob, markEnqueued, setCachedCount, setItemLanes, type CreatedItem } from "@sieve/shared/db/ops/jobs";
import type { IdempotencyClaim } from "@sieve/shared/db/ops/idempotency";
import type { ApiContext } from "./context.js";
import { cloudRoute, routeAuto, type RoutedSegment } from "./router.js";
import { autoRoutes, cacheReason, lookupAcrossRoutes, routeKey, type AutoLookup } from "./autoDedup.js";

export interface SubmitInput {
  tenantId: string;
  params: TaskParams;
  items: Array<{ id: string; text: string }>;
  provider?: ProviderName | undefined;
  model?: string | undefined;
  /** "auto": the lane router picks per item (needs `deadline`; docs/gpu-lane.md). */
  lane: "realtime" | "batch" | "auto";
  /** ISO 8601 duration (PT10S, P1D) or timestamp: when the caller needs the answers. */
  deadline?: string | undefined;
  cache?: CacheOptions | undefined;
  /** The request's Idempotency-Key: claimed in the transaction that creates the job. */
  idempotency?: IdempotencyClaim | undefined;
}

export interface DedupContext {
  tenantId: string;
  params: TaskParams;
  route: Route;
  cache: CacheOptions | undefined;
}

export interface DedupAnswer {
  output: unknown;
  cache: "exact" | "semantic" | "coalesced" | "learned";
  source?: unknown;
  /** Estimated cost of the LLM call this answer avoided. */
  savedUsd?: number;
}

/** Answers items before they are enqueued (cache issue). Returns answers by item index. */
export interface SubmitDedup {
  /** Cache keys per item (stored on the items), and answers for the items it can answer now. */
  lookup(items: Array<{ id: string; text: string }>, ctx: DedupContext): Promise<{ cacheKeys: Array<string | null>; answers: Map<number, DedupAnswer> }>;
  /**
   * Called once the job's items are persisted, with the items that still need the LLM. Returns
   * the items NOT to enqueue (followers of an identical in-flight item, late cache hits it has
   * answered itself) and per-item cache instructions for the ones that are enqueued.
   */
  afterCreate?(jobId: string, items: CreatedItem[], cacheKeys: Map<number, string>, ctx: DedupContext, opts?: { followOnly?: boolean }): Promise<DedupPlan>;
  /** Called with the items answered at submit time (their results are written): e.g. to audit semantic hits. */
  afterAnswered?(answered: Array<{ itemId: number; text: string; answer: DedupAnswer }>, ctx: DedupContext): Promise<void>;
}

export interface DedupPlan {
  hold: Set<number>;
  lead: Set<number>;
  /** The held items that were late cache hits (answered in afterCreate), the rest of `hold` follow a leader. */
  late?: Set<number>;
  /** Cache writes for enqueued items' answers (absent in bypass mode). */
  write?: { ttlSeconds: number; namespace: string; semantic?: boolean; learned?: boolean };
  /** Items answered during afterCreate (late hits). */
  answered: number;
}

export interface SubmitResult {
  jobId: string;
  itemCount: number;
  cached: number;
  parcels: number;
}

export function resolveRoute(ctx: ApiContext, params: TaskParams, provider?: ProviderName, model?: string): Route {
  if (provider) {
    const ep = ctx.endpoints.get(provider);
    if (!ep) {
      throw new HttpError(400, "invalid_request", `provider: "${provider}" is not configured on this server (configured: ${[...ctx.endpoints.keys()].join(", ")})`, [{ field: "provider", message: "not configured" }]);
    }
    return { provider, model: model ?? ep.defaultModel };
  }
  const route = defaultRoute(ctx.env, ctx.endpoints, params.task);
  return model ? { provider: route.provider, model } : route;
}

export async function submitJob(ctx: ApiContext, input: SubmitInput): Promise<SubmitResult> {
  if (input.lane === "batch" && !ctx.batchLane) {
    throw new HttpError(400, "invalid_request", 'lane: the batch lane is not enabled on this server; use "realtime"', [{ field: "lane", message: "not enabled" }]);
  }
  const now = Date.now();
  const deadlineAt = input.deadline === undefined ? undefined : deadlineOf(input.deadline, now);
  const auto = input.lane === "auto";
  // lane auto: caches are looked up with the task's cloud route (the realtime lane's).
  const route = auto ? autoPrimaryRoute(ctx, input.params) : resolveRoute(ctx, input.params, input.provider, input.model);
  const queue = ctx.queues.get(route.provider);
  if (!queue) throw new HttpError(503, "unavailable", `no queue for provider ${route.provider}`);
  const laneOfKey = input.lane === "batch" ? "batch" : "realtime";
  let key = batchKey({ tenantId: input.tenantId, params: input.params, provider: route.provider, model: route.model, lane: laneOfKey, mixTenants: ctx.env.SIEVE_MIX_TENANTS });
  const dctx: DedupContext = { tenantId: input.tenantId, params: input.params, route, cache: input.cache };
  const useDedup = !!ctx.dedup && input.cache?.mode !== "bypass";
  // lane auto: an answer from any route the router may pick serves the item (autoDedup.ts).
  const autoRouteList = auto && useDedup ? autoRoutes(ctx, input.params) : [];
  const found = auto ? (useDedup ? await lookupAcrossRoutes(ctx.dedup!, input.items, autoRouteList, dctx) : undefined) : undefined;
  const dedup = !auto && useDedup ? await ctx.dedup!.lookup(input.items, dctx) : undefined;
  const answers: ReadonlyMap<number, DedupAnswer & { route?: Route }> = found?.answers ?? dedup?.answers ?? new Map<number, DedupAnswer>();

  // The lane router: one segment of consecutive misses per lane (before anything is stored, so
  // an unmeetable deadline is refused with nothing written).
  const missTexts = input.items.filter((_, i) => !answers.has(i)).map((it) => it.text);
  const segments = auto ? (missTexts.length > 0 ? await routeAuto(ctx, input.params, missTexts, deadlineAt! - now) : []) : undefined;
  const lanes = itemLanes(input.items.length, answers, segments, { lane: input.lane, route });
  // The job's own route: the batch segment's when there is one (the batch packer reads it).
  const batchSeg = segments?.find((sg) => sg.lane === "batch");
  const jobRoute = batchSeg?.route ?? segments?.[0]?.route ?? route;
  if (auto) key = batchKey({ tenantId: input.tenantId, params: input.params, provider: jobRoute.provider, model: jobRoute.model, lane: batchSeg ? "batch" : "realtime", mixTenants: ctx.env.SIEVE_MIX_TENANTS });
  // Each item's exact-cache key: under the route that answered it, or (lane auto) the one it takes.
  const cacheKeys = found ? autoCacheKeys(input.items.length, found, answers, segments ?? []) : (dedup?.cacheKeys ?? []);

  const jobId = `job_${randomUUID().replaceAll("-", "")}`;
  const created = await createJob(ctx.db, {
    id: jobId,
    tenantId: input.tenantId,
    task: input.params.task,
    params: input.params,
    lane: input.lane,
    provider: jobRoute.provider,
    model: jobRoute.model,
    promptVersion: promptVersionOf(input.params),
    batchKey: key,
    cacheOptions: input.cache ?? null,
    ...(deadlineAt !== undefined ? { deadlineAt: new Date(deadlineAt) } : {}),
    items: input.items.map((it, i) => ({ externalId: it.id, text: it.text, cacheKey: cacheKeys[i] ?? null, ...lanes[i]! })),
    idempotency: input.idempotency,
  });
  metrics.itemsSubmitted.inc({ task: input.params.task, lane: input.lane }, created.length);

  // Items answered by a cache get their result now, in the same way a worker would write it.
  if (answers.size > 0) {
    const rows = [...answers.entries()].map(([idx, a]) => ({
      itemId: created[idx]!.id,
      jobId,
      tenantId: input.tenantId,
      status: "ok" as const,
      output: a.output,
      cache: a.cache,
      cacheSource: a.source ?? null,
      provider: (a.route ?? route).provider,
      model: (a.route ?? route).model,
      savedUsd: a.savedUsd ?? 0,
    }));
    await recordOutcome(ctx.db, null, rows);
    for (const a of answers.values()) metrics.itemsFinished.inc({ status: "ok", cache: a.cache });
    // Per answering route (lane auto: the caches of several routes may answer; audits are scoped by it).
    const byRoute = new Map<string, { route: Route; answered: Array<{ itemId: number; text: string; answer: DedupAnswer }> }>();
    for (const [idx, a] of answers) {
      const r = a.route ?? route;
      const g = byRoute.get(routeKey(r)) ?? { route: r, answered: [] };
      g.answered.push({ itemId: created[idx]!.id, text: created[idx]!.text, answer: a });
      byRoute.set(routeKey(r), g);
    }
    for (const g of byRoute.values()) await ctx.dedup?.afterAnswered?.(g.answered, { ...dctx, route: g.route });
  }
  let misses = created.filter((_, i) => !answers.has(i));
  const keyOf = new Map<number, string>();
  created.forEach((c, i) => {
    const k = cacheKeys[i];
    if (k) keyOf.set(c.id, k);
  });
  // In-flight coalescing: realtime-lane items, and every lane-auto item on its own route. Batch
  // items never lead (a leader in a provider batch can take hours); lane-auto batch items may
  // follow an identical item already in flight. Lane "batch" does neither (docs/batch-lane.md).
  const plan = useDedup && ctx.dedup?.afterCreate && input.lane === "realtime" ? await ctx.dedup.afterCreate(jobId, misses, keyOf, dctx) : undefined;
  if (plan) misses = misses.filter((m) => !plan.hold.has(m.id));
  const segPlans = auto && useDedup && ctx.dedup?.afterCreate ? await coalesceSegments(ctx, jobId, misses, keyOf, segments!, dctx) : undefined;
  const cachedCount = answers.size + (plan?.answered ?? 0) + (segPlans?.reduce((n, p) => n + p.answered, 0) ?? 0);
  if (cachedCount > 0) await setCachedCount(ctx.db, jobId, cachedCount);

  if (input.lane === "batch") {
    // Batch-lane items wait in Postgres (not one Redis job each): the batch packer picks them up.
    await markEnqueued(ctx.db, jobId, 0);
    await ctx.batchLane!.notify(jobId, misses.length, misses.map((m) => m.id));
    return { jobId, itemCount: created.length, cached: cachedCount, parcels: 0 };
  }
  const groups: Array<{ route: Route; key: string; tier?: "flex"; items: typeof misses; plan: DedupPlan | undefined }> = [];
  const batchItems: number[] = [];
  if (segments) {
    let at = 0;
    for (const [si, seg] of segments.entries()) {
      const segPlan = segPlans?.[si];
      const part = misses.slice(at, at + seg.count).filter((m) => !segPlan?.hold.has(m.id));
      at += seg.count;
      metrics.routedItems.inc({ lane: seg.lane }, part.length);
      if (seg.lane === "batch") batchItems.push(...part.map((m) => m.id));
      else {
        const segKey = batchKey({ tenantId: input.tenantId, params: input.params, provider: seg.route.provider, model: seg.route.model, lane: seg.tier ?? "realtime", mixTenants: ctx.env.SIEVE_MIX_TENANTS });
        groups.push({ route: seg.route, key: segKey, ...(seg.tier ? { tier: seg.tier } : {}), items: part, plan: segPlan });
      }
    }
  } else groups.push({ route, key, items: misses, plan });
  const maxItems = batchPolicy(ctx.env, input.params.task).maxItems;
  const parcels = groups.flatMap((g) =>
    buildParcels({ jobId, tenantId: input.tenantId, batchKey: g.key, route: g.route, params: input.params }, g.items, maxItems, g.plan, keyOf).map((p) => ({
      ...p,
      ...(g.tier ? { tier: g.tier } : {}),
      ...(deadlineAt !== undefined ? { deadlineAt } : {}),
    })),
  );
  try {
    // One addBulk per queue; parcel ids are numbered across queues (the sweeper looks in each).
    let index = 0;
    const byQueue = new Map<ProviderName, Array<{ name: string; data: Parcel; opts: ReturnType<typeof parcelOpts> }>>();
    for (const p of parcels) {
      const list = byQueue.get(p.provider) ?? [];
      list.push({ name: "parcel", data: p, opts: parcelOpts(ctx, parcelJobId(jobId, index++)) });
      byQueue.set(p.provider, list);
    }
    for (const [provider, list] of byQueue) {
      const q = ctx.queues.get(provider);
      if (!q) throw new Error(`no queue for provider ${provider}`);
      await q.addBulk(list);
    }
    await markEnqueued(ctx.db, jobId, parcels.length);
  } catch (e) {
    await deleteJob(ctx.db, jobId).catch(() => {});
    ctx.monitor.report(e, "submit enqueue");
    throw new HttpError(503, "unavailable", "the queue (Redis) is unavailable; nothing was accepted, retry later");
  }
  if (batchItems.length > 0) await ctx.batchLane!.notify(jobId, batchItems.length, batchItems);
  return { jobId, itemCount: created.length, cached: cachedCount, parcels: parcels.length };
}

function deadlineOf(deadline: string, now: number): number {
  try {
    return resolveDeadline(deadline, now);
  } catch (e) {
    if (e instanceof DeadlineError) throw new HttpError(400, "invalid_request", `deadline: ${e.message}`, [{ field: "deadline", message: e.message }]);
    throw e;
  }
}

function autoPrimaryRoute(ctx: ApiContext, params: TaskParams): Route {
  const cloud = cloudRoute(ctx, params);
  if (cloud) return cloud;
  const local = ctx.endpoints.get("vllm");
  if (!local) throw new HttpError(503, "unavailable", "lane auto: no provider is configured");
  return { provider: "vllm", model: local.defaultModel };
}

/** Lane auto: each item's exact-cache key, under the route that answered it or the one it takes. */
function autoCacheKeys(n: number, found: AutoLookup, answers: ReadonlyMap<number, DedupAnswer & { route?: Route }>, segments: RoutedSegment[]): Array<string | null> {
  const routeOfMiss = segments.flatMap((sg) => Array.from({ length: sg.count }, () => sg.route));
  let next = 0;
  return Array.from({ length: n }, (_, i) => {
    const r = answers.get(i)?.route ?? routeOfMiss[next++];
    return r ? (found.keys.get(routeKey(r))?.[i] ?? null) : null;
  });
}

/**
 * Lane auto: in-flight coalescing per segment, on the segment's route (its cache keys). Batch
 * segments only follow. Held items become lane "cache" with the router's first-step reason.
 */
async function coalesceSegments(ctx: ApiContext, jobId: string, misses: CreatedItem[], keyOf: Map<number, string>, segments: RoutedSegment[], dctx: DedupContext): Promise<DedupPlan[]> {
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

/** Per item: its lane, why, and its route ("provider:model[:flex]"). */
function itemLanes(
  n: number,
  answers: ReadonlyMap<number, DedupAnswer & { route?: Route }>,
  segments: RoutedSegment[] | undefined,
  requested: { lane: string; route: Route },
): Array<{ lane: string; laneReason: string; route: string }> {
  const routeText = (r: Route, tier?: string) => `${r.provider}:${r.model}${tier ? `:${tier}` : ""}`;
  const out: Array<{ lane: string; laneReason: string; route: string }> = [];
  const queue = (segments ?? []).flatMap((sg) => Array.from({ length: sg.count }, () => sg));
  let next = 0;
  for (let i = 0; i < n; i++) {
    const a = answers.get(i);
    if (a) out.push({ lane: "cache", laneReason: cacheReason(a.cache), route: routeText(a.route ?? requested.route) });
    else if (segments) {
      const sg = queue[next++]!;
      out.push({ lane: sg.lane, laneReason: sg.reason, route: routeText(sg.route, sg.tier) });
    } else out.push({ lane: requested.lane, laneReason: "requested", route: routeText(requested.route) });
  }
  return out;
}

/**
 * Cuts a job's items into parcels of at most `maxItems`, carrying the cache instructions of the
 * dedup plan (cache key, in-flight leadership, cache writes) when there is one.
 */
export function buildParcels(
  head: { jobId: string; tenantId: string; batchKey: string; route: Route; params: TaskParams },
  items: ReadonlyArray<{ id: number; text: string }>,
  maxItems: number,
  plan: DedupPlan | undefined,
  keyOf: ReadonlyMap<number, string>,
): Parcel[] {
  const parcels: Parcel[] = [];
  for (let i = 0; i < items.length; i += maxItems) {
    parcels.push({
      jobId: head.jobId,
      tenantId: head.tenantId,
      batchKey: head.batchKey,
      provider: head.route.provider,
      model: head.route.model,
      params: head.params,
      items: items.slice(i, i + maxItems).map((it) => {
        const key = plan?.write ? keyOf.get(it.id) : undefined;
        return { itemId: it.id, text: it.text, tokens: countTokens(it.text), ...(key ? { cacheKey: key, lead: plan!.lead.has(it.id) } : {}) };
      }),
      ...(plan?.write ? { cache: plan.write } : {}),
      enqueuedAt: Date.now(),
    });
  }
  return parcels;
}

export function parcelOpts(ctx: ApiContext, jobId: string) {
  return {
    jobId,
    attempts: ctx.env.SIEVE_MAX_ATTEMPTS,
    backoff: { type: "exponential" as const, delay: ctx.env.SIEVE_RETRY_BASE_MS },
    removeOnComplete: { age: 3_600, count: 50_000 },
    removeOnFail: { age: 7 * 24 * 3_600 },
  };
}
