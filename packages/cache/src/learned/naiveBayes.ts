/**
 * Multinomial naive Bayes over hashed binary text features (textFeatures.ts), trained one label
 * at a time and able to forget an example again (the example cap drops the oldest). Laplace
 * smoothing `alpha`; the vocabulary size is the number of buckets seen so far.
 *
 * Scores are computed sparsely: with D_c = (features counted for class c) + alpha * V,
 *   log P(x | c) = |x| * log(alpha / D_c) + sum over features f of x seen in c of log((n_fc + alpha) / alpha),
 * so a lookup touches only the buckets of the item (one map read each), not every bucket per class.
 */

export interface NaiveBayesOptions {
  /** Laplace smoothing. @defaultValue 0.1 */
  alpha?: number;
}

export class HashedNaiveBayes {
  /** bucket -> flat [labelIndex, count, labelIndex, count, ...] */
  private readonly counts = new Map<number, number[]>();
  private readonly labelIndex = new Map<string, number>();
  private readonly labels: string[] = [];
  /** Per label index: examples and feature occurrences. */
  private readonly docs: number[] = [];
  private readonly totals: number[] = [];
  private examples = 0;
  private readonly alpha: number;

  constructor(opts: NaiveBayesOptions = {}) {
    this.alpha = opts.alpha ?? 0.1;
  }

  get size(): number {
    return this.examples;
  }

  add(features: Uint32Array, label: string): void {
    this.update(features, label, 1);
  }

  remove(features: Uint32Array, label: string): void {
    this.update(features, label, -1);
  }

  private update(features: Uint32Array, label: string, sign: 1 | -1): void {
    let c = this.labelIndex.get(label);
    if (c === undefined) {
      if (sign < 0) return;
      c = this.labels.length;
      this.labelIndex.set(label, c);
      this.labels.push(label);
      this.docs.push(0);
      this.totals.push(0);
    }
    this.docs[c]! += sign;
    this.totals[c]! += sign * features.length;
    this.examples += sign;
    for (const f of features) {
      let pairs = this.counts.get(f);
      if (!pairs) {
        if (sign < 0) continue;
        pairs = [];
        this.counts.set(f, pairs);
      }
      let j = 0;
      while (j < pairs.length && pairs[j] !== c) j += 2;
      if (j === pairs.length) {
        if (sign < 0) continue;
        pairs.push(c, 0);
      }
      pairs[j + 1]! += sign;
      if (pairs[j + 1]! <= 0) pairs.splice(j, 2);
      if (pairs.length === 0) this.counts.delete(f);
    }
  }

  /**
   * Log posterior (up to a constant) per label with at least one example, and the number of
   * features of the item; undefined before the first example.
   */
  logPosteriors(features: Uint32Array): { labels: string[]; scores: number[]; features: number } | undefined {
    if (this.examples <= 0) return undefined;
    const vocab = Math.max(1, this.counts.size);
    const k = this.labels.length;
    const scores = new Array<number>(k);
    const live = this.docs.filter((d) => d > 0).length;
    for (let c = 0; c < k; c++) {
      const d = this.totals[c]! + this.alpha * vocab;
      scores[c] = Math.log((this.docs[c]! + 1) / (this.examples + live)) + features.length * Math.log(this.alpha / d);
    }
    const bonus = Math.log(1 / this.alpha);
    for (const f of features) {
      const pairs = this.counts.get(f);
      if (!pairs) continue;
      for (let j = 0; j < pairs.length; j += 2) scores[pairs[j]!]! += Math.log(pairs[j + 1]! + this.alpha) + bonus;
    }
    const labels: string[] = [];
    const out: number[] = [];
    for (let c = 0; c < k; c++) {
      if (this.docs[c]! <= 0) continue;
      labels.push(this.labels[c]!);
      out.push(scores[c]!);
    }
    return { labels, scores: out, features: features.length };
  }
}
