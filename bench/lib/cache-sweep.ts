/**
 * Threshold sweeps for bench/cache.ts: pairs (hit rate on duplicates, false-hit rate on
 * non-duplicates, with and without the guards) and an in-memory replay of a stream through an
 * exact + semantic cache (same rules as SemanticCache: top-5 candidates at or above the
 * threshold, the first one the guards accept answers).
 */
import { guardedMatch } from "../../packages/cache/src/semantic/guards.js";
import { cosine } from "../../packages/cache/src/vector/scope.js";
import type { LabelledPair } from "./cache-datasets.js";

export interface ScoredPair {
  score: number;
  guardOk: boolean;
  duplicate: boolean;
}

export interface PairSweepRow {
  threshold: number;
  /** Share of duplicate pairs that hit (no guards / with guards). */
  hitRate: number;
  hitRateGuarded: number;
  /** Share of non-duplicate pairs that hit (no guards / with guards). */
  falseHitRate: number;
  falseHitRateGuarded: number;
}

export function thresholds(): number[] {
  const out: number[] = [];
  for (let i = 70; i <= 99; i++) out.push(i / 100);
  out.push(0.992, 0.994, 0.996, 0.998, 1);
  return out;
}

export function scorePairs(pairs: LabelledPair[], vectorOf: (text: string) => Float32Array): ScoredPair[] {
  return pairs.map((p) => ({
    score: cosine(vectorOf(p.a), vectorOf(p.b)),
    guardOk: guardedMatch(p.a, p.b).ok,
    duplicate: p.duplicate,
  }));
}

export function sweepPairs(scored: ScoredPair[], ts: number[]): PairSweepRow[] {
  const dups = scored.filter((p) => p.duplicate);
  const non = scored.filter((p) => !p.duplicate);
  const rate = (set: ScoredPair[], t: number, guarded: boolean) =>
    set.length === 0 ? 0 : set.filter((p) => p.score >= t && (!guarded || p.guardOk)).length / set.length;
  return ts.map((t) => ({
    threshold: t,
    hitRate: rate(dups, t, false),
    hitRateGuarded: rate(dups, t, true),
    falseHitRate: rate(non, t, false),
    falseHitRateGuarded: rate(non, t, true),
  }));
}

/**
 * The lowest threshold from which on every swept threshold keeps `rate(row) <= max` (so a noisy
 * dip below the limit at a low threshold does not count). null if none does.
 */
export function lowestSafeThreshold<T extends { threshold: number }>(rows: T[], rate: (r: T) => number, max: number): number | null {
  let chosen: number | null = null;
  for (let i = rows.length - 1; i >= 0; i--) {
    if (rate(rows[i]!) <= max) chosen = rows[i]!.threshold;
    else break;
  }
  return chosen;
}

export interface StreamSweepRow {
  threshold: number;
  exactHits: number;
  semanticHits: number;
  /** Semantic hits whose source item has the same label. */
  semanticSameLabel: number;
  llmCalls: number;
  /** (exact + semantic) / items. */
  answeredWithoutLlm: number;
  /** Semantic hits with a different label / semantic hits. */
  wrongLabelShareOfHits: number;
}

/**
 * Replays a stream for many thresholds at once. `vectors[i]` is item i's embedding; the pairwise
 * similarities are computed once (n^2/2 dot products), so keep n to a few thousand.
 */
export function sweepStream(
  items: Array<{ key: string; text: string; label: string }>,
  vectors: Float32Array[],
  ts: number[],
  candidates = 5,
): StreamSweepRow[] {
  const n = items.length;
  // Lower triangle of the similarity matrix, row i holds sim(i, j) for j < i.
  const rows: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const row = new Float32Array(i);
    const vi = vectors[i]!;
    for (let j = 0; j < i; j++) {
      const vj = vectors[j]!;
      let dot = 0;
      for (let k = 0; k < vi.length; k++) dot += vi[k]! * vj[k]!;
      row[j] = dot;
    }
    rows.push(row);
  }
  return ts.map((t) => {
    const exact = new Map<string, number>();
    const stored: number[] = [];
    let exactHits = 0;
    let semanticHits = 0;
    let same = 0;
    for (let i = 0; i < n; i++) {
      const it = items[i]!;
      if (exact.has(it.key)) {
        exactHits++;
        continue;
      }
      const row = rows[i]!;
      const top: Array<{ j: number; s: number }> = [];
      for (const j of stored) {
        const s = row[j]!;
        if (s < t) continue;
        if (top.length < candidates) top.push({ j, s });
        else if (s > top[top.length - 1]!.s) top[top.length - 1] = { j, s };
        else continue;
        top.sort((a, b) => b.s - a.s);
      }
      const hit = top.find((c) => guardedMatch(it.key, items[c.j]!.text).ok);
      if (hit) {
        semanticHits++;
        if (items[hit.j]!.label === it.label) same++;
        continue;
      }
      exact.set(it.key, i);
      stored.push(i);
    }
    return {
      threshold: t,
      exactHits,
      semanticHits,
      semanticSameLabel: same,
      llmCalls: n - exactHits - semanticHits,
      answeredWithoutLlm: (exactHits + semanticHits) / n,
      wrongLabelShareOfHits: semanticHits === 0 ? 0 : (semanticHits - same) / semanticHits,
    };
  });
}

export function percentile(sortedAsc: number[], p: number): number {
  if (sortedAsc.length === 0) return Number.NaN;
  const idx = Math.min(sortedAsc.length - 1, Math.max(0, Math.ceil((p / 100) * sortedAsc.length) - 1));
  return sortedAsc[idx]!;
}

export function latencySummary(ms: number[]): { n: number; p50: number; p99: number; mean: number; max: number } {
  const s = [...ms].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: round(percentile(s, 50), 3),
    p99: round(percentile(s, 99), 3),
    mean: round(s.reduce((a, b) => a + b, 0) / Math.max(1, s.length), 3),
    max: round(s[s.length - 1] ?? Number.NaN, 3),
  };
}

export function round(x: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
