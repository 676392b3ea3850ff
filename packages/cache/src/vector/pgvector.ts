/**
 * The embedded vector store: pgvector inside PGlite (embedded Postgres, WASM, in-process).
 *
 * One table (default `semantic_cache`) with an HNSW index (cosine) on the embedding, a btree on a
 * hash of the full scope, and btrees for LRU and expiry. Queries filter on every scope column and
 * on expiry and take the nearest candidates, through the HNSW index for big scopes and by an exact
 * scan of the scope's rows for small ones (planFor); the score is then recomputed exactly in Sieve
 * (see VectorHit.score). pgvector >= 0.8 iterative index scans (`hnsw.iterative_scan =
 * relaxed_order`) keep filtered HNSW queries from coming back short. `index: "none"`: exact scans
 * only (slower on big scopes, exact recall).
 *
 * Only PGlite is supported here (bulk writes use PGlite's `/dev/blob` COPY); a server Postgres
 * with pgvector would need the same SQL through node-postgres plus a COPY stream.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { PGlite } from "@electric-sql/pglite";
import { ConfigError } from "@sieve/shared/errors";
import { encodeBinaryCopy, type CopyValue } from "./pg-binary.js";
import { BACKEND_SCORE_SLACK, SCOPE_STORAGE_KEY, assertFullScope, rescore, scopeEntries, scopeKey, toStoredVector, validateQueryOptions } from "./scope.js";
import type { CacheScope, QueryOptions, ScopeField, VectorEntry, VectorHit, VectorStore } from "./types.js";

export interface PgVectorStoreOptions {
  /** Vector length (the column is `vector(dimensions)`). */
  dimensions: number;
  /**
   * An open PGlite with the `vector` extension loaded, e.g. `DbHandle.pglite` from openDb. The store
   * does not close it. When absent, the store opens (and closes) its own PGlite at `dataDir`.
   */
  pglite?: PGlite | undefined;
  /** Data directory of the store's own PGlite; `memory://` keeps it in memory. @defaultValue "memory://" */
  dataDir?: string | undefined;
  /** Table name ([a-z_][a-z0-9_]*). @defaultValue "semantic_cache" */
  table?: string | undefined;
  /** Vector index. "none": exact scans. @defaultValue "hnsw" */
  index?: "hnsw" | "none" | undefined;
  /** `hnsw.ef_search`: candidates the HNSW scan keeps; higher is slower and finds more. @defaultValue 100 */
  efSearch?: number | undefined;
  /** Rows per bulk write. @defaultValue 2000 */
  writeBatch?: number | undefined;
  /**
   * Scopes holding fewer entries than this (or under 1% of the table) are searched exactly (a
   * scan of the scope's rows, via the scope index); larger ones through the HNSW index.
   * 0: always HNSW. @defaultValue 1000
   */
  exactScanBelow?: number | undefined;
}

const COLUMN = SCOPE_STORAGE_KEY;

/**
 * Planner settings per plan (SET LOCAL: this transaction only). HNSW: no sequential, bitmap or
 * sort-based plan, which leaves the index's ordered scan. Exact: no index scan (the HNSW scan is
 * one), which leaves the scope index's bitmap scan or a sequential scan plus a top-N sort.
 */
const PLAN_SETTINGS = {
  hnsw: "set local enable_seqscan = off; set local enable_bitmapscan = off; set local enable_sort = off",
  exact: "set local enable_indexscan = off",
} as const;

/** Column order of copyRow(). */
const COLUMNS =
  "id, tenant_id, task, prompt_version, schema_version, provider, model, params_hash, embedder_id, namespace, scope_key, embedding, text, output, source_item_id, created_at, expires_at, last_used_at";
const ON_CONFLICT = `on conflict (id) do update set
  tenant_id = excluded.tenant_id, task = excluded.task, prompt_version = excluded.prompt_version,
  schema_version = excluded.schema_version, provider = excluded.provider, model = excluded.model,
  params_hash = excluded.params_hash, embedder_id = excluded.embedder_id, namespace = excluded.namespace,
  scope_key = excluded.scope_key, embedding = excluded.embedding, text = excluded.text, output = excluded.output,
  source_item_id = excluded.source_item_id, created_at = excluded.created_at, expires_at = excluded.expires_at,
  last_used_at = excluded.last_used_at`;
/** `xmax = 0` is true for a freshly inserted row, false for one ON CONFLICT updated. */
const RETURNING = "returning (xmax = 0) as inserted, scope_key";
interface InsertedRow {
  inserted: boolean;
  scope_key: string;
}
/** Up to this many rows go through a plain INSERT; more through binary COPY. */
const SMALL_WRITE = 32;

interface Row {
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

export class PgVectorStore implements VectorStore {
  readonly dimensions: number;
  readonly table: string;
  private readonly index: "hnsw" | "none";
  private readonly efSearch: number;
  private readonly writeBatch: number;
  private readonly exactScanBelow: number;
  /** Entries per scope key and in the table, counted on first use and kept current by writes (plan choice only). */
  private readonly scopeCounts = new Map<string, number>();
  private totalRows: number | undefined;
  private readonly dataDir: string;
  private db: PGlite | undefined;
  private readonly ownsDb: boolean;
  private ready: Promise<void> | undefined;

  constructor(opts: PgVectorStoreOptions) {
    if (!Number.isInteger(opts.dimensions) || opts.dimensions < 1 || opts.dimensions > 16000) {
      throw new RangeError("dimensions must be an integer in 1..16000 (pgvector's limit)");
    }
    this.dimensions = opts.dimensions;
    this.table = opts.table ?? "semantic_cache";
    if (!/^[a-z_][a-z0-9_]{0,50}$/.test(this.table)) throw new RangeError(`invalid table name "${this.table}"`);
    this.index = opts.index ?? "hnsw";
    this.efSearch = opts.efSearch ?? 100;
    this.writeBatch = opts.writeBatch ?? 2000;
    this.exactScanBelow = opts.exactScanBelow ?? 1000;
    this.dataDir = opts.dataDir ?? "memory://";
    this.db = opts.pglite;
    this.ownsDb = !opts.pglite;
  }

  /** The PGlite this store uses (after init). */
  get pglite(): PGlite {
    if (!this.db) throw new Error("PgVectorStore: call init() first");
    return this.db;
  }

  init(): Promise<void> {
    this.ready ??= this.doInit().catch((e: unknown) => {
      this.ready = undefined;
      throw e;
    });
    return this.ready;
  }

  private async doInit(): Promise<void> {
    if (!this.db) {
      const { PGlite } = await import("@electric-sql/pglite");
      const { vector } = await import("@electric-sql/pglite-pgvector");
      if (!this.dataDir.startsWith("memory://")) mkdirSync(path.resolve(this.dataDir), { recursive: true });
      this.db = await PGlite.create(this.dataDir, { extensions: { vector } });
    }
    const db = this.db;
    const t = this.table;
    await db.exec(`create extension if not exists vector`);
    await db.exec(`
      create table if not exists ${t} (
        id text primary key,
        tenant_id text not null,
        task text not null,
        prompt_version text not null,
        schema_version text not null,
        provider text not null,
        model text not null,
        params_hash text not null,
        embedder_id text not null,
        namespace text not null,
        scope_key text not null,
        embedding vector(${this.dimensions}) not null,
        text text not null,
        output jsonb not null,
        source_item_id bigint,
        created_at bigint not null,
        expires_at bigint,
        last_used_at bigint not null
      );
      -- A 512-d vector is 2 KB: with the default (extended) storage every row would be TOASTed and
      -- every scan would detoast. Plain storage keeps it inline (pgvector README, "Storage").
      alter table ${t} alter column embedding set storage plain;
      create index if not exists ${t}_scope_idx on ${t} (scope_key);
      create index if not exists ${t}_lru_idx on ${t} (last_used_at, created_at, id);
      create index if not exists ${t}_expires_idx on ${t} (expires_at) where expires_at is not null;
    `);
    const typmod = await db.query<{ atttypmod: number }>(
      `select a.atttypmod from pg_attribute a where a.attrelid = $1::regclass and a.attname = 'embedding'`,
      [t],
    );
    const dims = typmod.rows[0]?.atttypmod;
    if (dims !== this.dimensions) {
      throw new ConfigError(
        `table "${t}" stores ${dims}-d vectors but the embedder makes ${this.dimensions}-d ones: use another table name or drop the table`,
      );
    }
    if (this.index === "hnsw") {
      await db.exec(`create index if not exists ${t}_embedding_hnsw on ${t} using hnsw (embedding vector_cosine_ops)`);
      // Session settings: this connection is the only one (PGlite is single-session).
      await db.exec(`set hnsw.iterative_scan = relaxed_order; set hnsw.ef_search = ${Math.trunc(this.efSearch)}`);
    }
  }

  async upsert(entries: VectorEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await this.init();
    // One statement cannot update a row twice (ON CONFLICT): the last entry of an id wins.
    const byId = new Map<string, VectorEntry>();
    for (const e of entries) byId.set(e.id, e);
    const rows = [...byId.values()].map((e) => this.copyRow(e));
    for (let i = 0; i < rows.length; i += this.writeBatch) {
      const batch = rows.slice(i, i + this.writeBatch);
      const inserted = batch.length <= SMALL_WRITE ? await this.insertValues(batch) : await this.insertCopy(batch);
      this.countInserted(inserted);
    }
  }

  /** Keeps the plan-choice counts current: only rows that were new (not replaced) add up. */
  private countInserted(rows: Array<{ inserted: boolean; scope_key: string }>): void {
    for (const r of rows) {
      if (!r.inserted) continue;
      if (this.totalRows !== undefined) this.totalRows++;
      const n = this.scopeCounts.get(r.scope_key);
      if (n !== undefined) this.scopeCounts.set(r.scope_key, n + 1);
    }
  }

  /** After deletes: recount lazily. */
  private forgetCounts(): void {
    this.scopeCounts.clear();
    this.totalRows = undefined;
  }

  /** Few rows (the steady state: results landing): one parameterised multi-row INSERT. */
  private async insertValues(rows: CopyValue[][]): Promise<InsertedRow[]> {
    const params: unknown[] = [];
    const tuples = rows.map((row) => {
      const ph = row.map((v) => {
        params.push(v.kind === "vector" ? `[${v.value.join(",")}]` : v.value);
        const n = params.length;
        return v.kind === "vector" ? `$${n}::vector` : v.kind === "jsonb" ? `$${n}::jsonb` : v.kind === "int8" ? `$${n}::bigint` : `$${n}`;
      });
      return `(${ph.join(", ")})`;
    });
    const res = await this.pglite.query<InsertedRow>(`insert into ${this.table} (${COLUMNS}) values ${tuples.join(", ")} ${ON_CONFLICT} ${RETURNING}`, params);
    return res.rows;
  }

  /** Many rows (bulk fills): binary COPY into a staging table, then one INSERT ... SELECT. */
  private async insertCopy(rows: CopyValue[][]): Promise<InsertedRow[]> {
    const t = this.table;
    const blob = encodeBinaryCopy(rows);
    return this.pglite.transaction(async (tx) => {
      await tx.exec(`create temp table ${t}_stage (like ${t} including defaults) on commit drop`);
      await tx.query(`copy ${t}_stage (${COLUMNS}) from '/dev/blob' with (format binary)`, [], { blob });
      const res = await tx.query<InsertedRow>(`insert into ${t} (${COLUMNS}) select ${COLUMNS} from ${t}_stage ${ON_CONFLICT} ${RETURNING}`);
      return res.rows;
    });
  }

  private copyRow(e: VectorEntry): CopyValue[] {
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
      { kind: "vector", value: toStoredVector(e.vector, this.dimensions) },
      text(e.text),
      { kind: "jsonb", value: JSON.stringify(e.output ?? null) },
      { kind: "int8", value: e.sourceItemId },
      { kind: "int8", value: Math.trunc(e.createdAt) },
      { kind: "int8", value: e.expiresAt === null ? null : Math.trunc(e.expiresAt) },
      { kind: "int8", value: Math.trunc(e.createdAt) },
    ];
  }

  async query(vector: number[], scope: CacheScope, opts: QueryOptions): Promise<VectorHit[]> {
    const [hits] = await this.queryMany([vector], scope, opts);
    return hits ?? [];
  }

  async queryMany(vectors: number[][], scope: CacheScope, opts: QueryOptions): Promise<VectorHit[][]> {
    assertFullScope(scope);
    validateQueryOptions(opts);
    await this.init();
    const { sql, params } = this.querySql(scope, opts);
    const plan = await this.planFor(scopeKey(scope));
    return this.pglite.transaction(async (tx) => {
      await tx.exec(PLAN_SETTINGS[plan]);
      const out: VectorHit[][] = [];
      for (const raw of vectors) {
        const q = toStoredVector(raw, this.dimensions);
        const res = await tx.query<Row>(sql, [`[${q.join(",")}]`, ...params]);
        out.push(rescore(q, res.rows.map(rowToEntry), opts));
      }
      return out;
    });
  }

  /** The plan (PostgreSQL EXPLAIN text) a query would run with: for tests and for operators. */
  async explainQuery(vector: number[], scope: CacheScope, opts: QueryOptions): Promise<{ plan: "hnsw" | "exact"; explain: string }> {
    await this.init();
    const { sql, params } = this.querySql(scope, opts);
    const plan = await this.planFor(scopeKey(scope));
    const explain = await this.pglite.transaction(async (tx) => {
      await tx.exec(PLAN_SETTINGS[plan]);
      const res = await tx.query<Record<string, string>>(`explain ${sql}`, [`[${toStoredVector(vector, this.dimensions).join(",")}]`, ...params]);
      return res.rows.map((r) => Object.values(r)[0]).join("\n");
    });
    return { plan, explain };
  }

  private querySql(scope: CacheScope, opts: QueryOptions): { sql: string; params: unknown[] } {
    const now = opts.now ?? Date.now();
    const scopeCols = scopeEntries(scope);
    // $1 query vector, $2 scope key, $3 now, $4 limit, $5 max distance, then one per scope column.
    const where = scopeCols.map(([f], i) => `${COLUMN[f]} = $${i + 6}`).join(" and ");
    const sql = `
      select c.id, c.tenant_id, c.task, c.prompt_version, c.schema_version, c.provider, c.model, c.params_hash,
             c.embedder_id, c.namespace, c.embedding::text as embedding, c.text, c.output,
             c.source_item_id::float8 as source_item_id, c.created_at::float8 as created_at, c.expires_at::float8 as expires_at
      from (
        select *, embedding <=> $1::vector as distance from ${this.table}
        where scope_key = $2 and ${where} and (expires_at is null or expires_at > $3::bigint)
        order by embedding <=> $1::vector
        limit $4
      ) c
      where c.distance <= $5`;
    const params = [scopeKey(scope), Math.trunc(now), Math.max(1, Math.trunc(opts.limit)), 1 - opts.minScore + BACKEND_SCORE_SLACK, ...scopeCols.map(([, v]) => v)];
    return { sql, params };
  }

  /**
   * HNSW or an exact scan of the scope. PGlite runs no autovacuum, so table statistics go stale and
   * the planner's own choice flips unpredictably (it picked exact scans of 3,000+ rows, 5x slower
   * than HNSW, in the benchmark): Sieve decides from the scope's size instead.
   */
  private async planFor(key: string): Promise<"hnsw" | "exact"> {
    if (this.index === "none") return "exact";
    if (this.exactScanBelow <= 0) return "hnsw";
    let n = this.scopeCounts.get(key);
    if (n === undefined) {
      const r = await this.pglite.query<{ n: number }>(`select count(*)::int as n from ${this.table} where scope_key = $1`, [key]);
      n = r.rows[0]?.n ?? 0;
      this.scopeCounts.set(key, n);
    }
    if (this.totalRows === undefined) {
      const r = await this.pglite.query<{ n: number }>(`select count(*)::int as n from ${this.table}`);
      this.totalRows = r.rows[0]?.n ?? 0;
    }
    // Under 1% of the table, the HNSW iterative scan would wade through many out-of-scope tuples.
    return n >= this.exactScanBelow && n * 100 >= this.totalRows ? "hnsw" : "exact";
  }

  async touch(ids: string[], at: number): Promise<void> {
    if (ids.length === 0) return;
    await this.init();
    // greatest(): a late, out-of-order touch never moves an entry back in LRU order.
    await this.pglite.query(`update ${this.table} set last_used_at = greatest(last_used_at, $2::bigint) where id = any($1::text[])`, [
      [...new Set(ids)],
      Math.trunc(at),
    ]);
  }

  async count(scope?: Partial<CacheScope>): Promise<number> {
    await this.init();
    const [where, params] = partialWhere(scope, 1);
    const res = await this.pglite.query<{ n: number }>(`select count(*)::int as n from ${this.table} where ${where}`, params);
    return res.rows[0]?.n ?? 0;
  }

  async evict(opts: { maxEntries: number; scope?: Partial<CacheScope> }): Promise<number> {
    if (!Number.isInteger(opts.maxEntries) || opts.maxEntries < 0) throw new RangeError("maxEntries must be a non-negative integer");
    await this.init();
    this.forgetCounts();
    const [where, params] = partialWhere(opts.scope, 2);
    const res = await this.pglite.query<{ n: number }>(
      `with victims as (
         select id from ${this.table} where ${where}
         order by last_used_at asc, created_at asc, id asc
         limit greatest(0, (select count(*) from ${this.table} where ${where}) - $1::bigint)
       ), deleted as (
         delete from ${this.table} where id in (select id from victims) returning 1
       )
       select count(*)::int as n from deleted`,
      [opts.maxEntries, ...params],
    );
    return res.rows[0]?.n ?? 0;
  }

  async deleteExpired(now: number): Promise<number> {
    await this.init();
    this.forgetCounts();
    const res = await this.pglite.query<{ n: number }>(
      `with d as (delete from ${this.table} where expires_at <= $1::bigint returning 1) select count(*)::int as n from d`,
      [Math.trunc(now)],
    );
    return res.rows[0]?.n ?? 0;
  }

  async deleteScope(scope: Partial<CacheScope>): Promise<number> {
    if (scopeEntries(scope).length === 0) throw new RangeError("deleteScope needs at least one scope field");
    await this.init();
    this.forgetCounts();
    const [where, params] = partialWhere(scope, 1);
    const res = await this.pglite.query<{ n: number }>(
      `with d as (delete from ${this.table} where ${where} returning 1) select count(*)::int as n from d`,
      params,
    );
    return res.rows[0]?.n ?? 0;
  }

  async close(): Promise<void> {
    const db = this.db;
    this.ready = undefined;
    if (this.ownsDb && db) {
      this.db = undefined;
      await db.close();
    }
  }
}

/** `where` text and parameters for a partial scope; placeholders start at `$first`. */
function partialWhere(scope: Partial<CacheScope> | undefined, first: number): [string, string[]] {
  const entries = scopeEntries(scope);
  if (entries.length === 0) return ["true", []];
  return [entries.map(([f], i) => `${COLUMN[f]} = $${first + i}`).join(" and "), entries.map(([, v]) => v)];
}

function rowToEntry(r: Row): VectorEntry {
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
