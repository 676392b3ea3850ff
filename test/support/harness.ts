/**
 * End-to-end harness: a fresh Postgres database, a unique Redis prefix, the provider simulator,
 * the API on a free port and (optionally) in-process workers. Providers are configured the way a
 * user would point Sieve at a provider: OPENAI_BASE_URL/OPENAI_API_KEY etc., at the simulator.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { Queue } from "bullmq";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { parseEnv, providerEndpoints, createLogger, queryRows, type Env } from "@sieve/shared";
import { createTestDb, deleteRedisPrefix, testPrefix, type TestDb } from "@sieve/shared/db/testing";
import { addApiKey } from "@sieve/shared/db/ops/tenants";
import { startSimulator, type SimulatorFaults } from "@sieve/simulator";
import { startApi, type ApiHandle } from "@sieve/producer/server";
import { cacheConsumers, startWorkers, type WorkersHandle } from "@sieve/workers";

export interface Harness {
  env: Env;
  envVars: Record<string, string>;
  db: TestDb;
  sim: Awaited<ReturnType<typeof startSimulator>>;
  api: ApiHandle;
  workers?: WorkersHandle;
  keys: Record<string, string>;
  /** fetch against the API with a tenant's key. */
  call(tenant: string, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; text: string }>;
  startWorkers(overrides?: Partial<{ lockDurationMs: number; sweepEveryMs: number; staleAfterMs: number }>): Promise<WorkersHandle>;
  /** Starts workers in a child process (for SIGKILL tests). */
  spawnWorkerProcess(extraEnv?: Record<string, string>): ChildProcess;
  close(): Promise<void>;
}

export interface HarnessOptions {
  faults?: SimulatorFaults;
  /** Enable the provider Batch API lane with fast ticks; `env` can override any of it. */
  batchLane?: boolean;
  /** Initial knobs of the simulated batch APIs (phase length, expiry, failures...). */
  batchKnobs?: import("@sieve/simulator").BatchKnobs;
  env?: Record<string, string>;
  workers?: boolean;
  tenants?: string[];
  /** Logger of the API and in-process workers (default: silent); tests that read the logs pass one. */
  log?: import("@sieve/shared").Logger;
  /** Simulator reference mode: known answers with noise (docs/quality.md). */
  answers?: import("@sieve/simulator").ReferenceAnswers;
}

const silent = createLogger({ level: process.env.TEST_LOG_LEVEL ?? "silent" });

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const db = await createTestDb("sieve_e2e");
  const sim = await startSimulator({ port: 0, ...(opts.faults ? { faults: opts.faults } : {}), ...(opts.batchKnobs ? { batch: opts.batchKnobs } : {}), ...(opts.answers ? { answers: opts.answers } : {}) });
  const envVars: Record<string, string> = {
    PORT: "0",
    HOST: "127.0.0.1",
    REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    DATABASE_URL: db.url,
    SIEVE_QUEUE_PREFIX: testPrefix("e2e"),
    OPENAI_API_KEY: "sk-test-openai-key-123456",
    OPENAI_BASE_URL: `${sim.url}/v1`,
    ANTHROPIC_API_KEY: "sk-ant-test-key-123456",
    ANTHROPIC_BASE_URL: sim.url,
    VLLM_BASE_URL: `${sim.url}/vllm/v1`,
    VLLM_MODEL: "Qwen/Qwen2.5-7B-Instruct-AWQ",
    SIEVE_ROUTE_CLASSIFY: "openai:gpt-4.1-mini",
    SIEVE_ROUTE_TRANSLATE: "openai:gpt-4.1-mini",
    SIEVE_RETRY_BASE_MS: "200",
    SIEVE_CALL_TIMEOUT_MS: "5000",
    LOG_LEVEL: "silent",
    // The semantic cache loads an embedding model: only the suites that test it turn it on.
    SIEVE_SEMANTIC_CACHE: "off",
    // Batch lane: short ticks and leases so tests see the whole lifecycle in seconds.
    ...(opts.batchLane
      ? { SIEVE_BATCH_LANE: "true", SIEVE_BATCH_PACK_EVERY_MS: "1000", SIEVE_BATCH_POLL_EVERY_MS: "500", SIEVE_BATCH_LEASE_MS: "4000" }
      : {}),
    ...opts.env,
  };
  const env = parseEnv(envVars);
  const endpoints = providerEndpoints(env);
  const log = opts.log ?? silent;
  // As the composition root wires it (apps/cli/src/roles.ts): the caches' consumers beside the API's caches.
  const api = await startApi({ env, db: db.db, endpoints, log, vectorDataDir: "memory://", cacheConsumers: cacheConsumers({ env, db: db.db, endpoints, log }) });
  const keys: Record<string, string> = {};
  for (const t of opts.tenants ?? ["acme", "globex"]) {
    keys[t] = `sk-sieve-test-${t}-${Math.random().toString(36).slice(2)}`;
    await addApiKey(db.db, t, keys[t]!);
  }
  const children = new Set<ChildProcess>();
  const h: Harness = {
    env,
    envVars,
    db,
    sim,
    api,
    keys,
    async call(tenant, method, path, body, headers = {}) {
      const res = await fetch(`${api.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${keys[tenant] ?? tenant}`, ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
        ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      return { status: res.status, body: parsed, text };
    },
    async startWorkers(o = {}) {
      h.workers = await startWorkers({ env, db: db.db, endpoints, log, lockDurationMs: o.lockDurationMs ?? 5_000, sweepEveryMs: o.sweepEveryMs ?? 0, staleAfterMs: o.staleAfterMs ?? 60_000 });
      return h.workers;
    },
    spawnWorkerProcess(extraEnv = {}) {
      const script = fileURLToPath(new URL("./worker-process.ts", import.meta.url));
      const child = spawn(process.execPath, ["--import", "tsx", script], {
        env: { ...process.env, ...envVars, SIEVE_ROLE: "workers", ...extraEnv },
        stdio: ["ignore", "inherit", "inherit"],
      });
      children.add(child);
      child.on("exit", () => children.delete(child));
      return child;
    },
    async close() {
      for (const c of children) c.kill("SIGKILL");
      try {
        await h.workers?.close();
        await api.close();
        await sim.close();
        await db.drop();
      } finally {
        // Last, once nothing writes any more: the shared Redis keeps no key of this suite.
        await deleteRedisPrefix(env.REDIS_URL, env.SIEVE_QUEUE_PREFIX);
      }
    },
  };
  if (opts.workers ?? true) await h.startWorkers();
  return h;
}

/** Polls GET /v1/jobs/:id until it is no longer pending. */
export async function waitForJob(h: Harness, tenant: string, jobId: string, timeoutMs = 60_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await h.call(tenant, "GET", `/v1/jobs/${jobId}?wait=2s&limit=10000`);
    if (r.status !== 200) throw new Error(`GET job ${jobId}: ${r.status} ${r.text}`);
    if (r.body.status !== "pending") return r.body;
  }
  throw new Error(`job ${jobId} still pending after ${timeoutMs} ms`);
}

/** Waits until the harness's queue `name` has no waiting, active, delayed or prioritized job. */
export async function waitForQueueDrained(h: Harness, name: string, timeoutMs = 120_000): Promise<void> {
  const q = new Queue(name, { connection: { url: h.env.REDIS_URL }, prefix: h.env.SIEVE_QUEUE_PREFIX });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const c = await q.getJobCounts("waiting", "active", "delayed", "prioritized");
      if ((c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0) === 0) return;
      if (Date.now() >= deadline) throw new Error(`${name} queue not drained after ${timeoutMs} ms: ${JSON.stringify(c)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await q.close();
  }
}

export const LABELS = ["World", "Sports", "Business", "Sci/Tech"];

/** A job's result counts: items, results, distinct items with a result, ok results (one result per item is the invariant). */
export async function jobIntegrity(h: Harness, jobId: string): Promise<{ items: number; results: number; distinct: number; ok: number }> {
  const [row] = await queryRows<{ items: number; results: number; distinct: number; ok: number }>(
    h.db.db,
    sql`select (select count(*)::int from items where job_id = ${jobId}) as items, count(*)::int as results,
               count(distinct item_id)::int as distinct, count(*) filter (where status = 'ok')::int as ok from results where job_id = ${jobId}`,
  );
  return row!;
}
