/**
 * The lane router (docs/gpu-lane.md, "The lane router"): for the items of a request with a
 * deadline, the cheapest lane that can meet it, in this order:
 *
 * 1. caches (free; decided before routing, at dedup),
 * 2. the local GPU lane, when its engines can finish the item in time at their current
 *    throughput behind their current backlog,
 * 3. the cheapest cloud lane that meets the deadline (`costPerItem`, from the price table), among:
 *    the provider Batch API when the deadline is at least a day (its completion window is 24 h:
 *    https://platform.openai.com/docs/guides/batch, 50% price); OpenAI flex processing for
 *    deadlines of at least `flexMinMs` (batch price, slower, may be refused with a 429;
 *    https://platform.openai.com/docs/guides/flex-processing); realtime (list price).
 *
 * Ties (or no prices) keep that order: the Batch API never refuses for capacity. Items whose deadline allows a half-price cloud lane take local capacity
 * only while the local backlog is short (`localFillMs`): the rest is kept for urgent items, whose
 * only alternative is the full price. A deadline shorter than the realtime lane's typical
 * answer time cannot be met by any lane: the request is refused up front (422).
 *
 * Pure: every input (local throughput, backlog, what is configured) is passed in.
 */

export const LANES = ["cache", "local", "flex", "realtime", "batch"] as const;
export type Lane = (typeof LANES)[number];

export interface LocalLaneState {
  /** Items per second the GPU lane is answering (or can, from its recent peak). */
  itemsPerS: number;
  /** Items already queued for the GPU lane. */
  backlogItems: number;
}

export interface RouterConfig {
  /** Local GPU lane state; undefined when there is none or its stats are stale. */
  local: LocalLaneState | undefined;
  /** A flex-capable OpenAI route is configured. */
  flex: boolean;
  /** The provider Batch API lane is enabled. */
  batch: boolean;
  /** A cloud route for realtime exists. @defaultValue true */
  realtime?: boolean;
  /** Typical time to an answer per lane, ms. */
  realtimeMs: number;
  flexMs: number;
  localCallMs: number;
  /** Shortest deadline sent to flex, ms. */
  flexMinMs: number;
  /** Shortest deadline sent to the Batch API, ms. @defaultValue 86400000 */
  batchMinMs: number;
  /** Longest local backlog the router fills with urgent items (no half-price alternative), ms of GPU work. */
  localHorizonMs: number;
  /**
   * Longest local backlog items that have a half-price alternative (flex, batch) may build, ms of
   * GPU work. Short on purpose: a short queue that never empties keeps the GPUs as busy as a long
   * one, and leaves room for urgent items, whose only alternative is the full price.
   */
  localFillMs: number;
  /** Share of the deadline a lane may plan to use (the rest is margin). @defaultValue 0.8 */
  safety: number;
  /**
   * Estimated USD per item on each cloud lane, from the price table. When given, the cheapest
   * cloud lane that meets the deadline wins (ties: batch, then flex, then realtime); when absent,
   * that order alone (batch and flex at half the list price).
   */
  costPerItem?: { realtime: number; flex: number; batch: number };
}

export const ROUTER_DEFAULTS: Omit<RouterConfig, "local" | "flex" | "batch"> = {
  realtimeMs: 5_000,
  flexMs: 120_000,
  localCallMs: 3_000,
  flexMinMs: 15 * 60_000,
  batchMinMs: 24 * 3_600_000,
  localHorizonMs: 120_000,
  localFillMs: 2_000,
  safety: 0.8,
};

export interface LaneSegment {
  lane: Exclude<Lane, "cache">;
  reason: string;
  /** Items, in request order, that take this lane. */
  count: number;
}

export type LanePlan = { ok: true; segments: LaneSegment[] } | { ok: false; reason: string };

const s = (ms: number) => (ms >= 3_600_000 ? `${+(ms / 3_600_000).toFixed(1)} h` : ms >= 60_000 ? `${+(ms / 60_000).toFixed(1)} min` : `${+(ms / 1000).toFixed(1)} s`);

/** The lanes of `n` items that must be answered within `deadlineMs` from now. */
export function planLanes(n: number, deadlineMs: number, cfg: RouterConfig): LanePlan {
  const budget = deadlineMs * cfg.safety;
  const cloud = cloudLane(deadlineMs, cfg);
  if (!cloud && !cfg.local) {
    return { ok: false, reason: `no lane answers within ${s(deadlineMs)}: realtime needs about ${s(cfg.realtimeMs / cfg.safety)}` };
  }
  const segments: LaneSegment[] = [];
  let local = 0;
  let localNote = "no local GPU lane";
  if (cfg.local && cfg.local.itemsPerS > 0) {
    const { itemsPerS, backlogItems } = cfg.local;
    // Urgent items (only the full price otherwise) may fill the horizon; others a short queue.
    const cheapAlternative = cloud !== undefined && cloud.lane !== "realtime";
    const horizon = Math.min(budget - cfg.localCallMs, cheapAlternative ? cfg.localFillMs : cfg.localHorizonMs);
    const room = Math.floor((horizon / 1000) * itemsPerS - backlogItems);
    local = Math.max(0, Math.min(n, room));
    const eta = cfg.localCallMs + ((backlogItems + Math.max(1, local)) / itemsPerS) * 1000;
    localNote = local > 0 ? "" : `local GPU lane busy (${backlogItems} queued at ${+itemsPerS.toFixed(1)} items/s)`;
    if (local > 0) {
      segments.push({ lane: "local", count: local, reason: `local GPU: done in ~${s(eta)} at ${+itemsPerS.toFixed(1)} items/s behind ${backlogItems} queued, within ${s(deadlineMs)}` });
    }
  } else if (cfg.local) {
    localNote = "local GPU lane has no healthy engine";
  }
  const rest = n - local;
  if (rest > 0) {
    if (!cloud) {
      return { ok: false, reason: `no lane answers ${rest} of ${n} items within ${s(deadlineMs)}: ${localNote}, and realtime needs about ${s(cfg.realtimeMs / cfg.safety)}` };
    }
    segments.push({ lane: cloud.lane, count: rest, reason: local > 0 ? `${cloud.reason} (local GPU lane full)` : `${cloud.reason}${localNote ? ` (${localNote})` : ""}` });
  }
  return { ok: true, segments };
}

function cloudLane(deadlineMs: number, cfg: RouterConfig): { lane: "batch" | "flex" | "realtime"; reason: string } | undefined {
  const c = cfg.costPerItem;
  const price = (lane: "batch" | "flex" | "realtime") => (c ? ` (~$${(c[lane] * 1000).toFixed(3)} per 1,000 items)` : "");
  const candidates: Array<{ lane: "batch" | "flex" | "realtime"; reason: string }> = [];
  if (cfg.batch && deadlineMs >= cfg.batchMinMs) candidates.push({ lane: "batch", reason: `deadline ${s(deadlineMs)} >= ${s(cfg.batchMinMs)}: provider Batch API at 50% price${price("batch")}` });
  if (cfg.flex && deadlineMs >= cfg.flexMinMs) candidates.push({ lane: "flex", reason: `deadline ${s(deadlineMs)} >= ${s(cfg.flexMinMs)}: OpenAI flex processing at batch price${price("flex")}` });
  if (cfg.realtime !== false && deadlineMs * cfg.safety >= cfg.realtimeMs) candidates.push({ lane: "realtime", reason: `deadline ${s(deadlineMs)}: realtime (list price)${price("realtime")}` });
  if (!c) return candidates[0];
  // Stable sort: equal prices keep the order above.
  return [...candidates].sort((a, b) => c[a.lane] - c[b.lane])[0];
}
