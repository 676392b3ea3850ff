/**
 * A bounded memo in front of an embedder. The API process embeds an item's text at submit time
 * (semantic lookup) and, minutes later, again when its answer is stored in the semantic cache;
 * with a CPU embedder that second pass halved throughput. Texts are keyed as the caches key them
 * (whitespace-folded, NFC), the oldest entries go first.
 */
import { normaliseText } from "@sieve/shared/batchKey";
import type { Embedder } from "./types.js";

export class MemoEmbedder implements Embedder {
  readonly id: string;
  readonly dimensions: number;
  private readonly memo = new Map<string, number[]>();
  hits = 0;
  misses = 0;

  /** @param maxEntries vectors kept (512-d: about 4 KiB each). @defaultValue 10000 */
  constructor(
    private readonly inner: Embedder,
    private readonly maxEntries = 10_000,
  ) {
    this.id = inner.id;
    this.dimensions = inner.dimensions;
  }

  async embed(texts: string[]): Promise<number[][]> {
    const keys = texts.map(normaliseText);
    const out = keys.map((k) => this.memo.get(k));
    const todo = [...new Set(keys.filter((_, i) => out[i] === undefined))];
    this.hits += texts.length - keys.filter((_, i) => out[i] === undefined).length;
    this.misses += todo.length;
    if (todo.length > 0) {
      const vectors = await this.inner.embed(todo);
      todo.forEach((k, i) => this.memo.set(k, vectors[i]!));
      while (this.memo.size > this.maxEntries) this.memo.delete(this.memo.keys().next().value as string);
    }
    return keys.map((k) => this.memo.get(k)!);
  }
}
