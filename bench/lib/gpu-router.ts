/**
 * (c) of bench/gpu.ts: the lane router (packages/shared/src/router/plan.ts, the real function)
 * on a mixed workload, in simulated time. A MODEL of the lanes, not an end-to-end run:
 * - requests of 50 items arrive evenly; 30% are due in 10 s, 40% in 1 h, 30% in a day;
 * - the local GPU lane answers `localShare` of the demand (a FIFO server; its backlog is what the
 *   router sees), each call adding `localCallMs`;
 * - realtime answers in 2-6 s; flex in 30-180 s and refuses 5% of calls with a 429, which then go
 *   realtime (at realtime price); the Batch API within its 24 h window;
 * - prices: the default price table (gpt-4.1-mini), flex and batch at 50%, the local GPU at 0
 *   (its cost is the machine, not per token), ~76 input and ~12 output tokens per item.
 */
import { createRng } from "@sieve/simulator";
import { DEFAULT_PRICES, planLanes, ROUTER_DEFAULTS, type Lane } from "@sieve/shared";

const CLASSES = [
  { name: "PT10S", ms: 10_000, share: 0.3 },
  { name: "PT1H", ms: 3_600_000, share: 0.4 },
  { name: "P1D", ms: 86_400_000, share: 0.3 },
] as const;

export function routerBench(opts: { items: number; localShare: number; seed: number }) {
  const rng = createRng(opts.seed);
  const demandPerS = 100;
  const localPerS = demandPerS * opts.localShare;
  const perRequest = 50;
  const price = DEFAULT_PRICES["gpt-4.1-mini"]!;
  const realtimeItemUsd = (76 * price.input + 12 * price.output) / 1e6;
  const laneUsd: Record<Exclude<Lane, "cache">, number> = { local: 0, flex: realtimeItemUsd / 2, batch: realtimeItemUsd / 2, realtime: realtimeItemUsd };
  let localFreeAt = 0;
  let cost = 0;
  let misses = 0;
  const byClass: Record<string, Record<string, number>> = {};
  const requests = Math.ceil(opts.items / perRequest);
  for (let r = 0; r < requests; r++) {
    const t = (r * perRequest * 1000) / demandPerS;
    const u = rng();
    const cls = u < 0.3 ? CLASSES[0] : u < 0.7 ? CLASSES[1] : CLASSES[2];
    const backlogItems = Math.max(0, Math.round(((localFreeAt - t) / 1000) * localPerS));
    const plan = planLanes(perRequest, cls.ms, { ...ROUTER_DEFAULTS, local: { itemsPerS: localPerS, backlogItems }, flex: true, batch: true });
    if (!plan.ok) {
      misses += perRequest;
      continue;
    }
    const tally = (byClass[cls.name] ??= {});
    for (const seg of plan.segments) {
      tally[seg.lane] = (tally[seg.lane] ?? 0) + seg.count;
      for (let k = 0; k < seg.count; k++) {
        let lane = seg.lane;
        let done: number;
        if (lane === "local") {
          localFreeAt = Math.max(t, localFreeAt) + 1000 / localPerS;
          done = localFreeAt + ROUTER_DEFAULTS.localCallMs;
        } else if (lane === "flex" && rng() < 0.05) {
          lane = "realtime"; // 429 resource unavailable: fall back
          tally.flexFallback = (tally.flexFallback ?? 0) + 1;
          done = t + 2_000 + 4_000 * rng();
        } else if (lane === "flex") done = t + 30_000 + 150_000 * rng();
        else if (lane === "realtime") done = t + 2_000 + 4_000 * rng();
        else done = t + 1_800_000 + (86_400_000 - 1_800_000) * rng();
        cost += laneUsd[lane];
        if (done - t > cls.ms) {
          misses++;
          tally.misses = (tally.misses ?? 0) + 1;
        }
      }
    }
  }
  const allRealtime = requests * perRequest * realtimeItemUsd;
  return {
    summary: { costVsRealtime: Math.round((cost / allRealtime) * 1000) / 1000, deadlineMisses: misses },
    details: { model: "simulated time, lanes modelled (see bench/lib/gpu-router.ts)", items: requests * perRequest, demandPerS, localPerS, costUsd: cost, allRealtimeUsd: allRealtime, lanesByDeadline: byClass },
  };
}
