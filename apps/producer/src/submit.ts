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
  type CacheOptions,
  type Parcel,
  type ProviderName,
  type Route,
  type TaskParams,
} from "@sieve/shared";
import { createJob, deleteJob, markEnqueued, setCachedCount, type CreatedItem } from "@sieve/shared/db/ops/jobs";
import type { ApiContext } from "./context.js";

export interface SubmitInput {
  tenantId: string;
  params: TaskParams;
  items: Array<{ id: string; text: string }>;
  provider?: ProviderName | undefined;
  model?: string | undefined;
  lane: "realtime" | "batch";
  cache?: CacheOptions | undefined;
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
  afterCreate?(jobId: string, items: CreatedItem[], cacheKeys: Map<number, string>, ctx: DedupContext): Promise<DedupPlan>;
  /** Called with the items answered at submit time (their results are written): e.g. to audit semantic hits. */
  afterAnswered?(answered: Array<{ itemId: number; text: string; answer: DedupAnswer }>, ctx: DedupContext): Promise<void>;
}

export interface DedupPlan {
  hold: Set<number>;
  lead: Set<number>;
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
  const route = resolveRoute(ctx, input.params, input.provider, input.model);
  const queue = ctx.queues.get(route.provider);
  if (!queue) throw new HttpError(503, "unavailable", `no queue for provider ${route.provider}`);
  const key = batchKey({ tenantId: input.tenantId, params: input.params, provider: route.provider, model: route.model, lane: input.lane, mixTenants: ctx.env.SIEVE_MIX_TENANTS });
  const dctx: DedupContext = { tenantId: input.tenantId, params: input.params, route, cache: input.cache };
  const dedup = ctx.dedup && input.cache?.mode !== "bypass" ? await ctx.dedup.lookup(input.items, dctx) : undefined;

  const jobId = `job_${randomUUID().replaceAll("-", "")}`;
  const created = await createJob(ctx.db, {
    id: jobId,
    tenantId: input.tenantId,
    task: input.params.task,
    params: input.params,
    lane: input.lane,
    provider: route.provider,
    model: route.model,
    promptVersion: promptVersionOf(input.params),
    batchKey: key,
    cacheOptions: input.cache ?? null,
    items: input.items.map((it, i) => ({ externalId: it.id, text: it.text, cacheKey: dedup?.cacheKeys[i] ?? null })),
  });
  metrics.itemsSubmitted.inc({ task: input.params.task, lane: input.lane }, created.length);

  // Items answered by a cache get their result now, in the same way a worker would write it.
  const answers = dedup?.answers ?? new Map();
  if (answers.size > 0) {
    const rows = [...answers.entries()].map(([idx, a]) => ({
      itemId: created[idx]!.id,
      jobId,
      tenantId: input.tenantId,
      status: "ok" as const,
      output: a.output,
      cache: a.cache,
      cacheSource: a.source ?? null,
      provider: route.provider,
      model: route.model,
      savedUsd: a.savedUsd ?? 0,
    }));
    await recordOutcome(ctx.db, null, rows);
    for (const a of answers.values()) metrics.itemsFinished.inc({ status: "ok", cache: a.cache });
    await ctx.dedup?.afterAnswered?.(
      [...answers.entries()].map(([idx, a]) => ({ itemId: created[idx]!.id, text: created[idx]!.text, answer: a })),
      dctx,
    );
  }
  let misses = created.filter((_, i) => !answers.has(i));
  const keyOf = new Map<number, string>();
  created.forEach((c, i) => {
    const k = dedup?.cacheKeys[i];
    if (k) keyOf.set(c.id, k);
  });
  // No in-flight coalescing in the batch lane: a leader in a provider batch can take hours.
  const plan = dedup && ctx.dedup?.afterCreate && input.lane === "realtime" ? await ctx.dedup.afterCreate(jobId, misses, keyOf, dctx) : undefined;
  if (plan) misses = misses.filter((m) => !plan.hold.has(m.id));
  const cachedCount = answers.size + (plan?.answered ?? 0);
  if (cachedCount > 0) await setCachedCount(ctx.db, jobId, cachedCount);

  if (input.lane === "batch") {
    // Batch-lane items wait in Postgres (not one Redis job each): the batch packer picks them up.
    await markEnqueued(ctx.db, jobId, 0);
    await ctx.batchLane!.notify(jobId, misses.length, misses.map((m) => m.id));
    return { jobId, itemCount: created.length, cached: cachedCount, parcels: 0 };
  }
  const parcels = buildParcels(
    { jobId, tenantId: input.tenantId, batchKey: key, route, params: input.params },
    misses,
    batchPolicy(ctx.env, input.params.task).maxItems,
    plan,
    keyOf,
  );
  try {
    if (parcels.length > 0) {
      await queue.addBulk(parcels.map((p, i) => ({ name: "parcel", data: p, opts: parcelOpts(ctx, parcelJobId(jobId, i)) })));
    }
    await markEnqueued(ctx.db, jobId, parcels.length);
  } catch (e) {
    await deleteJob(ctx.db, jobId).catch(() => {});
    throw new HttpError(503, "queue_unavailable", "the queue (Redis) is not reachable; nothing was accepted, retry later", { cause: String(e) });
  }
  return { jobId, itemCount: created.length, cached: cachedCount, parcels: parcels.length };
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
