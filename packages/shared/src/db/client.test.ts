/**
 * A session that goes silent inside a transaction (its host was cut off between two statements)
 * must not hold its row locks until Postgres notices the dead connection: openDb asks the server
 * to roll such a session back (docs/operations.md#a-host-cut-off-mid-transaction). Real Postgres.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import { openDb, queryOne, type DbHandle } from "./client.js";
import { createTestDb, type TestDb } from "./testing.js";
import { classifyInfraError } from "../outages.js";

let tdb: TestDb;
before(async () => {
  tdb = await createTestDb("sieve_client");
  await tdb.db.execute(sql`create table counters (id int primary key, n int not null)`);
  await tdb.db.execute(sql`insert into counters values (1, 0)`);
});
after(async () => tdb?.drop());

/**
 * Host A takes the row lock and goes silent for `silentMs`; host B then updates the same row.
 * Returns how long B waited and how A's transaction ended.
 */
async function cutOffMidTransaction(a: DbHandle, silentMs: number): Promise<{ waitedMs: number; aEnded: string; aError?: unknown }> {
  let aError: unknown;
  let locked!: () => void;
  const lockTaken = new Promise<void>((r) => (locked = r));
  const aDone = a.db
    .transaction(async (tx) => {
      await tx.execute(sql`update counters set n = n + 1 where id = 1`);
      locked();
      await sleep(silentMs); // nothing reaches the server: as if the link were down
      await tx.execute(sql`update counters set n = n + 100 where id = 1`);
    })
    .then(
      () => "committed",
      (e: unknown) => {
        aError = e;
        return `failed: ${e instanceof Error ? e.message : String(e)}`;
      },
    );
  await lockTaken;
  const t0 = Date.now();
  await tdb.db.execute(sql`update counters set n = n + 10 where id = 1`);
  const waitedMs = Date.now() - t0;
  const aEnded = await aDone;
  return { waitedMs, aEnded, aError };
}

test("a session silent inside a transaction is rolled back after the timeout, and its locks go with it", async () => {
  const a = await openDb({ url: tdb.url, migrate: false, idleInTransactionTimeoutMs: 1_000 });
  try {
    const counter = async () => (await queryOne<{ n: number }>(tdb.db, sql`select n from counters where id = 1`)).n;
    const before = await counter();
    const { waitedMs, aEnded, aError } = await cutOffMidTransaction(a, 6_000);
    assert.ok(waitedMs >= 800 && waitedMs < 4_000, `the other session waited ${waitedMs} ms: about the 1 s timeout, not until the silent one came back`);
    assert.match(aEnded, /^failed/, "the silent session's transaction did not commit");
    // What the silent host sees once it speaks again is a lost connection, so a write of answers
    // already paid for is retried on a new one (writeRetryingOutages), not given up.
    assert.equal(classifyInfraError(aError), "postgres");
    assert.equal(await counter(), before + 10, "the silent session's first write was rolled back; only the other one's landed");
    // The pool replaces the ended session: the handle keeps working.
    assert.equal((await queryOne<{ one: number }>(a.db, sql`select 1 as one`)).one, 1);
  } finally {
    await a.close();
  }
});

test("with the timeout off (0), the other session waits for as long as the silent one holds the lock", async () => {
  const a = await openDb({ url: tdb.url, migrate: false, idleInTransactionTimeoutMs: 0 });
  try {
    const { waitedMs, aEnded } = await cutOffMidTransaction(a, 3_000);
    assert.ok(waitedMs >= 2_500, `the other session waited ${waitedMs} ms: the whole 3 s the lock was held`);
    assert.equal(aEnded, "committed");
  } finally {
    await a.close();
  }
});
