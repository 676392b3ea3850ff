/**
 * The pgvector store's table: its DDL (scope, LRU and expiry indexes, the HNSW index on the
 * embedding), the check that an existing table holds vectors of the embedder's size, and the
 * session settings of HNSW scans. Idempotent: run at every start.
 */
import type { PGlite } from "@electric-sql/pglite";
import { ConfigError } from "@sieve/shared/errors";

export interface PgVectorSchema {
  table: string;
  dimensions: number;
  index: "hnsw" | "none";
  efSearch: number;
}

/** Creates the table and its indexes when missing; throws ConfigError when it stores vectors of another size. */
export async function ensureSchema(db: PGlite, s: PgVectorSchema): Promise<void> {
  const t = s.table;
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
      embedding vector(${s.dimensions}) not null,
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
  if (dims !== s.dimensions) {
    throw new ConfigError(
      `table "${t}" stores ${dims}-d vectors but the embedder makes ${s.dimensions}-d ones: use another table name or drop the table`,
    );
  }
  if (s.index === "hnsw") {
    await db.exec(`create index if not exists ${t}_embedding_hnsw on ${t} using hnsw (embedding vector_cosine_ops)`);
    // Session settings: this connection is the only one (PGlite is single-session).
    await db.exec(`set hnsw.iterative_scan = relaxed_order; set hnsw.ef_search = ${Math.trunc(s.efSearch)}`);
  }
}
