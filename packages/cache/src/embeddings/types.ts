/**
 * Text embedders for the semantic cache. One interface, one class per backend, chosen
 * once at start-up.
 */

export interface Embedder {
  /**
   * Names the model and its vector space, e.g. "use-lite-512" or "openai:text-embedding-3-small:1536".
   * It is part of every vector-store filter (CacheScope.embedderId), so vectors of different models
   * never meet in one query.
   */
  readonly id: string;
  /** Length of every vector this embedder returns. */
  readonly dimensions: number;
  /**
   * One unit-length vector (L2 norm 1, within float rounding) per text, in input order. Batches
   * internally: callers pass all their texts in one call.
   */
  embed(texts: string[]): Promise<number[][]>;
}

/** Scales a vector to unit length (float64). A zero vector is returned unchanged. */
export function normalise(v: ArrayLike<number>): number[] {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i]! * v[i]!;
  const norm = Math.sqrt(sum);
  const out = new Array<number>(v.length);
  for (let i = 0; i < v.length; i++) out[i] = norm > 0 ? v[i]! / norm : v[i]!;
  return out;
}

/** Splits `items` into consecutive chunks of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
