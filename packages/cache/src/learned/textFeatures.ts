/**
 * Hashed text features for the learned cache's naive Bayes (hybrid.ts): lower-cased word unigrams
 * and bigrams and character 3- to 5-grams, hashed into `2^bits` buckets (the "hashing trick",
 * Weinberger et al. 2009, https://arxiv.org/abs/0902.2206). They need no vocabulary and no
 * embedder, so they work beside any Embedder. Each feature counts once per text (binary), which
 * suits short texts better than raw counts (Rennie et al. 2003, "Tackling the Poor Assumptions of
 * Naive Bayes Text Classifiers").
 *
 * Texts are only read here, never stored or logged.
 */

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over the UTF-16 code units of `s` from `from` to `to`, starting from `seed`. */
function fnv(s: string, from: number, to: number, seed: number): number {
  let h = seed;
  for (let i = from; i < to; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return h >>> 0;
}

/** A different starting hash per feature family, so a word and a 3-gram with the same letters do not share a bucket by construction. */
const SEED_WORD = fnv("w", 0, 1, FNV_OFFSET);
const SEED_BIGRAM = fnv("b", 0, 1, FNV_OFFSET);
const SEED_CHAR = fnv("c", 0, 1, FNV_OFFSET);

export interface TextFeatureOptions {
  /** log2 of the bucket count. @defaultValue 18 */
  bits?: number;
  /** Shortest and longest character n-gram. @defaultValue [3, 5] */
  charRange?: [number, number];
  /** Word bigrams as well as unigrams. @defaultValue true */
  bigrams?: boolean;
}

/** The distinct feature buckets of a text, sorted ascending. */
export function textFeatures(text: string, opts: TextFeatureOptions = {}): Uint32Array {
  const mask = (1 << (opts.bits ?? 18)) - 1;
  const [lo, hi] = opts.charRange ?? [3, 5];
  const lower = text.toLowerCase();
  const words = lower.match(/[\p{L}\p{N}]+/gu) ?? [];
  const out = new Set<number>();
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    out.add(fnv(w, 0, w.length, SEED_WORD) & mask);
    if (opts.bigrams !== false && i + 1 < words.length) {
      const b = `${w} ${words[i + 1]!}`;
      out.add(fnv(b, 0, b.length, SEED_BIGRAM) & mask);
    }
  }
  // Character n-grams over the words joined by single spaces, padded, so word edges are features too.
  const joined = ` ${words.join(" ")} `;
  for (let i = 0; i < joined.length; i++) {
    for (let n = lo; n <= hi && i + n <= joined.length; n++) out.add(fnv(joined, i, i + n, SEED_CHAR) & mask);
  }
  return Uint32Array.from(out).sort();
}
