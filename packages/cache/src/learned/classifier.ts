/**
 * Cheap local classifiers over unit-length embeddings, trained one LLM label at a time. Three
 * kinds, measured side by side by `npm run bench:quality` (docs/quality.md says which won and why):
 *
 * - `knn`: similarity-weighted vote of the k nearest examples (exact scan; cosine = dot product of
 *   unit vectors). Confidence = the winning label's share of the kernel weights.
 * - `centroid`: a linear model, the nearest class mean (one weight vector per label = the mean of
 *   its examples). Confidence = softmax of the cosines to every class mean.
 *
 * - `hybrid` (hybrid.ts): the knn vote combined with a naive Bayes over hashed text features.
 *
 * All keep at most `maxExamples` examples per model (oldest dropped; the centroid subtracts them
 * again), so memory and lookup time stay bounded. `text` is the item's text: the kinds over
 * embeddings alone ignore it.
 */

export interface Prediction {
  label: string;
  /** 0..1; only comparable within one model kind (the threshold is calibrated per model). */
  confidence: number;
}

export interface Classifier {
  readonly kind: ClassifierKind;
  /** Examples it has learned from (after the cap). */
  readonly size: number;
  add(vector: ArrayLike<number>, label: string, text?: string): void;
  /** undefined while it has no example. */
  predict(vector: ArrayLike<number>, text?: string): Prediction | undefined;
}

export type ClassifierKind = "knn" | "centroid" | "hybrid";

export interface ClassifierOptions {
  /** Neighbours that vote (knn). @defaultValue 20 (bench:quality, docs/quality.md) */
  k?: number;
  /** Kernel temperature: weight = exp((cosine - 1) / temperature). @defaultValue 0.05 */
  temperature?: number;
  /** Examples kept per model, oldest dropped beyond. @defaultValue 20000 */
  maxExamples?: number;
  /**
   * knn: cosine of an imaginary "don't know" neighbour; k of them join every vote, so a label
   * backed only by far neighbours gets a lower confidence (and unanimous votes do not all tie at 1).
   * @defaultValue undefined (none)
   */
  unknownCosine?: number;
}

function dot(a: Float32Array, offset: number, b: ArrayLike<number>, dims: number): number {
  let s = 0;
  for (let i = 0; i < dims; i++) s += a[offset + i]! * b[i]!;
  return s;
}

/** A ring of fixed-size vectors with their labels. */
class Ring {
  private data: Float32Array;
  readonly labels: string[] = [];
  private start = 0;
  count = 0;
  constructor(readonly dims: number, readonly capacity: number) {
    this.data = new Float32Array(dims * Math.min(capacity, 256));
  }
  /** Adds; returns the evicted example when full. */
  push(v: ArrayLike<number>, label: string): { vector: Float32Array; label: string } | undefined {
    let evicted: { vector: Float32Array; label: string } | undefined;
    if (this.count === this.capacity) {
      const slot = this.start;
      evicted = { vector: this.data.slice(slot * this.dims, (slot + 1) * this.dims), label: this.labels[slot]! };
      this.data.set(Array.from({ length: this.dims }, (_, i) => v[i]!), slot * this.dims);
      this.labels[slot] = label;
      this.start = (this.start + 1) % this.capacity;
      return evicted;
    }
    if ((this.count + 1) * this.dims > this.data.length) {
      const grown = new Float32Array(Math.min(this.capacity, this.data.length / this.dims * 2) * this.dims);
      grown.set(this.data);
      this.data = grown;
    }
    for (let i = 0; i < this.dims; i++) this.data[this.count * this.dims + i] = v[i]!;
    this.labels[this.count] = label;
    this.count++;
    return undefined;
  }
  similarity(slot: number, v: ArrayLike<number>): number {
    return dot(this.data, slot * this.dims, v, this.dims);
  }
}

export class KnnClassifier implements Classifier {
  readonly kind = "knn" as const;
  private readonly ring: Ring;
  private readonly k: number;
  private readonly temperature: number;
  private readonly unknownWeight: number;

  constructor(readonly dims: number, opts: ClassifierOptions = {}) {
    this.ring = new Ring(dims, opts.maxExamples ?? 20_000);
    this.k = opts.k ?? 20;
    this.temperature = opts.temperature ?? 0.05;
    this.unknownWeight = opts.unknownCosine === undefined ? 0 : this.k * Math.exp((opts.unknownCosine - 1) / this.temperature);
  }

  get size(): number {
    return this.ring.count;
  }

  add(vector: ArrayLike<number>, label: string): void {
    this.ring.push(vector, label);
  }

  predict(vector: ArrayLike<number>): Prediction | undefined {
    const v = this.votes(vector);
    if (!v) return undefined;
    let best = "";
    let bestW = -1;
    for (const [label, w] of v.weights) if (w > bestW) [best, bestW] = [label, w];
    return { label: best, confidence: v.total > 0 ? bestW / (v.total + v.unassigned) : 0 };
  }

  /**
   * The kernel weight of each label among the k nearest, their sum, and the weight of the missing
   * (fewer than k examples) and "don't know" neighbours, which back no label.
   */
  votes(vector: ArrayLike<number>): { weights: Map<string, number>; total: number; unassigned: number } | undefined {
    const n = this.ring.count;
    if (n === 0) return undefined;
    // Top-k by insertion into a small sorted array: k is tiny, n is at most maxExamples.
    const topSim: number[] = [];
    const topSlot: number[] = [];
    for (let s = 0; s < n; s++) {
      const sim = this.ring.similarity(s, vector);
      if (topSim.length === this.k && sim <= topSim[topSim.length - 1]!) continue;
      let j = topSim.length;
      while (j > 0 && topSim[j - 1]! < sim) j--;
      topSim.splice(j, 0, sim);
      topSlot.splice(j, 0, s);
      if (topSim.length > this.k) {
        topSim.pop();
        topSlot.pop();
      }
    }
    const votes = new Map<string, number>();
    let total = 0;
    topSim.forEach((sim, i) => {
      const w = Math.exp((sim - 1) / this.temperature);
      const label = this.ring.labels[topSlot[i]!]!;
      votes.set(label, (votes.get(label) ?? 0) + w);
      total += w;
    });
    // Fewer than k examples: the missing votes count against the winner (no confidence from 1 example).
    const missing = (this.k - topSim.length) * Math.exp(-1 / this.temperature);
    return { weights: votes, total, unassigned: missing + this.unknownWeight };
  }
}

export class CentroidClassifier implements Classifier {
  readonly kind = "centroid" as const;
  private readonly sums = new Map<string, { sum: Float64Array; n: number }>();
  private readonly ring: Ring;
  private readonly temperature: number;

  constructor(readonly dims: number, opts: ClassifierOptions = {}) {
    this.ring = new Ring(dims, opts.maxExamples ?? 20_000);
    this.temperature = opts.temperature ?? 0.05;
  }

  get size(): number {
    return this.ring.count;
  }

  add(vector: ArrayLike<number>, label: string): void {
    const evicted = this.ring.push(vector, label);
    if (evicted) this.update(evicted.vector, evicted.label, -1);
    this.update(vector, label, 1);
  }

  private update(v: ArrayLike<number>, label: string, sign: 1 | -1): void {
    let c = this.sums.get(label);
    if (!c) {
      c = { sum: new Float64Array(this.dims), n: 0 };
      this.sums.set(label, c);
    }
    for (let i = 0; i < this.dims; i++) c.sum[i]! += sign * v[i]!;
    c.n += sign;
    if (c.n === 0) this.sums.delete(label);
  }

  predict(vector: ArrayLike<number>): Prediction | undefined {
    const scores: Array<{ label: string; cos: number }> = [];
    for (const [label, c] of this.sums) {
      let d = 0;
      let norm = 0;
      for (let i = 0; i < this.dims; i++) {
        d += c.sum[i]! * vector[i]!;
        norm += c.sum[i]! * c.sum[i]!;
      }
      scores.push({ label, cos: norm > 0 ? d / Math.sqrt(norm) : 0 });
    }
    if (scores.length === 0) return undefined;
    const max = Math.max(...scores.map((s) => s.cos));
    let total = 0;
    let best = scores[0]!;
    for (const s of scores) {
      total += Math.exp((s.cos - max) / this.temperature);
      if (s.cos > best.cos) best = s;
    }
    return { label: best.label, confidence: 1 / total };
  }
}
