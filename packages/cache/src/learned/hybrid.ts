/**
 * The `hybrid` learned-cache model: the kNN vote over embeddings (classifier.ts) combined with a
 * multinomial naive Bayes over hashed text features (naiveBayes.ts, textFeatures.ts). The two see
 * different evidence (meaning from the embedder, exact words and word pieces from the text), so
 * where both agree the combined confidence is higher than either alone, and where they disagree
 * it is lower. Measured against the knn vote alone in `npm run bench:quality` (docs/quality.md).
 *
 * Combination (a product of experts, renormalised): P(c) ∝ P_knn(c) · P_nb(c)^(nbWeight / |x|),
 * where P_knn spreads the vote's unassigned weight (missing and "don't know" neighbours) and a
 * small smoothing weight evenly over the labels seen, P_nb is the naive Bayes posterior and |x|
 * the item's feature count. The naive Bayes posterior is far too sure of itself (it multiplies
 * hundreds of dependent features), hence the tempering. (A fixed exponent, 0.05 to 0.5, was
 * tried in a hindsight grid over bench:quality's streams, trained on gold labels: at best it
 * ranked AG News's long texts far worse, 23.7% vs 37.9% of the second half answerable at 1%
 * error, and BANKING77's short ones a little better, 44.9% vs 40.8%.)
 * Without a text (the caller had none) it is the knn vote alone.
 */
import { KnnClassifier, type Classifier, type ClassifierOptions, type Prediction } from "./classifier.js";
import { HashedNaiveBayes } from "./naiveBayes.js";
import { textFeatures, type TextFeatureOptions } from "./textFeatures.js";

export interface HybridOptions extends ClassifierOptions {
  /**
   * Exponent of the naive Bayes posterior in the product, per feature of the item: the posterior
   * is raised to nbWeight / (the item's feature count), so long and short texts weigh alike.
   * @defaultValue 5 (hindsight grid over bench:quality's streams, docs/quality.md)
   */
  nbWeight?: number;
  /**
   * Pseudo-weight spread evenly over the labels, as a share of the vote's weight, so that a label
   * outside the k nearest keeps a small probability the text can raise. @defaultValue 0.02
   */
  knnSmoothing?: number;
  /** Laplace smoothing of the naive Bayes. @defaultValue 0.1 */
  nbAlpha?: number;
  features?: TextFeatureOptions;
}

export class HybridClassifier implements Classifier {
  readonly kind = "hybrid" as const;
  private readonly knn: KnnClassifier;
  private readonly nb: HashedNaiveBayes;
  /** Texts (in memory only) and labels of the examples, oldest first, to forget them from the naive Bayes with the kNN's cap. */
  private readonly texts: Array<{ text: string | undefined; label: string }> = [];
  private head = 0;
  private readonly maxExamples: number;
  private readonly nbWeight: number;

  constructor(readonly dims: number, private readonly opts: HybridOptions = {}) {
    this.knn = new KnnClassifier(dims, opts);
    this.nb = new HashedNaiveBayes({ alpha: opts.nbAlpha ?? 0.1 });
    this.maxExamples = opts.maxExamples ?? 20_000;
    this.nbWeight = opts.nbWeight ?? 5;
  }

  get size(): number {
    return this.knn.size;
  }

  add(vector: ArrayLike<number>, label: string, text?: string): void {
    this.knn.add(vector, label);
    if (text !== undefined) this.nb.add(textFeatures(text, this.opts.features), label);
    this.texts.push({ text, label });
    if (this.texts.length - this.head > this.maxExamples) {
      const old = this.texts[this.head]!;
      this.texts[this.head] = { text: undefined, label: "" };
      this.head++;
      if (old.text !== undefined) this.nb.remove(textFeatures(old.text, this.opts.features), old.label);
      // Compact now and then, so the array does not grow without end.
      if (this.head > 1024 && this.head * 2 > this.texts.length) {
        this.texts.splice(0, this.head);
        this.head = 0;
      }
    }
  }

  predict(vector: ArrayLike<number>, text?: string): Prediction | undefined {
    const v = this.knn.votes(vector);
    if (!v) return undefined;
    const nb = text === undefined ? undefined : this.nb.logPosteriors(textFeatures(text, this.opts.features));
    const labels = new Set<string>(v.weights.keys());
    if (nb) for (const l of nb.labels) labels.add(l);
    const smoothing = (this.opts.knnSmoothing ?? 0.02) * v.total;
    const denom = v.total + v.unassigned + smoothing;
    const spread = (v.unassigned + smoothing) / labels.size;
    const nbLog = new Map<string, number>();
    if (nb) {
      const max = Math.max(...nb.scores);
      // log softmax, tempered; a label the naive Bayes never saw gets its least likely score.
      let z = 0;
      for (const s of nb.scores) z += Math.exp(s - max);
      const exponent = this.nbWeight / Math.max(1, nb.features);
      nb.labels.forEach((l, i) => nbLog.set(l, (nb.scores[i]! - max - Math.log(z)) * exponent));
    }
    const nbFloor = nbLog.size > 0 ? Math.min(...nbLog.values()) : 0;
    let best = "";
    let bestLog = -Infinity;
    const logs: number[] = [];
    for (const l of labels) {
      const pk = ((v.weights.get(l) ?? 0) + spread) / denom;
      const lg = Math.log(Math.max(pk, 1e-300)) + (nbLog.get(l) ?? nbFloor);
      logs.push(lg);
      if (lg > bestLog) [best, bestLog] = [l, lg];
    }
    let z = 0;
    for (const lg of logs) z += Math.exp(lg - bestLog);
    return { label: best, confidence: 1 / z };
  }
}
