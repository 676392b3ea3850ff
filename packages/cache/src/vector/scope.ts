/** Scope and score helpers shared by every vector store (one definition, so stores agree). */
import { createHash } from "node:crypto";
import { SCOPE_FIELDS, type CacheScope, type QueryOptions, type ScopeField, type VectorEntry, type VectorHit } from "./types.js";

/** Throws unless every scope field is a non-empty string. */
export function assertFullScope(scope: CacheScope): void {
  for (const f of SCOPE_FIELDS) {
    const v = (scope as unknown as Record<string, unknown>)[f];
    if (typeof v !== "string" || v.length === 0) throw new TypeError(`cache scope field "${f}" must be a non-empty string`);
  }
}

/** The given (non-undefined) fields of a partial scope, in SCOPE_FIELDS order. */
export function scopeEntries(scope: Partial<CacheScope> | undefined): Array<[ScopeField, string]> {
  const out: Array<[ScopeField, string]> = [];
  if (!scope) return out;
  for (const f of SCOPE_FIELDS) {
    const v = scope[f];
    if (v === undefined) continue;
    if (typeof v !== "string") throw new TypeError(`cache scope field "${f}" must be a string`);
    out.push([f, v]);
  }
  return out;
}

/** A stable hash of a full scope (field order fixed), used as an index key. */
export function scopeKey(scope: CacheScope): string {
  return createHash("sha256")
    .update(JSON.stringify(SCOPE_FIELDS.map((f) => scope[f])))
    .digest("hex");
}

/** Unit-scales `v` in float64, then rounds each component to float32 (what the stores keep). */
export function toStoredVector(v: ArrayLike<number>, dimensions: number): number[] {
  if (v.length !== dimensions) throw new RangeError(`vector has ${v.length} dimensions, the store expects ${dimensions}`);
  let sum = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (!Number.isFinite(x)) throw new RangeError("vector has a non-finite component");
    sum += x * x;
  }
  if (sum === 0) throw new RangeError("vector is all zeros (cosine similarity undefined)");
  const norm = Math.sqrt(sum);
  const out = new Array<number>(v.length);
  for (let i = 0; i < v.length; i++) out[i] = Math.fround(v[i]! / norm);
  return out;
}

/**
 * The score every store reports: cosine similarity of two stored-form vectors, in float64.
 * Sieve recomputes it from the returned vector instead of trusting each backend's float32
 * arithmetic, so `score >= minScore` means the same thing in every store.
 */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  if (na === 0 || nb === 0) return 0;
  // sqrt(na * nb), not sqrt(na) * sqrt(nb): one rounding fewer (pgvector does the same).
  return dot / Math.sqrt(na * nb);
}

/**
 * How far below minScore a backend's own (float32) score may fall and the candidate still be
 * fetched for the exact float64 check. Float32 dot products of unit vectors err by ~1e-6 at 4096
 * dimensions; 1e-4 leaves a wide margin and costs nothing (the exact check decides).
 */
export const BACKEND_SCORE_SLACK = 1e-4;

export function validateQueryOptions(opts: QueryOptions): void {
  if (!Number.isInteger(opts.limit) || opts.limit < 1) throw new RangeError("limit must be a positive integer");
  if (!Number.isFinite(opts.minScore) || opts.minScore < -1 || opts.minScore > 1) throw new RangeError("minScore must be in [-1, 1]");
}

/** Exact scores, `score >= minScore`, best first (ties: newer entry first, then id), at most `limit`. */
export function rescore(query: number[], candidates: VectorEntry[], opts: QueryOptions): VectorHit[] {
  return candidates
    .map((entry) => ({ entry, score: cosine(query, entry.vector) }))
    .filter((h) => h.score >= opts.minScore)
    .sort((a, b) => b.score - a.score || b.entry.createdAt - a.entry.createdAt || (a.entry.id < b.entry.id ? -1 : 1))
    .slice(0, opts.limit);
}

/** Storage name of each scope field: a pgvector column, a Qdrant payload key. */
export const SCOPE_STORAGE_KEY: Record<ScopeField, string> = {
  tenantId: "tenant_id",
  task: "task",
  promptVersion: "prompt_version",
  schemaVersion: "schema_version",
  provider: "provider",
  model: "model",
  paramsHash: "params_hash",
  embedderId: "embedder_id",
  namespace: "namespace",
};
