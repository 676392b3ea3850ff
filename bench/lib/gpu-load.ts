/**
 * Closed-loop load for bench/gpu.ts: `callers` loops, each sending one Sieve-shaped classify call
 * (`itemsPerCall` items with fresh ids) after the previous one answered, until `stopAt`.
 * Records every answered item id (to count lost and duplicated items) and each call's latency.
 */
import type { LlmProvider, StructuredCallResult } from "../../apps/workers/src/providers/types.js";

export const LABELS = ["World", "Sports", "Business", "Sci/Tech"];

const WORDS = "markets rally as central bank holds rates while the league opens its season and a new chip promises faster phones for less power".split(" ");

/** A news-like sentence of ~35 words, deterministic per n. */
export function text(n: number): string {
  return Array.from({ length: 35 }, (_, i) => WORDS[(n * 7 + i * 3) % WORDS.length]).join(" ") + ` (#${n})`;
}

export interface LoadResult {
  answered: Map<string, number>;
  sent: Set<string>;
  latencies: number[];
  /** Items answered per 250 ms slot since start. */
  timeline: number[];
  failures: number;
}

export async function runLoad(provider: LlmProvider, model: string, opts: { callers: number; itemsPerCall: number; durationMs: number; warmupMs: number; tag: string }): Promise<LoadResult & { measuredItems: number; measuredMs: number }> {
  const start = performance.now();
  const stopAt = start + opts.durationMs;
  const r: LoadResult = { answered: new Map(), sent: new Set(), latencies: [], timeline: [], failures: 0 };
  let measuredItems = 0;
  let seq = 0;
  const loop = async (c: number) => {
    while (performance.now() < stopAt) {
      const items = Array.from({ length: opts.itemsPerCall }, (_, i) => ({ id: `i${i + 1}`, text: text(seq++) }));
      const ids = items.map((_, i) => `${opts.tag}-${c}-${seq}-${i}`);
      ids.forEach((id) => r.sent.add(id));
      let res: StructuredCallResult | undefined;
      for (let attempt = 0; attempt < 5 && !res; attempt++) {
        try {
          res = await provider.callStructured({ model, params: { task: "classify", labels: LABELS }, items, timeoutMs: 120_000 });
        } catch {
          r.failures++;
        }
      }
      if (!res) continue;
      const now = performance.now();
      for (const id of ids) r.answered.set(id, (r.answered.get(id) ?? 0) + 1);
      const slot = Math.floor((now - start) / 250);
      while (r.timeline.length <= slot) r.timeline.push(0);
      r.timeline[slot]! += ids.length;
      if (now - start >= opts.warmupMs) {
        measuredItems += ids.length;
        r.latencies.push(res.latencyMs);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.callers }, (_, c) => loop(c)));
  const measuredMs = Math.max(1, performance.now() - start - opts.warmupMs);
  return { ...r, measuredItems, measuredMs };
}

export function p95(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)]!;
}
