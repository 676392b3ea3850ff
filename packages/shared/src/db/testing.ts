/**
 * Test helpers: a fresh real Postgres database per test file, dropped afterwards.
 * Uses TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) as the admin connection.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
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

/**
 * A unique BullMQ prefix per test so suites never see each other's queues. `scripts/test.sh` sets
 * SIEVE_TEST_RUN so that, after the run, it can find every key the run's suites left behind.
 */
export function testPrefix(name = "t"): string {
  const run = process.env.SIEVE_TEST_RUN;
  return `sievetest-${run ? `r${run}-` : ""}${name}-${randomBytes(4).toString("hex")}`;
}

/**
 * QUIT, then wait for the socket to be gone ("end"): a test that checks for leaked handles right
 * after its harness closed must not see this connection.
 */
async function closeFully(r: Redis): Promise<void> {
  const ended = new Promise<void>((resolve) => {
    r.once("end", () => resolve());
    setTimeout(resolve, 2_000).unref();
  });
  await r.quit().catch(() => r.disconnect());
  await ended;
}

/** Redis keys matching a glob pattern, counted with SCAN (never KEYS: the server is shared). */
export async function countRedisKeys(redisUrl: string, pattern: string): Promise<number> {
  const r = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await r.connect();
    let n = 0;
    for await (const keys of r.scanStream({ match: pattern, count: 1000 }) as AsyncIterable<string[]>) n += keys.length;
    return n;
  } finally {
    await closeFully(r);
  }
}

/**
 * Deletes every key under a test's queue prefix (`prefix:*`), for a suite's after hook once its
 * workers and API are closed. Only that prefix is touched: the Redis server is shared.
 */
export async function deleteRedisPrefix(redisUrl: string, prefix: string): Promise<number> {
  if (!/^sievetest-[A-Za-z0-9_-]+$/.test(prefix)) throw new Error(`refusing to delete keys of a non-test prefix: ${prefix}`);
  const r = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await r.connect();
    let n = 0;
    for await (const keys of r.scanStream({ match: `${prefix}:*`, count: 1000 }) as AsyncIterable<string[]>) {
      if (keys.length > 0) n += await r.unlink(...keys);
    }
    return n;
  } finally {
    await closeFully(r);
  }
}
