/**
 * The pgvector store's SQL and row layout: how an entry becomes a row (column order of writes,
 * binary COPY values), how a row becomes an entry again, the nearest-neighbour query of one scope,
 * the `where` of a partial scope, and the planner settings of each query plan. Pure: no database.
 */
import type { CopyValue } from "./pg-binary.js";
import { BACKEND_SCORE_SLACK, SCOPE_STORAGE_KEY, assertFullScope, scopeEntries, scopeKey, toStoredVector } from "./scope.js";
import type { CacheScope, QueryOptions, VectorEntry } from "./types.js";

const COLUMN = SCOPE_STORAGE_KEY;

/**
 * Planner settings per plan (SET LOCAL: this transaction only). HNSW: no sequential, bitmap or
 * sort-based plan, which leaves the index's ordered scan. Exact: no index scan (the HNSW scan is
 * one), which leaves the scope index's bitmap scan or a sequential scan plus a top-N sort.
 */
export const PLAN_SETTINGS = {
  hnsw: "set local enable_seqscan = off; set local enable_bitmapscan = off; set local enable_sort = off",
  exact: "set local enable_indexscan = off",
} as const;

/** Column order of entryRow(). */
export const COLUMNS =
  "id, tenant_id, task, prompt_version, schema_version, provider, model, params_hash, embedder_id, namespace, scope_key, embedding, text, output, source_item_id, created_at, expires_at, last_used_at";
export const ON_CONFLICT = `on conflict (id) do update set
  tenant_id = excluded.tenant_id, task = excluded.task, prompt_version = excluded.prompt_version,
  schema_version = excluded.schema_version, provider = excluded.provider, model = excluded.model,
  params_hash = excluded.params_hash, embedder_id = excluded.embedder_id, namespace = excluded.namespace,
  scope_key = excluded.scope_key, embedding = excluded.embedding, text = excluded.text, output = excluded.output,
  source_item_id = excluded.source_item_id, created_at = excluded.created_at, expires_at = excluded.expires_at,
  last_used_at = excluded.last_used_at`;
/** `xmax = 0` is true for a freshly inserted row, false for one ON CONFLICT updated. */
export const RETURNING = "returning (xmax = 0) as inserted, scope_key";
export interface InsertedRow {
  inserted: boolean;
  scope_key: string;
}

/** A row as the nearest-neighbour query returns it. */
export interface Row {
  id: string;
  tenant_id: string;
  task: string;
  prompt_version: string;
  schema_version: string;
  provider: string;
  model: string;
  params_hash: string;
  embedder_id: string;
  namespace: string;
  embedding: string;
  text: string;
  output: unknown;
  source_item_id: number | null;
  created_at: number;
  expires_at: number | null;
}

/** The values of one entry, in COLUMNS order (a new entry's last_used_at is its created_at). */
export function entryRow(e: VectorEntry, dimensions: number): CopyValue[] {
  assertFullScope(e.scope);
  if (typeof e.id !== "string" || e.id.length === 0) throw new TypeError("entry id must be a non-empty string");
  const s = e.scope;
  const text = (value: string): CopyValue => ({ kind: "text", value });
  return [
    text(e.id),
    text(s.tenantId),
    text(s.task),
    text(s.promptVersion),
    text(s.schemaVersion),
    text(s.provider),
    text(s.model),
    text(s.paramsHash),
    text(s.embedderId),
    text(s.namespace),
    text(scopeKey(s)),
    { kind: "vector", value: toStoredVector(e.vector, dimensions) },
    text(e.text),
    { kind: "jsonb", value: JSON.stringify(e.output ?? null) },
    { kind: "int8", value: e.sourceItemId },
    { kind: "int8", value: Math.trunc(e.createdAt) },
    { kind: "int8", value: e.expiresAt === null ? null : Math.trunc(e.expiresAt) },
    { kind: "int8", value: Math.trunc(e.createdAt) },
  ];
}

/** One parameterised multi-row INSERT ... ON CONFLICT of `rows` (few rows: the steady state). */
export function valuesInsertSql(table: string, rows: CopyValue[][]): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const tuples = rows.map((row) => {
    const ph = row.map((v) => {
      params.push(v.kind === "vector" ? `[${v.value.join(",")}]` : v.value);
      const n = params.length;
      return v.kind === "vector" ? `$${n}::vector` : v.kind === "jsonb" ? `$${n}::jsonb` : v.kind === "int8" ? `$${n}::bigint` : `$${n}`;
    });
    return `(${ph.join(", ")})`;
  });
  return { sql: `insert into ${table} (${COLUMNS}) values ${tuples.join(", ")} ${ON_CONFLICT} ${RETURNING}`, params };
}

/**
 * The nearest entries of one scope, not expired, within the score threshold (the score is
 * recomputed exactly afterwards: rescore). Parameters after the query vector (`$1`, passed by the
 * caller per vector) are in `params`.
 */
export function nearestSql(table: string, scope: CacheScope, opts: QueryOptions): { sql: string; params: unknown[] } {
  const now = opts.now ?? Date.now();
  const scopeCols = scopeEntries(scope);
  // $1 query vector, $2 scope key, $3 now, $4 limit, $5 max distance, then one per scope column.
  const where = scopeCols.map(([f], i) => `${COLUMN[f]} = $${i + 6}`).join(" and ");
  const sql = `
      select c.id, c.tenant_id, c.task, c.prompt_version, c.schema_version, c.provider, c.model, c.params_hash,
             c.embedder_id, c.namespace, c.embedding::text as embedding, c.text, c.output,
             c.source_item_id::float8 as source_item_id, c.created_at::float8 as created_at, c.expires_at::float8 as expires_at
      from (
        select *, embedding <=> $1::vector as distance from ${table}
        where scope_key = $2 and ${where} and (expires_at is null or expires_at > $3::bigint)
        order by embedding <=> $1::vector
        limit $4
      ) c
      where c.distance <= $5`;
  const params = [scopeKey(scope), Math.trunc(now), Math.max(1, Math.trunc(opts.limit)), 1 - opts.minScore + BACKEND_SCORE_SLACK, ...scopeCols.map(([, v]) => v)];
  return { sql, params };
}

/** `where` text and parameters for a partial scope; placeholders start at `$first`. */
export function partialWhere(scope: Partial<CacheScope> | undefined, first: number): [string, string[]] {
  const entries = scopeEntries(scope);
  if (entries.length === 0) return ["true", []];
  return [entries.map(([f], i) => `${COLUMN[f]} = $${first + i}`).join(" and "), entries.map(([, v]) => v)];
}

export function rowToEntry(r: Row): VectorEntry {
  return {
    id: r.id,
    // pgvector prints the shortest decimal that round-trips float32: fround restores the stored value.
    vector: (JSON.parse(r.embedding) as number[]).map(Math.fround),
    scope: {
      tenantId: r.tenant_id,
      task: r.task,
      promptVersion: r.prompt_version,
      schemaVersion: r.schema_version,
      provider: r.provider,
      model: r.model,
      paramsHash: r.params_hash,
      embedderId: r.embedder_id,
      namespace: r.namespace,
    },
    text: r.text,
    output: r.output,
    sourceItemId: r.source_item_id,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
  };
}
