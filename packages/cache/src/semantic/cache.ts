/**
 * The semantic cache: Embedder + VectorStore + false-hit guards.
 *
 * lookup: embeds every text in one batched call, asks the store for the nearest live entries in
 * exactly the caller's scope with `score >= threshold`, refuses candidates the guards reject
 * (negation, numbers), and touches the entries it answers from (LRU). Every hit carries its
 * similarity score and the text and item it came from.
 *
 * store: embeds the texts (one call) and upserts them. An entry's id is derived from its scope and
 * normalised text, so storing the same text again in the same scope replaces the old answer
 * (this is what "refresh" needs).
 */
import { normaliseText, sha256 } from "@sieve/shared/batchKey";
import type { Embedder } from "../embeddings/types.js";
import { assertFullScope, scopeKey } from "../vector/scope.js";
import type { CacheScope, VectorEntry, VectorStore } from "../vector/types.js";
import { guardedMatch, type GuardOptions } from "./guards.js";

/** A cache scope without the embedder: the SemanticCache fills that in from its embedder. */
export type SemanticScope = Omit<CacheScope, "embedderId">;

export interface SemanticCacheOptions {
  embedder: Embedder;
  /** An initialised (or lazily initialising) store whose dimensions match the embedder's. */
  store: VectorStore;
  /** Nearest entries fetched per text; the guards may refuse the best ones. @defaultValue 5 */
  candidates?: number | undefined;
  /** Clock, epoch ms (tests pass a fake one). @defaultValue Date.now */
  now?: (() => number) | undefined;
}

export interface LookupOptions extends GuardOptions {
  /** Cosine similarity a neighbour needs, inclusive: a hit is `score >= threshold`. */
  threshold: number;
  /** Told about every candidate above the threshold that a guard refused (for metrics and audits). */
  onGuardReject?: ((info: GuardRejection) => void) | undefined;
}

export interface GuardRejection {
  /** Position of the looked-up text. */
  index: number;
  entryId: string;
  score: number;
  reason: "negation" | "numbers";
}

export interface SemanticHit {
  output: unknown;
  /** Cosine similarity of the two texts' embeddings (>= the threshold). */
  score: number;
  /** The item the cached answer was computed for. */
  sourceItemId: number | null;
  sourceText: string;
  /** The vector-store entry (for audits). */
  entryId: string;
}

/** What a semantic lookup found for one text: the hit, or null for a miss. */
export type SemanticLookupResult = { hit: SemanticHit } | null;

export interface SemanticStoreEntry {
  scope: SemanticScope;
  text: string;
  output: unknown;
  sourceItemId?: number | null | undefined;
  /** Time to live in ms; null or absent: until evicted. */
  ttlMs?: number | null | undefined;
}

export class SemanticCache {
  readonly embedder: Embedder;
  readonly vectorStore: VectorStore;
  private readonly candidates: number;
  private readonly now: () => number;

  constructor(opts: SemanticCacheOptions) {
    this.embedder = opts.embedder;
    this.vectorStore = opts.store;
    this.candidates = opts.candidates ?? 5;
    if (!Number.isInteger(this.candidates) || this.candidates < 1) throw new RangeError("candidates must be a positive integer");
    this.now = opts.now ?? Date.now;
  }

  init(): Promise<void> {
    return this.vectorStore.init();
  }

  /** The full vector-store scope of a semantic scope (adds this cache's embedder id). */
  scopeOf(scope: SemanticScope): CacheScope {
    const full: CacheScope = { ...scope, embedderId: this.embedder.id };
    assertFullScope(full);
    return full;
  }

  /** The entry id a text gets in a scope: same scope and normalised text, same id. */
  entryId(scope: SemanticScope, text: string): string {
    return `sc_${sha256(`${scopeKey(this.scopeOf(scope))}\n${normaliseText(text)}`).slice(0, 40)}`;
  }

  async lookup(texts: string[], scope: SemanticScope, opts: LookupOptions): Promise<SemanticLookupResult[]> {
    if (!Number.isFinite(opts.threshold) || opts.threshold < -1 || opts.threshold > 1) throw new RangeError("threshold must be in [-1, 1]");
    const full = this.scopeOf(scope);
    const out: SemanticLookupResult[] = texts.map(() => null);
    // Embed each distinct non-empty text once, all in one embedder call.
    const positions = new Map<string, number[]>();
    texts.forEach((t, i) => {
      const key = normaliseText(t);
      if (key === "") return;
      const list = positions.get(key);
      if (list) list.push(i);
      else positions.set(key, [i]);
    });
    if (positions.size === 0) return out;
    const distinct = [...positions.keys()];
    const vectors = await this.embedder.embed(distinct);
    const now = this.now();
    const results = await this.vectorStore.queryMany(vectors, full, { limit: this.candidates, minScore: opts.threshold, now });
    const used = new Set<string>();
    distinct.forEach((text, d) => {
      const hits = results[d] ?? [];
      const indexes = positions.get(text) ?? [];
      for (const h of hits) {
        const g = guardedMatch(text, h.entry.text, opts);
        if (!g.ok) {
          for (const index of indexes) opts.onGuardReject?.({ index, entryId: h.entry.id, score: h.score, reason: g.reason ?? "numbers" });
          continue;
        }
        const hit: SemanticHit = {
          output: h.entry.output,
          score: h.score,
          sourceItemId: h.entry.sourceItemId,
          sourceText: h.entry.text,
          entryId: h.entry.id,
        };
        for (const index of indexes) out[index] = { hit };
        used.add(h.entry.id);
        break;
      }
    });
    if (used.size > 0) await this.vectorStore.touch([...used], now);
    return out;
  }

  /** Embeds and stores answers (one embedder call, one bulk upsert). Returns the entry ids, in order. */
  async store(entries: SemanticStoreEntry[]): Promise<string[]> {
    const kept = entries.filter((e) => normaliseText(e.text) !== "");
    const ids = entries.map((e) => (normaliseText(e.text) === "" ? "" : this.entryId(e.scope, e.text)));
    if (kept.length === 0) return ids;
    const vectors = await this.embedder.embed(kept.map((e) => normaliseText(e.text)));
    const now = this.now();
    const rows: VectorEntry[] = kept.map((e, i) => ({
      id: this.entryId(e.scope, e.text),
      vector: vectors[i]!,
      scope: this.scopeOf(e.scope),
      text: e.text,
      output: e.output,
      sourceItemId: e.sourceItemId ?? null,
      createdAt: now,
      expiresAt: e.ttlMs === null || e.ttlMs === undefined ? null : now + e.ttlMs,
    }));
    await this.vectorStore.upsert(rows);
    return ids;
  }

  /** LRU eviction down to `maxEntries` (in `scope` when given, else the whole store). Returns how many went. */
  async evictIfNeeded(maxEntries: number, scope?: Partial<CacheScope>): Promise<number> {
    return this.vectorStore.evict({ maxEntries, ...(scope ? { scope } : {}) });
  }

  /** Deletes expired entries. Returns how many. */
  async deleteExpired(): Promise<number> {
    return this.vectorStore.deleteExpired(this.now());
  }
}
