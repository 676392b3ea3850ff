/**
 * Prompt-prefix caching as the providers report it. A prompt is a list of segments (messages,
 * or Anthropic's tools / system blocks / message blocks); some segments are cache points. A
 * prefix ending at a cache point is remembered for its TTL; a later request whose prefix at
 * one of its cache points is remembered reads those tokens from the cache.
 *   OpenAI: every message boundary is a point, >= 1024 tokens, reported in 128-token steps.
 *   Anthropic: points are the blocks carrying `cache_control`; >= 1024 tokens; writes reported.
 *   vLLM: every message boundary, whole 16-token blocks, no minimum.
 */
import { createHash } from "node:crypto";

/** Default cache lifetime, in ms (OpenAI: 5-10 min of inactivity; Anthropic "ephemeral": 5 min). */
export const DEFAULT_CACHE_TTL_MS = 5 * 60_000;
/** Anthropic's `cache_control: { ttl: "1h" }`, in ms. */
export const ONE_HOUR_TTL_MS = 60 * 60_000;
/** Remembered prefixes before expired ones are swept and the oldest evicted. */
const MAX_ENTRIES = 100_000;

export interface CacheSegment {
  /** Canonical text of the segment: byte-identical segments must give identical text. */
  text: string;
  tokens: number;
  /** Set on a cache point: how long a prefix ending here is remembered, in ms. */
  ttlMs?: number;
}

export interface CacheMatchOptions {
  /** Shortest prefix that is cached at all, in tokens. */
  minTokens: number;
  /** Read tokens are reported rounded down to a multiple of this. @defaultValue 1 */
  roundTo?: number;
}

export interface CacheMatch {
  /** Tokens served from the cache. */
  readTokens: number;
  /** Tokens newly written to the cache (the part after the read prefix up to the last point). */
  writeTokens: number;
  /** `writeTokens` split by the TTL of the point that wrote them, in ms. */
  writeTokensByTtl: Map<number, number>;
  /** Prompt tokens covered by the segments. */
  totalTokens: number;
}

export class PromptCache {
  /** prefix key -> expiry (ms since epoch). Map order = least recently used first. */
  private readonly entries = new Map<string, number>();
  constructor(private readonly now: () => number = Date.now) {}

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }

  /**
   * Looks up the longest cached prefix among the cache points, then remembers every point's
   * prefix (a hit refreshes its TTL, as with the providers). `namespace` separates models.
   */
  match(namespace: string, segments: readonly CacheSegment[], opts: CacheMatchOptions): CacheMatch {
    const now = this.now();
    const roundTo = opts.roundTo ?? 1;
    const points: Array<{ key: string; tokens: number; ttlMs: number }> = [];
    const h = createHash("sha256").update(namespace);
    let tokens = 0;
    for (const seg of segments) {
      // Length-prefixed so that segment boundaries are part of the key.
      h.update(`${seg.text.length}:${seg.text}`);
      tokens += seg.tokens;
      if (seg.ttlMs !== undefined && tokens >= opts.minTokens) {
        points.push({ key: h.copy().digest("base64url"), tokens, ttlMs: seg.ttlMs });
      }
    }
    let hit = -1;
    for (let i = points.length - 1; i >= 0; i--) {
      const exp = this.entries.get(points[i]!.key);
      if (exp !== undefined && exp > now) {
        hit = i;
        break;
      }
    }
    const readExact = hit >= 0 ? points[hit]!.tokens : 0;
    const writeTokensByTtl = new Map<number, number>();
    let writeTokens = 0;
    let prev = readExact;
    for (let i = hit + 1; i < points.length; i++) {
      const p = points[i]!;
      const w = p.tokens - prev;
      writeTokens += w;
      writeTokensByTtl.set(p.ttlMs, (writeTokensByTtl.get(p.ttlMs) ?? 0) + w);
      prev = p.tokens;
    }
    for (const p of points) this.remember(p.key, now + p.ttlMs, now);
    return { readTokens: Math.floor(readExact / roundTo) * roundTo, writeTokens, writeTokensByTtl, totalTokens: tokens };
  }

  private remember(key: string, expiresAt: number, now: number): void {
    const prevExp = this.entries.get(key) ?? 0;
    this.entries.delete(key);
    this.entries.set(key, Math.max(prevExp, expiresAt));
    if (this.entries.size <= MAX_ENTRIES) return;
    for (const [k, exp] of this.entries) if (exp <= now) this.entries.delete(k);
    while (this.entries.size > MAX_ENTRIES) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }
}
