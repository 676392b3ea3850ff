/**
 * Test helpers: a fresh real Postgres database per test file, dropped afterwards.
 * Uses TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) as the admin connection.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { openDb, type DbHandle } from "./client.js";

export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export interface TestDb extends DbHandle {
  url: string;
  name: string;
  /** Closes the handle and drops the database. */
  drop(): Promise<void>;
}

export async function createTestDb(prefix = "sieve_test"): Promise<TestDb> {
  const name = `${prefix}_${randomBytes(5).toString("hex")}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const handle = await openDb({ url: url.toString(), poolSize: 10 });
  return {
    ...handle,
    url: url.toString(),
    name,
    async drop() {
      await handle.close();
      const a = new pg.Client({ connectionString: ADMIN_URL });
      await a.connect();
      try {
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}

/** A unique BullMQ prefix per test so suites never see each other's queues. */
export function testPrefix(name = "t"): string {
  return `sievetest-${name}-${randomBytes(4).toString("hex")}`;
}
