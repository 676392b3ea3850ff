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
 *
 * This module is the store (its options, plan choice and counts); the table is defined in
 * pgvector-schema.ts and the SQL and row layout in pgvector-sql.ts.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { PGlite } from "@electric-sql/pglite";
import { encodeBinaryCopy, type CopyValue } from "./pg-binary.js";
import { ensureSchema } from "./pgvector-schema.js";
import { COLUMNS, ON_CONFLICT, PLAN_SETTINGS, RETURNING, entryRow, nearestSql, partialWhere, rowToEntry, valuesInsertSql, type InsertedRow, type Row } from "./pgvector-sql.js";
import { assertFullScope, rescore, scopeEntries, scopeKey, toStoredVector, validateQueryOptions } from "./scope.js";
import type { CacheScope, QueryOptions, VectorEntry, VectorHit, VectorStore } from "./types.js";

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

/** Up to this many rows go through a plain INSERT; more through binary COPY. */
const SMALL_WRITE = 32;

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
    await ensureSchema(this.db, { table: this.table, dimensions: this.dimensions, index: this.index, efSearch: this.efSearch });
  }

  async upsert(entries: VectorEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await this.init();
    // One statement cannot update a row twice (ON CONFLICT): the last entry of an id wins.
    const byId = new Map<string, VectorEntry>();
    for (const e of entries) byId.set(e.id, e);
    const rows = [...byId.values()].map((e) => entryRow(e, this.dimensions));
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
    const { sql, params } = valuesInsertSql(this.table, rows);
    const res = await this.pglite.query<InsertedRow>(sql, params);
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

  async query(vector: number[], scope: CacheScope, opts: QueryOptions): Promise<VectorHit[]> {
    const [hits] = await this.queryMany([vector], scope, opts);
    return hits ?? [];
  }

  async queryMany(vectors: number[][], scope: CacheScope, opts: QueryOptions): Promise<VectorHit[][]> {
    assertFullScope(scope);
    validateQueryOptions(opts);
    await this.init();
    const { sql, params } = nearestSql(this.table, scope, opts);
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
    const { sql, params } = nearestSql(this.table, scope, opts);
    const plan = await this.planFor(scopeKey(scope));
    const explain = await this.pglite.transaction(async (tx) => {
      await tx.exec(PLAN_SETTINGS[plan]);
      const res = await tx.query<Record<string, string>>(`explain ${sql}`, [`[${toStoredVector(vector, this.dimensions).join(",")}]`, ...params]);
      return res.rows.map((r) => Object.values(r)[0]).join("\n");
    });
    return { plan, explain };
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
