/**
 * Vector stores for the semantic cache: the interface every backend implements and the
 * contract suite (contract.ts) checks. Implementations: PgVectorStore (pgvector in PGlite, the
 * embedded default) and QdrantStore (Qdrant over REST, the production default).
 */

/**
 * Everything a cached answer depends on. A query is ALWAYS filtered by every field: a hit never
 * crosses tenants, tasks, prompt or schema versions, providers, models, task parameters (labels,
 * target language), embedders or namespaces.
 */
export interface CacheScope {
  tenantId: string;
  task: string;
  promptVersion: string;
  schemaVersion: string;
  provider: string;
  model: string;
  /** Hash of the canonical task parameters (labels, target language...). */
  paramsHash: string;
  /** Embedder.id: vectors of different embedding models never mix. */
  embedderId: string;
  /** Per-request cache namespace ("default" when the caller gives none). */
  namespace: string;
}

export const SCOPE_FIELDS = [
  "tenantId",
  "task",
  "promptVersion",
  "schemaVersion",
  "provider",
  "model",
  "paramsHash",
  "embedderId",
  "namespace",
] as const satisfies ReadonlyArray<keyof CacheScope>;
export type ScopeField = (typeof SCOPE_FIELDS)[number];

export interface VectorEntry {
  /** Caller-chosen id, unique in the store; upserting an existing id replaces that entry. */
  id: string;
  /** Stored as float32 after scaling to unit length. */
  vector: number[];
  scope: CacheScope;
  /** The source text (for guards, audits and "which item did this come from"). */
  text: string;
  /** The cached answer; any JSON value. */
  output: unknown;
  /** The item the answer was computed for, when known. */
  sourceItemId: number | null;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms; the entry is expired (never returned) once `now >= expiresAt`. null: never expires. */
  expiresAt: number | null;
}

export interface VectorHit {
  entry: VectorEntry;
  /**
   * Cosine similarity in [-1, 1]. Every store computes it the same way, in Sieve, not in the
   * backend: the float64 dot product of the two unit-scaled float32 vectors divided by the
   * product of their float64 norms. So a given pair has the same score in every store.
   */
  score: number;
}

export interface QueryOptions {
  /** Most hits returned (best first). */
  limit: number;
  /** A candidate is a hit when `score >= minScore` (inclusive, compared in float64). */
  minScore: number;
  /** Epoch ms used for expiry. @defaultValue Date.now() */
  now?: number;
}

export interface VectorStore {
  /** Creates the table / collection and its indexes if missing; checks the vector size if present. Idempotent. */
  init(): Promise<void>;
  /** Inserts or replaces entries by id (one bulk write). A replaced entry's LRU time is reset to its createdAt. */
  upsert(entries: VectorEntry[]): Promise<void>;
  /** Nearest live entries in exactly this scope with `score >= minScore`, best first. */
  query(vector: number[], scope: CacheScope, opts: QueryOptions): Promise<VectorHit[]>;
  /** `query` for several vectors in one round trip where the backend allows it; one result list per vector. */
  queryMany(vectors: number[][], scope: CacheScope, opts: QueryOptions): Promise<VectorHit[][]>;
  /** Marks entries as used at `at` (epoch ms), for LRU eviction. Unknown ids are ignored. */
  touch(ids: string[], at: number): Promise<void>;
  /** Entries stored (expired ones included until deleteExpired runs), optionally in a partial scope. */
  count(scope?: Partial<CacheScope>): Promise<number>;
  /**
   * Deletes least-recently-used entries (oldest touch, or createdAt if never touched) until at most
   * `maxEntries` remain, counting only `scope` when given. Returns how many were deleted.
   */
  evict(opts: { maxEntries: number; scope?: Partial<CacheScope> }): Promise<number>;
  /** Deletes entries with `expiresAt <= now`. Returns how many. */
  deleteExpired(now: number): Promise<number>;
  /** Deletes every entry matching the given fields (at least one field is required). Returns how many. */
  deleteScope(scope: Partial<CacheScope>): Promise<number>;
  /** Releases what the store opened itself (a PGlite it created, HTTP connections). */
  close(): Promise<void>;
}
