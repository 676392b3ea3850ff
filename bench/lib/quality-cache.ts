/**
 * The cache side of bench/quality.ts: a stream replayed through the learned cache (the real
 * LearnedCache class) and, for comparison, through the exact cache + the real SemanticCache at
 * its default threshold. Both learn from the LLM's answers (what Sieve would store); their errors
 * are counted against gold.
 */
import { normaliseText } from "@sieve/shared/batchKey";
import { LearnedCache } from "../../packages/cache/src/learned/cache.js";
import { clopperPearsonUpper } from "../../packages/cache/src/learned/calibration.js";
import type { ClassifierKind } from "../../packages/cache/src/learned/classifier.js";
import { createClassifier } from "../../packages/cache/src/learned/factory.js";
import { SemanticCache, type SemanticScope } from "../../packages/cache/src/semantic/cache.js";
import { PgVectorStore } from "../../packages/cache/src/vector/pgvector.js";
import type { CacheScope } from "../../packages/cache/src/vector/types.js";
import { PrecomputedEmbedder } from "./cache-stream.js";
import { rng } from "./pipeline-util.js";

export interface ReplayItem {
  text: string;
  gold: string;
  /** What the LLM answered for it (undefined: no valid answer). */
  llm: string | undefined;
  /** What the LLM answered for it asked alone: what an audit or an adjudication gets. */
  alone: string | undefined;
  vector: Float32Array;
}

export interface ShareAndError {
  answeredShare: number;
  errorRate: number | null;
}

export interface LearnedReplay extends ShareAndError {
  answeredShareSecondHalf: number;
  errorRateSecondHalf: number | null;
  firstHalf: ShareAndError;
  /** Where the cache first answered (item index), -1 never. */
  firstAnswerAt: number;
  finalThreshold: number | null;
  audits: number;
  auditDisagreements: number;
  /** Confident disagreements re-asked alone (each one extra LLM call), and how many sided with the model. */
  adjudications: number;
  adjudicatedForModel: number;
  /** Seconds spent in the model (lookups + learning), for the cost of the method itself. */
  modelSeconds: number;
}

const SCOPE: CacheScope = {
  tenantId: "bench",
  namespace: "default",
  task: "classify",
  promptVersion: "classify-v1",
  schemaVersion: "s1",
  provider: "openai",
  model: "gpt-4.1-mini",
  paramsHash: "labels",
  embedderId: "use-lite-512",
};

function shareAndError(answered: number, wrong: number, total: number): ShareAndError {
  return { answeredShare: total ? answered / total : 0, errorRate: answered ? wrong / answered : null };
}

export function replayLearned(
  stream: readonly ReplayItem[],
  opts: { kind: ClassifierKind; maxError: number; minExamples: number; auditRate: number; seed: number; calibrationWindow?: number; adjudicateAbove?: number; startFactor?: number },
): LearnedReplay {
  const cache = new LearnedCache({
    maxError: opts.maxError,
    minExamples: opts.minExamples,
    auditRate: opts.auditRate,
    dimensions: 512,
    kind: opts.kind,
    ...(opts.calibrationWindow ? { calibrationWindow: opts.calibrationWindow } : {}),
    ...(opts.adjudicateAbove !== undefined ? { adjudicateAbove: opts.adjudicateAbove } : {}),
    ...(opts.startFactor !== undefined ? { startFactor: opts.startFactor } : {}),
  });
  const audit = rng(opts.seed);
  const half = Math.floor(stream.length / 2);
  const counts = [
    { answered: 0, wrong: 0, total: 0 },
    { answered: 0, wrong: 0, total: 0 },
  ];
  let firstAnswerAt = -1;
  const t0 = performance.now();
  stream.forEach((it, i) => {
    const c = counts[i < half ? 0 : 1]!;
    c.total++;
    const a = cache.lookup(SCOPE, it.vector, it.text);
    if (a) {
      if (firstAnswerAt < 0) firstAnswerAt = i;
      c.answered++;
      if (a.label !== it.gold) c.wrong++;
      // Audits ask the item alone, as apps/workers/src/dedup/learnedAudit.ts does.
      if (it.alone !== undefined && audit() < opts.auditRate) cache.audit(SCOPE, it.vector, a, it.alone, it.text);
      return;
    }
    if (it.llm === undefined) return;
    const pending = cache.learn(SCOPE, it.vector, it.llm, it.text, true);
    if (pending) cache.adjudicate(SCOPE, pending, it.alone);
  });
  const modelSeconds = (performance.now() - t0) / 1000;
  const st = cache.stats(SCOPE);
  const all = shareAndError(counts[0]!.answered + counts[1]!.answered, counts[0]!.wrong + counts[1]!.wrong, stream.length);
  const second = shareAndError(counts[1]!.answered, counts[1]!.wrong, counts[1]!.total);
  return {
    ...all,
    answeredShareSecondHalf: second.answeredShare,
    errorRateSecondHalf: second.errorRate,
    firstHalf: shareAndError(counts[0]!.answered, counts[0]!.wrong, counts[0]!.total),
    firstAnswerAt,
    finalThreshold: st?.threshold ?? null,
    audits: st?.audited ?? 0,
    auditDisagreements: st?.auditDisagreements ?? 0,
    adjudications: st?.adjudications ?? 0,
    adjudicatedForModel: st?.adjudicatedForModel ?? 0,
    modelSeconds,
  };
}

/** Exact cache + SemanticCache (pgvector in PGlite, guards on) at `threshold`, filled with the LLM's answers. */
export async function replaySemantic(stream: readonly ReplayItem[], threshold: number): Promise<ShareAndError & { exactHits: number; semanticHits: number }> {
  const table = new Map<string, Float32Array>();
  for (const it of stream) table.set(normaliseText(it.text), it.vector);
  const store = new PgVectorStore({ dimensions: 512 });
  const cache = new SemanticCache({ embedder: new PrecomputedEmbedder(table), store });
  await cache.init();
  const scope: SemanticScope = { ...SCOPE };
  try {
    const exact = new Map<string, string>();
    let exactHits = 0;
    let semanticHits = 0;
    let wrong = 0;
    for (const [i, it] of stream.entries()) {
      const key = normaliseText(it.text);
      const e = exact.get(key);
      if (e !== undefined) {
        exactHits++;
        if (e !== it.gold) wrong++;
        continue;
      }
      const [r] = await cache.lookup([it.text], scope, { threshold });
      if (r) {
        semanticHits++;
        if ((r.hit.output as { label: string }).label !== it.gold) wrong++;
        continue;
      }
      if (it.llm === undefined) continue;
      exact.set(key, it.llm);
      await cache.store([{ scope, text: it.text, output: { label: it.llm }, sourceItemId: i }]);
    }
    return { ...shareAndError(exactHits + semanticHits, wrong, stream.length), exactHits, semanticHits };
  } finally {
    await store.close();
  }
}

/**
 * How much a perfect calibration could give at all: each item predicted from all earlier items
 * (trained on `label`: the LLM's or gold), from item `from` on; the threshold chosen in hindsight
 * against gold as the lowest confidence whose answers above it stay at or under `maxError`.
 * Shares are of the whole stream and of its second half (each half with its own threshold).
 */
export function hindsightCeiling(stream: readonly ReplayItem[], opts: { kind: ClassifierKind; label: "llm" | "gold"; maxError: number; from: number }): { share: number; shareSecondHalf: number } {
  const c = createClassifier(opts.kind, 512);
  const half = Math.floor(stream.length / 2);
  const pts: Array<{ conf: number; ok: boolean; second: boolean }> = [];
  stream.forEach((it, i) => {
    const p = c.predict(it.vector, it.text);
    if (p && i >= opts.from) pts.push({ conf: p.confidence, ok: p.label === it.gold, second: i >= half });
    const label = opts.label === "gold" ? it.gold : it.llm;
    if (label !== undefined) c.add(it.vector, label, it.text);
  });
  const best = (sel: typeof pts): number => {
    const sorted = [...sel].sort((a, b) => b.conf - a.conf);
    let wrong = 0;
    let n = 0;
    sorted.forEach((p, i) => {
      if (!p.ok) wrong++;
      // Only at the end of a run of equal confidences: a threshold admits all of them or none.
      if ((i + 1 === sorted.length || sorted[i + 1]!.conf !== p.conf) && wrong <= opts.maxError * (i + 1)) n = i + 1;
    });
    return n;
  };
  return { share: best(pts) / stream.length, shareSecondHalf: best(pts.filter((p) => p.second)) / (stream.length - half) };
}

export interface CrossFitCut {
  /** The share asked for. */
  requested: number;
  /** Share of the stream at or above the cut (the first cut holding `requested`; ties can make it more). */
  share: number;
  errors: number;
  errorRate: number;
  /** One-sided Clopper-Pearson upper bound of that error rate (level 1 - delta). */
  upperBound: number;
}

/**
 * The most any valid certification could get from this model on this stream. Every item is
 * predicted by a model trained on the other folds (k-fold cross-fitting, trained on `label`), so
 * each point is scored by a model that knew (k-1)/k of the stream: more examples than the online
 * model has at any moment, and errors counted against gold rather than against the LLM. Points
 * are ranked by confidence; for each cut, the errors above it and their one-sided Clopper-Pearson
 * upper bound. `tightestBound` is the smallest such bound over every cut holding at least 10% of
 * the stream: no threshold on this model could certify a smaller error bound for 10% or more of
 * the items, however the calibration points were gathered.
 */
export function crossFitBounds(
  stream: readonly ReplayItem[],
  opts: { kind: ClassifierKind; label: "llm" | "gold"; folds: number; delta: number; shares: readonly number[] },
): { tightestBound: number; tightestAtShare: number; cuts: CrossFitCut[] } {
  const pts: Array<{ conf: number; ok: boolean }> = [];
  for (let f = 0; f < opts.folds; f++) {
    const c = createClassifier(opts.kind, 512);
    stream.forEach((it, i) => {
      const label = opts.label === "gold" ? it.gold : it.llm;
      if (i % opts.folds !== f && label !== undefined) c.add(it.vector, label, it.text);
    });
    stream.forEach((it, i) => {
      if (i % opts.folds !== f) return;
      const p = c.predict(it.vector, it.text);
      pts.push({ conf: p?.confidence ?? 0, ok: p?.label === it.gold });
    });
  }
  pts.sort((a, b) => b.conf - a.conf);
  const n = pts.length;
  let tightest = { bound: 1, share: 0 };
  const cuts: CrossFitCut[] = [];
  const wanted = [...opts.shares].sort((a, b) => a - b);
  let errors = 0;
  pts.forEach((p, i) => {
    if (!p.ok) errors++;
    const m = i + 1;
    // Only at the end of a run of equal confidences: a threshold admits all of them or none.
    if (m < n && pts[m]!.conf === p.conf) return;
    const share = m / n;
    if (share >= 0.1) {
      const ub = clopperPearsonUpper(errors, m, opts.delta);
      if (ub < tightest.bound) tightest = { bound: ub, share };
    }
    while (wanted.length > 0 && share >= wanted[0]!) {
      cuts.push({ requested: wanted.shift()!, share, errors, errorRate: errors / m, upperBound: clopperPearsonUpper(errors, m, opts.delta) });
    }
  });
  return { tightestBound: tightest.bound, tightestAtShare: tightest.share, cuts };
}
