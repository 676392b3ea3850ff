/**
 * Outages are weather (docs/operations.md#outages): against a Postgres cluster and a redis-server
 * of the test's own, stopped and restarted mid-run (Redis restarted EMPTY, as without persistence
 * or after a failover to a lagging replica), the worker processes stay alive, every accepted item
 * ends with exactly one result without anyone restarting anything, the API answers 503 +
 * Retry-After (never 500) while a dependency is away, /readyz goes 503 then 200, /metrics shows
 * the outage, and the logs hold JSON lines only, one per outage per process.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { createLogger, openDb, parseEnv, providerEndpoints, queryOne, type DbHandle } from "@sieve/shared";
import { addApiKey } from "@sieve/shared/db/ops/tenants";
import { startSimulator } from "@sieve/simulator";
import { startApi, type ApiHandle } from "@sieve/producer/server";
import { OwnPostgres, OwnRedis } from "./support/own-services.js";

const LABELS = ["World", "Sports", "Business", "Sci/Tech"];
const KEY = "sk-sieve-test-outages-0123456789";
const skip = OwnPostgres.unavailable();

interface Child {
  proc: ChildProcess;
  lines: string[];
}

describe("outages of Redis and Postgres", { skip }, () => {
  let pgs: OwnPostgres;
  let redis: OwnRedis;
  let sim: Awaited<ReturnType<typeof startSimulator>>;
  let dbh: DbHandle;
  let api: ApiHandle;
  let envVars: Record<string, string>;
  const workers: Child[] = [];
  // What the API process (this one) prints outside its logger: BullMQ and ioredis use the console
  // for errors nobody listens to.
  const consoleLines: string[] = [];
  const original = { error: console.error, warn: console.warn };

  before(async () => {
    console.error = (...args: unknown[]) => {
      consoleLines.push(args.map(String).join(" "));
      original.error(...args);
    };
    console.warn = (...args: unknown[]) => {
      consoleLines.push(args.map(String).join(" "));
      original.warn(...args);
    };
    pgs = await OwnPostgres.create();
    redis = await OwnRedis.start();
    sim = await startSimulator({ port: 0, faults: { latencyMs: 400 } });
    envVars = {
      PORT: "0",
      REDIS_URL: redis.url,
      DATABASE_URL: pgs.url(),
      SIEVE_QUEUE_PREFIX: "outages",
      OPENAI_API_KEY: "sk-test-openai-key-123456",
      OPENAI_BASE_URL: `${sim.url}/v1`,
      SIEVE_ROUTE_CLASSIFY: "openai:gpt-4.1-mini",
      SIEVE_SEMANTIC_CACHE: "off",
      SIEVE_CLASSIFY_MAX_ITEMS: "10",
      SIEVE_CLASSIFY_MAX_WAIT_MS: "50",
      SIEVE_WORKER_CONCURRENCY: "2",
      SIEVE_RETRY_BASE_MS: "200",
      SIEVE_CALL_TIMEOUT_MS: "10000",
      SIEVE_SCHEDULE_CHECK_MS: "1000",
      LOG_LEVEL: "silent",
    };
    const env = parseEnv(envVars);
    dbh = await openDb({ url: pgs.url(), poolSize: 5 });
    await addApiKey(dbh.db, "acme", KEY);
    api = await startApi({ env, db: dbh.db, endpoints: providerEndpoints(env), log: createLogger({ level: "silent" }) });
    for (let i = 0; i < 2; i++) workers.push(spawnWorker(envVars));
    await waitFor("workers ready", async () => workers.every((w) => w.lines.some((l) => l.includes("workers started"))), 60_000);
  });

  after(async () => {
    console.error = original.error;
    console.warn = original.warn;
    // TEST_DUMP_LOGS=1 prints what the worker processes logged (to review the outage lines).
    if (process.env.TEST_DUMP_LOGS) for (const [i, w] of workers.entries()) for (const l of w.lines) console.error(`worker${i} ${l}`);
    for (const w of workers) w.proc.kill("SIGKILL");
    await api?.close().catch(() => {});
    await dbh?.close().catch(() => {});
    await sim?.close();
    await redis?.destroy();
    await pgs?.destroy();
  });

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${api.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${KEY}`, ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(20_000),
    });
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, retryAfter: res.headers.get("retry-after"), body: json, text };
  };

  const bulk = async (tag: string, n: number) => {
    const lines = [JSON.stringify({ task: "classify", labels: LABELS }), ...Array.from({ length: n }, (_, i) => JSON.stringify({ id: `${tag}-${i}`, text: `${tag} bulk line ${i}` }))];
    const res = await fetch(`${api.url}/v1/bulk`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/x-ndjson" }, body: lines.join("\n") + "\n", signal: AbortSignal.timeout(20_000) });
    const text = await res.text();
    return { status: res.status, retryAfter: res.headers.get("retry-after"), body: JSON.parse(text) as any, text };
  };

  const submit = (tag: string, n: number) =>
    call("POST", "/v1/jobs", { task: "classify", labels: LABELS, items: Array.from({ length: n }, (_, i) => ({ id: `${tag}-${i}`, text: `${tag} item ${i}: markets moved on news of a merger` })) });

  /** Every item of every accepted job has exactly one result (polled until so, or the deadline). */
  async function allFinished(jobIds: string[], items: number, timeoutMs: number) {
    const count = () =>
      queryOne<{ items: number; results: number; distinct: number; pending: number }>(
        dbh.db,
        sql`select (select count(*)::int from items) as items, (select count(*)::int from results) as results,
                   (select count(distinct item_id)::int from results) as distinct,
                   (select count(*)::int from jobs where status = 'pending') as pending`,
      );
    await waitFor(`${items} items finished`, async () => (await count()).results >= items && (await count()).pending === 0, timeoutMs);
    const c = await count();
    assert.equal(c.items, items, "every accepted item is in Postgres");
    assert.equal(c.results, items, "every item has a result");
    assert.equal(c.distinct, items, "no item has two results");
    for (const id of jobIds) {
      const r = await call("GET", `/v1/jobs/${id}?limit=0`);
      assert.equal(r.status, 200);
      assert.notEqual(r.body.status, "pending");
    }
  }

  function assertWorkersAliveAndJsonOnly() {
    assert.deepEqual(consoleLines.filter((l) => /ECONNREFUSED|ECONNRESET|Connection is closed|ioredis/.test(l)).slice(0, 5), [], "the API printed no raw connection errors");
    for (const w of workers) {
      assert.equal(w.proc.exitCode, null, `a worker process exited: ${w.lines.slice(-5).join("\n")}`);
      assert.equal(w.proc.signalCode, null);
      const raw = w.lines.filter((l) => l.trim() !== "" && !l.startsWith("worker-process ready") && !isJson(l));
      assert.deepEqual(raw.slice(0, 5), [], "every output line is a JSON log line (no raw stacks)");
    }
  }

  const accepted: string[] = [];
  let acceptedItems = 0;

  test("Postgres stopped mid-run: 503 + Retry-After, workers survive, every item finishes once", async () => {
    for (let j = 0; j < 8; j++) {
      const r = await submit(`pg${j}`, 40);
      assert.equal(r.status, 202, r.text);
      accepted.push(r.body.id);
      acceptedItems += 40;
    }
    // Stop Postgres while results are being written and parcels still wait.
    await waitFor("first results", async () => (await queryOne<{ n: number }>(dbh.db, sql`select count(*)::int as n from results`)).n > 0, 30_000);
    // Lines from here on: a worker can meet the outage (and log it) while pg_ctl is still stopping.
    const mark = workers.map((w) => w.lines.length);
    await pgs.stop("fast");

    const post = await submit("during-pg", 3);
    assert.equal(post.status, 503, post.text);
    assert.equal(post.body.error.code, "unavailable");
    assert.match(post.body.error.message, /Postgres|database/);
    assert.ok(Number(post.retryAfter) > 0, "Retry-After is set");
    const up = await bulk("during-pg", 3);
    assert.equal(up.status, 503, up.text);
    assert.equal(up.body.error.code, "unavailable");
    assert.ok(Number(up.retryAfter) > 0);
    const get = await call("GET", `/v1/jobs/${accepted[0]}`);
    assert.equal(get.status, 503, get.text);
    assert.ok(Number(get.retryAfter) > 0);
    const ready = await call("GET", "/readyz");
    assert.equal(ready.status, 503);
    assert.equal(ready.body.checks.postgres, "unreachable");
    // Long enough for every worker to meet the outage in its fetch loop, calls and locks.
    await new Promise((r) => setTimeout(r, 6_000));
    assertWorkersAliveAndJsonOnly();
    // Each workers process shows the outage on its own /readyz and /metrics.
    for (const w of workers) {
      const r = await fetch(`${workerUrl(w)}/readyz`);
      assert.equal(r.status, 503);
      assert.equal(((await r.json()) as any).checks.postgres, "unreachable");
      assert.match(await (await fetch(`${workerUrl(w)}/metrics`)).text(), /sieve_dependency_up\{role="workers",dependency="postgres"\} 0/);
    }

    await pgs.start();
    await waitFor("/readyz 200", async () => (await call("GET", "/readyz")).status === 200, 30_000);
    await allFinished(accepted, acceptedItems, 90_000);
    assertWorkersAliveAndJsonOnly();
    const down = workers.map((w, i) => w.lines.slice(mark[i]).filter((l) => l.includes("postgres unreachable")).length);
    const back = workers.map((w, i) => w.lines.slice(mark[i]).filter((l) => l.includes("postgres reachable again")).length);
    assert.ok(down.every((n) => n <= 1), `at most one outage line per worker process (${down})`);
    assert.ok(down.some((n) => n === 1), `the outage was logged (${down})`);
    assert.deepEqual(back, down, "each logged outage is followed by one recovery line");
    for (const w of workers) {
      assert.equal((await fetch(`${workerUrl(w)}/readyz`)).status, 200);
      assert.match(await (await fetch(`${workerUrl(w)}/metrics`)).text(), /sieve_dependency_up\{role="workers",dependency="postgres"\} 1/);
    }
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    assert.match(metrics, /sieve_dependency_up\{role="api",dependency="postgres"\} 1/);
    assert.match(metrics, /sieve_dependency_outages_total\{role="api",dependency="postgres"\} [1-9]/);
  });

  test("Redis killed and restarted EMPTY: schedules come back, stranded items finish once", async () => {
    const before = accepted.length;
    // More than the workers can finish before the kill: parcels wait in Redis and are lost with it.
    for (let j = 0; j < 12; j++) {
      const r = await submit(`rd${j}`, 40);
      assert.equal(r.status, 202, r.text);
      accepted.push(r.body.id);
      acceptedItems += 40;
    }
    const sent = sim.stats().requests["POST /v1/chat/completions"] ?? 0;
    await waitFor("calls in flight", async () => (sim.stats().requests["POST /v1/chat/completions"] ?? 0) > sent, 30_000);
    await redis.kill();
    const t0 = Date.now();
    const post = await submit("during-redis", 3);
    assert.equal(post.status, 503, post.text);
    assert.equal(post.body.error.code, "unavailable");
    assert.ok(Number(post.retryAfter) > 0, "Retry-After is set");
    assert.ok(Date.now() - t0 < 15_000, "the API does not hang on a dead Redis");
    // A bulk upload is refused, or stored in Postgres and left to the sweeper to enqueue: never a 500.
    const up = await bulk("during-redis", 4);
    assert.ok(up.status === 503 || up.status === 202, up.text);
    if (up.status === 503) assert.ok(Number(up.retryAfter) > 0);
    else {
      accepted.push(up.body.id);
      acceptedItems += 4;
    }
    // Reads need only Postgres: they keep working.
    assert.equal((await call("GET", `/v1/jobs/${accepted[0]}?limit=0`)).status, 200);
    const ready = await call("GET", "/readyz");
    assert.equal(ready.status, 503);
    assert.equal(ready.body.checks.redis, "unreachable");
    await new Promise((r) => setTimeout(r, 3_000));
    assertWorkersAliveAndJsonOnly();

    await redis.start(); // empty: parcels, locks and job schedulers are gone
    await waitFor("/readyz 200", async () => (await call("GET", "/readyz")).status === 200, 30_000);
    // The sweeper (its schedule re-created by the workers) re-enqueues what Redis lost.
    await allFinished(accepted, acceptedItems, 100_000);
    assert.ok(accepted.length > before);
    assertWorkersAliveAndJsonOnly();
    const logs = workers.flatMap((w) => w.lines);
    assert.ok(logs.some((l) => l.includes("job scheduler was missing")), "the sweeper's schedule was re-created by a worker");
    assert.ok(logs.some((l) => l.includes("sweeper re-enqueued")), "items whose parcels Redis lost were re-enqueued by the sweeper");
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    assert.match(metrics, /sieve_dependency_up\{role="api",dependency="redis"\} 1/);
    assert.match(metrics, /sieve_dependency_outages_total\{role="api",dependency="redis"\} [1-9]/);
    // New work flows again.
    const r = await call("POST", "/v1/jobs?wait=30s", { task: "classify", labels: LABELS, items: [{ id: "after", text: "after the outage" }] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.status, "completed");
  });
});

function workerUrl(w: Child): string {
  for (const l of w.lines) {
    if (!l.includes("worker metrics listening")) continue;
    return (JSON.parse(l) as { url: string }).url;
  }
  throw new Error("the worker did not say where its metrics are");
}

function isJson(line: string): boolean {
  try {
    return typeof JSON.parse(line) === "object";
  } catch {
    return false;
  }
}

function spawnWorker(envVars: Record<string, string>): Child {
  const script = fileURLToPath(new URL("./support/worker-process.ts", import.meta.url));
  const proc = spawn(process.execPath, ["--import", "tsx", script], {
    env: { ...process.env, ...envVars, SIEVE_ROLE: "workers", TEST_LOG_LEVEL: "info", TEST_LOCK_MS: "3000", TEST_SWEEP_MS: "1000", TEST_STALE_MS: "4000", TEST_METRICS_PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const child: Child = { proc, lines: [] };
  let buf = "";
  const onData = (d: Buffer) => {
    buf += d.toString("utf8");
    const parts = buf.split("\n");
    buf = parts.pop() ?? "";
    child.lines.push(...parts);
  };
  proc.stdout!.on("data", onData);
  proc.stderr!.on("data", onData);
  return child;
}

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not reached within ${timeoutMs} ms`);
}
