/**
 * Accepting a request whose items are in hand (POST /v1/jobs): route -> caches -> (lane auto)
 * the lane router -> persist -> enqueue parcels, or queue the items for the batch lane.
 * Postgres is written first (the source of truth); if the enqueue then fails the job is deleted
 * and nothing is accepted (`Unavailable`), and if this process dies between the two, the sweeper
 * enqueues it.
 */
import { batchKeyFor, cutIntoParcels, metrics, promptVersionOf, type RequestOptions, type Route, type TaskParams } from "@sieve/shared";
import { resolveCachePolicy } from "@sieve/shared/dedup/policy";
import { createJob, deleteJob, markEnqueued, setCachedCount } from "@sieve/shared/db/ops/jobs";
import type { IdempotencyClaim } from "@sieve/shared/db/ops/idempotency";
import type { ApiContext } from "../context.js";
import { RejectedInput, Unavailable } from "../errors.js";
import { autoCacheKeys, autoPrimaryRoute, autoRoutes, cacheReason, coalesceSegments, lookupAcrossRoutes, routeKey } from "./autoLane.js";
import { recordCacheAnswers } from "./answers.js";
import type { DedupAnswer, DedupContext, DedupPlan } from "./dedupHook.js";
import { routeAuto, type RoutedSegment } from "./laneRouter.js";
import { addParcels, parcelItems } from "./parcels.js";
import { deadlineOf, newJobId, queueFor, resolveRoute } from "./resolve.js";

/** A request with its items (POST /v1/jobs, already validated against its schema). */
export interface ItemsSubmission {
  tenantId: string;
  params: TaskParams;
  /** provider, model, lane ("auto": the lane router picks per item and needs `deadline`; docs/gpu-lane.md), deadline, cache. */
  options: RequestOptions;
  items: Array<{ id: string; text: string }>;
  /** The request's Idempotency-Key: claimed in the transaction that creates the job. */
  idempotency?: IdempotencyClaim | undefined;
}

export interface AcceptedJob {
  jobId: string;
  itemCount: number;
  cached: number;
  parcels: number;
}

export async function acceptItems(ctx: ApiContext, input: ItemsSubmission): Promise<AcceptedJob> {
  const { tenantId, params, options } = input;
  if (options.lane === "batch" && !ctx.batchLane) {
    throw new RejectedInput('lane: the batch lane is not enabled on this server; use "realtime"', [{ field: "lane", message: "not enabled" }]);
  }
  const now = Date.now();
  const deadlineAt = options.deadline === undefined ? undefined : deadlineOf(options.deadline, now);
  const auto = options.lane === "auto";
  // lane auto: caches are looked up with the task's cloud route (the realtime lane's).
  const route = auto ? autoPrimaryRoute(ctx, params) : resolveRoute(ctx, params, options.provider, options.model);
  queueFor(ctx, route);
  const policy = resolveCachePolicy(ctx.env, params.task, options.cache);
  const dctx: DedupContext = { tenantId, params, route, policy };
  const useDedup = !!ctx.dedup && policy.mode !== "bypass";
  // lane auto: an answer from any route the router may pick serves the item (autoLane.ts).
  const found = auto && useDedup ? await lookupAcrossRoutes(ctx.dedup!, input.items, autoRoutes(ctx, params), dctx) : undefined;
  const dedup = !auto && useDedup ? await ctx.dedup!.lookup(input.items, dctx) : undefined;
  const answers: ReadonlyMap<number, DedupAnswer & { route?: Route }> = found?.answers ?? dedup?.answers ?? new Map<number, DedupAnswer>();

  // The lane router: one segment of consecutive misses per lane (before anything is stored, so
  // an unmeetable deadline is refused with nothing written).
  const missTexts = input.items.filter((_, i) => !answers.has(i)).map((it) => it.text);
  const segments = auto ? (missTexts.length > 0 ? await routeAuto(ctx, params, missTexts, deadlineAt! - now) : []) : undefined;
  const lanes = itemLanes(input.items.length, answers, segments, { lane: options.lane, route });
  // The job's own route: the batch segment's when there is one (the batch packer reads it).
  const batchSeg = segments?.find((sg) => sg.lane === "batch");
  const jobRoute = batchSeg?.route ?? segments?.[0]?.route ?? route;
  const key = batchKeyFor(ctx.env, { tenantId, params }, jobRoute, options.lane === "batch" || batchSeg ? "batch" : "realtime");
  // Each item's exact-cache key: under the route that answered it, or (lane auto) the one it takes.
  const cacheKeys = found ? autoCacheKeys(input.items.length, found, answers, segments ?? []) : (dedup?.cacheKeys ?? []);

  const jobId = newJobId();
  const created = await createJob(ctx.db, {
    id: jobId,
    tenantId,
    task: params.task,
    params,
    lane: options.lane,
    provider: jobRoute.provider,
    model: jobRoute.model,
    promptVersion: promptVersionOf(params),
    batchKey: key,
    cacheOptions: options.cache ?? null,
    ...(deadlineAt !== undefined ? { deadlineAt: new Date(deadlineAt) } : {}),
    items: input.items.map((it, i) => ({ externalId: it.id, text: it.text, cacheKey: cacheKeys[i] ?? null, ...lanes[i]! })),
    idempotency: input.idempotency,
  });
  metrics.itemsSubmitted.inc({ task: params.task, lane: options.lane }, created.length);

  if (answers.size > 0) {
    await recordCacheAnswers(ctx, { jobId, tenantId, route }, [...answers].map(([idx, answer]) => ({ itemId: created[idx]!.id, answer })));
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
  const plan = useDedup && ctx.dedup?.afterCreate && options.lane === "realtime" ? await ctx.dedup.afterCreate(jobId, misses, keyOf, dctx) : undefined;
  if (plan) misses = misses.filter((m) => !plan.hold.has(m.id));
  const segPlans = auto && useDedup && ctx.dedup?.afterCreate ? await coalesceSegments(ctx, jobId, misses, keyOf, segments!, dctx) : undefined;
  const cachedCount = answers.size + (plan?.answered ?? 0) + (segPlans?.reduce((n, p) => n + p.answered, 0) ?? 0);
  if (cachedCount > 0) await setCachedCount(ctx.db, jobId, cachedCount);

  if (options.lane === "batch") {
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
      else groups.push({ route: seg.route, key: batchKeyFor(ctx.env, { tenantId, params }, seg.route, seg.tier ?? "realtime"), ...(seg.tier ? { tier: seg.tier } : {}), items: part, plan: segPlan });
    }
  } else groups.push({ route, key, items: misses, plan });
  // Answers of coalesced items are written to the caches under the request's policy.
  const parcels = groups.flatMap((g) =>
    cutIntoParcels(ctx.env, { jobId, tenantId, batchKey: g.key, route: g.route, params, cache: g.plan ? policy : undefined, tier: g.tier, deadlineAt }, parcelItems(g.items, g.plan, keyOf)),
  );
  try {
    await addParcels(ctx, jobId, parcels);
    await markEnqueued(ctx.db, jobId, parcels.length);
  } catch (e) {
    await deleteJob(ctx.db, jobId).catch(() => {});
    ctx.monitor.report(e, "submit enqueue");
    throw new Unavailable("the queue (Redis) is unavailable; nothing was accepted, retry later");
  }
  if (batchItems.length > 0) await ctx.batchLane!.notify(jobId, batchItems.length, batchItems);
  return { jobId, itemCount: created.length, cached: cachedCount, parcels: parcels.length };
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
