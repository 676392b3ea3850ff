/**
 * The confidence threshold of a learned cache, set online so that the error of the answers it
 * gives stays under a bound (docs/quality.md, "Learned cache: method and guarantee").
 *
 * Calibration points are (confidence, correct) pairs the model could not have trained on:
 * - every LLM-labelled item is first predicted by the model, THEN learned (prequential);
 * - audited cache answers (a uniform sample of what the cache answered, re-asked to the LLM).
 * All points weigh 1. Once the cache answers, the region above the threshold in force is seen only
 * through audits, the region below it in full; for a lower candidate threshold t the mix then
 * over-represents [t, threshold), the error-prone part, so the estimate for t is pessimistic
 * (conservative); above the threshold in force the sample is uniform. (Weighting audits by
 * 1/auditRate would remove that bias but, measured in bench:quality, the variance of a few heavy
 * points kept any threshold from being certified.)
 *
 * Threshold: candidates are the distinct confidences, scanned from high to low (fixed-sequence
 * testing, as in Learn-then-Test: Angelopoulos et al. 2021, https://arxiv.org/abs/2110.01052).
 * A candidate t is accepted when the one-sided Clopper-Pearson upper bound (level 1 - delta) of
 * the error rate among points with confidence >= t is at most maxError; the scan stops at the
 * first candidate that fails, and the lowest accepted candidate is the threshold. The scan starts
 * at the first candidate with enough points for a zero-error sample to pass at all.
 * Weighted points (`add(..., weight)`, unused by the cache) enter the bound through Kish's
 * effective sample size, an approximation.
 */

export interface CalibratorOptions {
  /** Error bound among answered items (0..1). */
  maxError: number;
  /** 1 - confidence level of the bound. @defaultValue 0.05 */
  delta?: number;
  /** Most recent calibration points kept. @defaultValue 20000 */
  window?: number;
  /** The threshold is recomputed after this many new points (it is a sort and a scan). @defaultValue 20 */
  recomputeEvery?: number;
  /**
   * The scan starts where this many times `minPoints` points lie above the candidate (fixed in
   * advance, so the procedure stays valid). bench:quality found no gain from starting later.
   * @defaultValue 1
   */
  startFactor?: number;
}

interface Point {
  confidence: number;
  wrong: boolean;
  weight: number;
}

/** P(X <= k) for X ~ Binomial(n, p), by the term recurrence (k is small: a few % of n). */
export function binomialCdf(k: number, n: number, p: number): number {
  if (k >= n) return 1;
  if (p <= 0) return 1;
  if (p >= 1) return 0;
  // Terms in log space: (1-p)^n underflows for large n.
  let lnTerm = n * Math.log1p(-p);
  const lnRatio = Math.log(p) - Math.log1p(-p);
  let s = Math.exp(lnTerm);
  for (let i = 1; i <= k; i++) {
    lnTerm += Math.log((n - i + 1) / i) + lnRatio;
    s += Math.exp(lnTerm);
  }
  return Math.min(1, s);
}

/** One-sided Clopper-Pearson upper bound of a rate with k failures in n trials, level 1 - delta. */
export function clopperPearsonUpper(k: number, n: number, delta: number): number {
  if (n <= 0) return 1;
  if (k >= n) return 1;
  let lo = k / n;
  let hi = 1;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (binomialCdf(k, n, mid) > delta) lo = mid;
    else hi = mid;
  }
  return hi;
}

export class ThresholdCalibrator {
  private points: Point[] = [];
  private readonly delta: number;
  private readonly window: number;
  private cached: { threshold: number | undefined; version: number } | undefined;
  private version = 0;

  constructor(private readonly opts: CalibratorOptions) {
    if (!(opts.maxError > 0 && opts.maxError < 1)) throw new RangeError("maxError must be in (0, 1)");
    this.delta = opts.delta ?? 0.05;
    this.window = opts.window ?? 20_000;
  }

  /** Points needed above a threshold for zero errors to certify maxError at all. */
  get minPoints(): number {
    return Math.ceil(Math.log(this.delta) / Math.log(1 - this.opts.maxError));
  }

  get size(): number {
    return this.points.length;
  }

  add(confidence: number, correct: boolean, weight = 1): void {
    this.points.push({ confidence, wrong: !correct, weight });
    if (this.points.length > this.window) this.points.splice(0, this.points.length - this.window);
    this.version++;
  }

  /** The lowest certified threshold, or undefined when none is (the cache must not answer). */
  threshold(): number | undefined {
    if (this.cached && this.version - this.cached.version < (this.opts.recomputeEvery ?? 20)) return this.cached.threshold;
    const sorted = [...this.points].sort((a, b) => b.confidence - a.confidence);
    let w = 0;
    let w2 = 0;
    let wrongW = 0;
    let accepted: number | undefined;
    for (let i = 0; i < sorted.length; i++) {
      const p = sorted[i]!;
      w += p.weight;
      w2 += p.weight * p.weight;
      if (p.wrong) wrongW += p.weight;
      // Only at the end of a run of equal confidences: a threshold admits all of them or none.
      if (i + 1 < sorted.length && sorted[i + 1]!.confidence === p.confidence) continue;
      const nEff = (w * w) / w2;
      if (nEff < this.minPoints * (this.opts.startFactor ?? 1)) continue;
      const n = Math.floor(nEff);
      const k = Math.ceil((wrongW / w) * nEff - 1e-9);
      // Clopper-Pearson upper bound <= maxError  <=>  P(X <= k | n, maxError) <= delta.
      if (binomialCdf(k, n, this.opts.maxError) <= this.delta) accepted = p.confidence;
      else break;
    }
    this.cached = { threshold: accepted, version: this.version };
    return accepted;
  }

  /** Weighted error rate of points at or above `t` (what the bound was computed from). */
  errorAbove(t: number): { weight: number; errorRate: number } {
    let w = 0;
    let e = 0;
    for (const p of this.points) {
      if (p.confidence < t) continue;
      w += p.weight;
      if (p.wrong) e += p.weight;
    }
    return { weight: w, errorRate: w > 0 ? e / w : 0 };
  }
}
