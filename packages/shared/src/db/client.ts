/**
 * One database handle type for both drivers: node-postgres (a real server, DATABASE_URL) and
 * PGlite (embedded Postgres in-process, with pgvector, when DATABASE_URL is unset).
 */
import { fileURLToPath } from "node:url";
import { mkdirSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePg } from "drizzle-orm/node-postgres";
import { migrate as migratePg } from "drizzle-orm/node-postgres/migrator";
import { sql, type SQL } from "drizzle-orm";
import * as schema from "./schema/index.js";

export { schema };
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface DbHandle {
  db: Db;
  kind: "postgres" | "pglite";
  /** The PGlite instance when embedded (the vector store may share it). */
  pglite?: import("@electric-sql/pglite").PGlite;
  close(): Promise<void>;
}

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../drizzle", import.meta.url));

export interface OpenDbOptions {
  /** postgres://... When absent, an embedded PGlite database is used. */
  url?: string | undefined;
  /** PGlite data directory. `memory://` for an in-memory database. @defaultValue ".sieve/pgdata" */
  dataDir?: string | undefined;
  /** Max pooled connections (node-postgres). @defaultValue 10 */
  poolSize?: number | undefined;
  /** How long to wait for a new connection before the query fails (an unreachable server), in ms. @defaultValue 5000 */
  connectTimeoutMs?: number | undefined;
  /** Run migrations on open. @defaultValue true */
  migrate?: boolean | undefined;
  /**
   * Postgres ends a session of ours that sits inside a transaction without sending anything for
   * this long (idle_in_transaction_session_timeout), rolling it back; 0 leaves the server's
   * setting. See docs/operations.md#a-host-cut-off-mid-transaction. @defaultValue 15000
   */
  idleInTransactionTimeoutMs?: number | undefined;
}

/** Default of OpenDbOptions.idleInTransactionTimeoutMs (and of SIEVE_PG_IDLE_TX_TIMEOUT_MS). */
export const IDLE_IN_TRANSACTION_TIMEOUT_MS = 15_000;

export async function openDb(opts: OpenDbOptions = {}): Promise<DbHandle> {
  const runMigrations = opts.migrate ?? true;
  if (opts.url) {
    // Without a connect timeout a query waits forever for a server that drops packets.
    // Without an idle-in-transaction timeout, a host cut off between two statements of a
    // transaction keeps its row locks (a job's counters, a result's key) until the server notices
    // the dead connection, hours later with default keepalives, and every other worker that
    // touches those rows waits that long (docs/operations.md#a-host-cut-off-mid-transaction).
    const idleTx = opts.idleInTransactionTimeoutMs ?? IDLE_IN_TRANSACTION_TIMEOUT_MS;
    const pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.poolSize ?? 10,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
      ...(idleTx > 0 ? { idle_in_transaction_session_timeout: idleTx } : {}),
    });
    // An idle client erroring (server restart) must not crash the process; the pool replaces it.
    pool.on("error", () => {});
    // pg-pool removes its listener while a client is checked out (a transaction between two
    // statements): a server shutdown then emitted 'error' on that client with no listener, which
    // killed the process. The statement in flight still rejects with the error.
    pool.on("connect", (client) => client.on("error", () => {}));
    const db = drizzlePg(pool, { schema }) as unknown as Db;
    if (runMigrations) await migratePg(drizzlePg(pool), { migrationsFolder: MIGRATIONS_DIR });
    return { db, kind: "postgres", close: () => pool.end() };
  }
  const { PGlite } = await import("@electric-sql/pglite");
  const { vector } = await import("@electric-sql/pglite-pgvector");
  const { drizzle: drizzlePglite } = await import("drizzle-orm/pglite");
  const { migrate: migratePglite } = await import("drizzle-orm/pglite/migrator");
  const dataDir = opts.dataDir ?? ".sieve/pgdata";
  if (!dataDir.startsWith("memory://")) mkdirSync(path.resolve(dataDir), { recursive: true });
  const client = await PGlite.create(dataDir, { extensions: { vector } });
  const db = drizzlePglite(client, { schema }) as unknown as Db;
  if (runMigrations) await migratePglite(drizzlePglite(client), { migrationsFolder: MIGRATIONS_DIR });
  return { db, kind: "pglite", pglite: client, close: () => client.close() };
}

/** Rows of a raw query, whichever driver answered. */
export async function queryRows<T>(db: Db, query: SQL): Promise<T[]> {
  const res = (await db.execute(query)) as unknown as { rows: T[] };
  return res.rows;
}

export async function ping(db: Db): Promise<void> {
  await db.execute(sql`select 1`);
}

/** The single row of a raw query (throws when there is none). */
export async function queryOne<T>(db: Db, query: SQL): Promise<T> {
  const rows = await queryRows<T>(db, query);
  if (rows.length === 0) throw new Error("query returned no row");
  return rows[0]!;
}
