/**
 * `lane: "auto"`: what the lane router (packages/shared/src/router/plan.ts) needs to know at
 * submit time, and its answer as routes. The GPU lane's throughput comes from the GPU workers
 * (Redis, router/laneStats.ts), its backlog from the vLLM queue. docs/gpu-lane.md.
 */
import {
  ROUTER_DEFAULTS,
  batchPolicy,
  costUsd,
  countTokens,
  defaultRoute,
  loadPriceTable,
  renderPrompt,
  planLanes,
  readGpuStats,
  type Lane,
  type ProviderName,
  type Route,
  type RouterConfig,
  type TaskParams,
} from "@sieve/shared";
import type { ApiContext } from "../context.js";
import { DeadlineUnmeetable } from "../errors.js";

export interface RoutedSegment {
  lane: Exclude<Lane, "cache">;
  reason: string;
  count: number;
  route: Route;
  tier?: "flex";
}

/** The task's cloud route for realtime and batch: its configured route, or the first cloud provider. */
export function cloudRoute(ctx: ApiContext, params: TaskParams): Route | undefined {
  const r = defaultRoute(ctx.env, ctx.endpoints, params.task);
  if (r.provider !== "vllm") return r;
  const cloud = [...ctx.endpoints.values()].find((e) => e.provider !== "vllm");
  return cloud ? { provider: cloud.provider, model: cloud.defaultModel } : undefined;
}

/** Items waiting for the GPU lane, estimated from its queue (parcels hold at most maxItems items each). */
async function localBacklog(ctx: ApiContext, params: TaskParams): Promise<number> {
  const q = ctx.queues.get("vllm");
  if (!q) return 0;
  const c = await q.getJobCounts("waiting", "active", "delayed", "prioritized");
  const parcels = (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0);
  return parcels * batchPolicy(ctx.env, params.task).maxItems;
}

/**
 * Estimated USD per item on each cloud lane from the price table: the item's tokens, its share of
 * the system prompt, and its answer (a label, or about twice the source for a translation). Flex
 * models reason first and reasoning tokens are billed as output
 * (https://platform.openai.com/docs/guides/reasoning): each flex call is charged
 * REASONING_TOKENS_PER_CALL more output, shared by its items. Undefined when a lane's model has no price.
 */
function costPerItem(ctx: ApiContext, params: TaskParams, texts: readonly string[], cloud: Route | undefined): RouterConfig["costPerItem"] {
  if (!cloud || texts.length === 0) return undefined;
  const prices = loadPriceTable(ctx.env.SIEVE_PRICES);
  const avg = texts.reduce((a, t) => a + countTokens(t), 0) / texts.length;
  const maxItems = batchPolicy(ctx.env, params.task).maxItems;
  const inputTokens = Math.round(avg + 12 + countTokens(renderPrompt(params, []).system) / maxItems);
  const outputTokens = params.task === "classify" ? 12 : Math.round(2 * avg + 12);
  const usage = { inputTokens, outputTokens };
  const rt = costUsd(prices, cloud.model, usage, "realtime");
  const batch = costUsd(prices, cloud.model, usage, "batch");
  const flex = costUsd(prices, ctx.env.SIEVE_FLEX_MODEL, { inputTokens, outputTokens: outputTokens + REASONING_TOKENS_PER_CALL / maxItems }, "flex");
  if (!rt.priced || !flex.priced) return undefined;
  return { realtime: rt.usd, flex: flex.usd, batch: batch.usd };
}

export async function routeAuto(ctx: ApiContext, params: TaskParams, texts: readonly string[], deadlineMs: number): Promise<RoutedSegment[]> {
  const n = texts.length;
  const env = ctx.env;
  const vllm = ctx.endpoints.get("vllm");
  const stats = vllm ? await readGpuStats(ctx.redis, env.SIEVE_QUEUE_PREFIX).catch(() => undefined) : undefined;
  const local = vllm && stats && stats.healthyEngines > 0 ? { itemsPerS: stats.itemsPerS > 0 ? stats.itemsPerS : stats.healthyEngines * COLD_ITEMS_PER_S, backlogItems: await localBacklog(ctx, params) } : undefined;
  const cloud = cloudRoute(ctx, params);
  const flex = ctx.endpoints.has("openai") && env.SIEVE_FLEX_MODEL !== "";
  const batch = !!ctx.batchLane && !!cloud;
  const cfg: RouterConfig = {
    ...ROUTER_DEFAULTS,
    local,
    flex,
    batch,
    realtime: !!cloud,
    realtimeMs: env.SIEVE_ROUTER_REALTIME_MS,
    flexMinMs: env.SIEVE_ROUTER_FLEX_MIN_MS,
    localFillMs: env.SIEVE_ROUTER_LOCAL_FILL_MS,
  };
  const prices = costPerItem(ctx, params, texts, cloud);
  if (prices) cfg.costPerItem = prices;
  const plan = planLanes(n, deadlineMs, cfg);
  if (!plan.ok) {
    throw new DeadlineUnmeetable(`deadline: ${plan.reason}`, [{ field: "deadline", message: "cannot be met by any lane" }]);
  }
  return plan.segments.map((seg) => {
    switch (seg.lane) {
      case "local":
        return { ...seg, route: { provider: "vllm" as ProviderName, model: vllm!.defaultModel } };
      case "flex":
        return { ...seg, route: { provider: "openai" as ProviderName, model: env.SIEVE_FLEX_MODEL }, tier: "flex" as const };
      case "realtime":
      case "batch":
        return { ...seg, route: cloud! };
    }
  });
}

/**
 * Reasoning tokens one flex call is assumed to spend at `reasoning_effort: "low"`: an estimate
 * (not measured here; watch the reasoning tokens in usage). @defaultValue 200
 */
const REASONING_TOKENS_PER_CALL = 200;

/**
 * Throughput assumed for a healthy engine that has not answered anything yet (a fresh start), items
 * per second: replaced by the measurement within seconds of the first calls. @defaultValue 10
 */
const COLD_ITEMS_PER_S = 10;

