/**
 * One classifier decides what an outage is: real failures of the real clients (node-postgres,
 * drizzle, ioredis) against a port nobody listens on are outages of the right dependency; a bad
 * statement, a provider's network trouble or a bug are not.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { once } from "node:events";
import pg from "pg";
import { drizzle } from "drizzle-orm/node-postgres";
import { sql } from "drizzle-orm";
import { Redis } from "ioredis";
import { ProviderError } from "./errors.js";
import { DependencyMonitor, classifyInfraError, safeErrorMessage } from "./outages.js";
import { createLogger } from "./logger.js";

async function closedPort(): Promise<number> {
  const s = createServer();
  s.listen(0, "127.0.0.1");
  await once(s, "listening");
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

test("Postgres refusing connections, through drizzle, is a Postgres outage; its message has no parameters", async () => {
  const port = await closedPort();
  const pool = new pg.Pool({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`, connectionTimeoutMillis: 2_000 });
  pool.on("error", () => {});
  const db = drizzle(pool);
  const err = await db.execute(sql`select ${"a secret item text"}::text`).then(() => undefined, (e: unknown) => e);
  await pool.end();
  assert.ok(err, "the query failed");
  assert.equal(classifyInfraError(err, { postgres: port }), "postgres");
  assert.equal(classifyInfraError(err), "postgres", "drizzle's wrapper names Postgres even without the port");
  assert.doesNotMatch(safeErrorMessage(err), /secret item text/);
  assert.match(safeErrorMessage(err), /ECONNREFUSED/);
});

test("a Redis command on a fail-fast connection to a dead Redis is a Redis outage", async () => {
  const port = await closedPort();
  const r = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 1, connectTimeout: 1_000 });
  r.on("error", () => {});
  const err = await r.get("k").then(() => undefined, (e: unknown) => e);
  r.disconnect();
  assert.equal(classifyInfraError(err), "redis");
});

test("Postgres shutting down (57P01) or refusing new sessions (57P03) is an outage; a bad statement is not", () => {
  const pgErr = (code: string) => Object.assign(new Error("x"), { code, severity: "FATAL" });
  assert.equal(classifyInfraError(pgErr("57P01")), "postgres");
  assert.equal(classifyInfraError(pgErr("57P03")), "postgres");
  assert.equal(classifyInfraError(pgErr("08006")), "postgres");
  assert.equal(classifyInfraError(pgErr("25P03")), "postgres", "our silent session was ended mid-transaction: retry the write");
  assert.equal(classifyInfraError(pgErr("42601")), undefined, "syntax error");
  assert.equal(classifyInfraError(pgErr("23505")), undefined, "unique violation");
});

test("a provider's network failure, a bug or a string are not our outage", () => {
  const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:443"), { code: "ECONNREFUSED", port: 443 });
  assert.equal(classifyInfraError(new ProviderError({ provider: "openai", kind: "timeout", message: "connection error", cause: refused })), undefined);
  assert.equal(classifyInfraError(new TypeError("x is undefined")), undefined);
  assert.equal(classifyInfraError("boom"), undefined);
  assert.equal(classifyInfraError(refused), "unknown", "a bare socket error on another port names neither dependency");
});

test("the monitor logs one line per outage and one when a probe sees the dependency back", async () => {
  const lines: Array<{ msg: string; dependency?: string }> = [];
  const { Writable } = await import("node:stream");
  const log = createLogger({ level: "info", destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(JSON.parse(c.toString())), cb()) }) });
  let upNow = false;
  const m = new DependencyMonitor({ role: "test", log, probes: { postgres: async () => { if (!upNow) throw new Error("still down"); } }, probeMs: 20, maxProbeMs: 40, checkEveryMs: 0 });
  const outage = Object.assign(new Error("x"), { code: "57P01", severity: "FATAL" });
  for (let i = 0; i < 50; i++) assert.equal(m.report(outage, "test"), "postgres");
  assert.equal(m.isUp("postgres"), false);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(m.isUp("postgres"), false, "failed probes keep it down");
  upNow = true;
  await m.waitUp("postgres", 5_000);
  assert.equal(m.isUp("postgres"), true);
  m.close();
  assert.deepEqual(lines.map((l) => l.msg), ["postgres unreachable: backing off until it answers again", "postgres reachable again: resuming"]);
});
