/**
 * A complete Sieve for one benchmark phase: a fresh Postgres database, a unique BullMQ prefix,
 * the API on a free port and the workers in this process (as `npm start` runs them, SIEVE_ROLE=all),
 * with OpenAI pointed at the simulator process. Plus the two load generators: a closed-loop
 * throughput run and an open-loop steady-load (latency) run.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { Redis } from "ioredis";
import { createLogger, parseEnv, providerEndpoints, type Env } from "@sieve/shared";
import { createTestDb, type TestDb } from "@sieve/shared/db/testing";
import { addApiKey } from "@sieve/shared/db/ops/tenants";
import { startApi, type ApiHandle } from "@sieve/producer/server";
import { cacheConsumers, startWorkers, type WorkersHandle } from "@sieve/workers";
import { cutRequests, distribution, randInt, rng, round, sleep, type Distribution } from "./pipeline-util.js";

export const LABELS = ["World", "Sports", "Business", "Sci/Tech"];
export const TENANT = "bench";
export const KEEP_ALIVE_MS = 65_000;

export interface Item {
  id: string;
  text: string;
}

export interface SieveInstance {
  label: string;
  url: string;
  env: Env;
  /** The env this instance was configured with (recorded in the JSON). */
  envVars: Record<string, string>;
  dbName: string;
  prefix: string;
  /** A separate connection for the benchmark's own queries (not Sieve's pool). */
  obs: pg.Client;
  post(path: string, body: unknown): Promise<{ status: number; body: any }>;
  get(path: string): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

export interface SieveOptions {
  label: string;
  redisUrl: string;
  simUrl: string;
  env?: Record<string, string>;
}

/** Deletes every Redis key under a BullMQ prefix (queues, job data, schedulers). */
export async function deletePrefix(redisUrl: string, prefix: string): Promise<number> {
  const r = new Redis(redisUrl, { maxRetriesPerRequest: 3 });
  r.on("error", () => {});
  let deleted = 0;
  try {
    let cursor = "0";
    do {
      const [next, keys] = await r.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) deleted += await r.unlink(...keys);
    } while (cursor !== "0");
  } finally {
    await r.quit().catch(() => {});
  }
  return deleted;
}

export async function startSieve(o: SieveOptions): Promise<SieveInstance> {
  const log = createLogger({ level: process.env.BENCH_LOG_LEVEL ?? "silent" });
  const db: TestDb = await createTestDb("sieve_bench");
  const prefix = `bench-pipeline-${randomBytes(4).toString("hex")}`;
  const envVars: Record<string, string> = {
    PORT: "0",
    HOST: "127.0.0.1",
    REDIS_URL: o.redisUrl,
    DATABASE_URL: db.url,
    SIEVE_QUEUE_PREFIX: prefix,
    // One provider, pointed at the simulator the way a user points Sieve at any OpenAI-compatible URL.
    OPENAI_API_KEY: "sk-bench-simulator-key",
    OPENAI_BASE_URL: `${o.simUrl}/v1`,
    SIEVE_ROUTE_CLASSIFY: "openai:gpt-4.1-mini",
    // This benchmark measures the spine: no exact/semantic cache, no batch lane. With the
    // caches on, repeated items would be answered without an LLM call and (d)/(e) would measure the
    // caches instead (they have their own benchmark, bench:cache).
    SIEVE_CACHE_ENABLED: "false",
    SIEVE_SEMANTIC_CACHE: "off",
    SIEVE_BATCH_LANE: "false",
    LOG_LEVEL: "silent",
    ...o.env,
  };
  let workers: WorkersHandle | undefined;
  let api: ApiHandle | undefined;
  let obs: pg.Client | undefined;
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= closeOnce());
  const closeOnce = async () => {
    await workers?.close().catch(() => {});
    await api?.close().catch(() => {});
    await obs?.end().catch(() => {});
    await db.drop().catch(() => {});
    await deletePrefix(o.redisUrl, prefix).catch(() => {});
  };
  try {
    const env = parseEnv(envVars);
    const endpoints = providerEndpoints(env);
    // Production defaults for the workers (lock 30 s, sweeper every 30 s), as `npm start` runs them.
    workers = await startWorkers({ env, db: db.db, endpoints, log });
    // vectorDataDir: never write a vector store under the repo's .sieve/ should caches be switched on.
    api = await startApi({ env, db: db.db, endpoints, log, vectorDataDir: "memory://", cacheConsumers: cacheConsumers({ env, db: db.db, endpoints, log }) });
    // Node's default server keep-alive (5 s) races the client's reuse of an idle socket when the
    // machine is CPU-starved (undici then fails the request with ECONNRESET). A load generator
    // artifact, not a Sieve property: keep idle sockets longer than the client does (4 s).
    api.server.keepAliveTimeout = KEEP_ALIVE_MS;
    const key = `sk-sieve-bench-${randomBytes(12).toString("hex")}`;
    await addApiKey(db.db, TENANT, key);
    obs = new pg.Client({ connectionString: db.url });
    await obs.connect();
    const url = api.url;
    const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
    const parse = async (res: Response) => {
      const text = await res.text();
      try {
        return { status: res.status, body: JSON.parse(text) };
      } catch {
        return { status: res.status, body: text };
      }
    };
    return {
      label: o.label,
      url,
      env,
      envVars,
      dbName: db.name,
      prefix,
      obs,
      post: async (path, body) => parse(await fetch(`${url}${path}`, { method: "POST", headers, body: JSON.stringify(body) })),
      get: async (path) => parse(await fetch(`${url}${path}`, { headers })),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

function classifyBody(items: readonly Item[]) {
  return { task: "classify", labels: LABELS, items: items.map(({ id, text }) => ({ id, text })) };
}

async function maxCallId(s: SieveInstance): Promise<number> {
  const r = await s.obs.query<{ id: string | null }>("select max(id)::text as id from llm_calls");
  return Number(r.rows[0]?.id ?? 0);
}

/** Submits a few requests and waits for them, so connections, JIT and tokenizers are warm. */
export async function warmUp(s: SieveInstance, items: readonly Item[]): Promise<void> {
  const reqs = cutRequests(items, 5, 20, 7);
  await Promise.all(
    reqs.map(async (r, i) => {
      const res = await s.post("/v1/jobs?wait=30s", classifyBody(r.map((it) => ({ id: `warm-${i}-${it.id}`, text: it.text }))));
      if (res.status !== 200) throw new Error(`warm-up request: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
    }),
  );
}

export interface CallStats {
  calls: number;
  /** Calls by outcome (ok, partial, invalid_output, ...). */
  outcomes: Record<string, number>;
  itemsInCalls: number;
  meanItemsPerCall: number;
  inputTokens: number;
  outputTokens: number;
  latencyMs: Distribution;
}

async function callStats(s: SieveInstance, afterId: number): Promise<CallStats> {
  const rows = (
    await s.obs.query<{ outcome: string; item_count: number; input_tokens: number; output_tokens: number; latency_ms: number }>(
      "select outcome, item_count, input_tokens, output_tokens, latency_ms from llm_calls where id > $1",
      [afterId],
    )
  ).rows;
  const outcomes: Record<string, number> = {};
  for (const r of rows) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
  const itemsInCalls = rows.reduce((a, r) => a + r.item_count, 0);
  return {
    calls: rows.length,
    outcomes,
    itemsInCalls,
    meanItemsPerCall: round(rows.length ? itemsInCalls / rows.length : Number.NaN, 2),
    inputTokens: rows.reduce((a, r) => a + r.input_tokens, 0),
    outputTokens: rows.reduce((a, r) => a + r.output_tokens, 0),
    latencyMs: distribution(rows.map((r) => r.latency_ms)),
  };
}

export interface ThroughputResult {
  items: number;
  requests: number;
  clients: number;
  itemsPerRequest: [number, number];
  /** First POST sent -> every job completed in Postgres (jobs.completed_at of the last job). */
  elapsedMs: number;
  itemsPerS: number;
  /** First POST -> last 202 received. */
  submitMs: number;
  acceptedItemsPerS: number;
  /** First POST -> the benchmark's 50 ms poll saw no pending job (sanity check of elapsedMs). */
  detectedMs: number;
  submitLatencyMs: Distribution;
  resultsOk: number;
  resultsError: number;
  /** Jobs re-read through GET /v1/jobs/:id that were completed with all their items (a sample). */
  apiCheck: { sampled: number; completedWithAllItems: number };
  llm: CallStats;
  llmCallsPer1000Items: number;
  inputTokensPerItem: number;
  outputTokensPerItem: number;
  startedAt: string;
  finishedAt: string;
}

/**
 * Closed loop: `clients` concurrent clients take the next request from a shared list and POST it
 * (no wait, 202), as fast as the API accepts them. Done when Postgres says every job is completed.
 */
export async function runThroughput(s: SieveInstance, items: readonly Item[], o: { clients: number; minItems: number; maxItems: number; seed: number; timeoutMs: number }): Promise<ThroughputResult> {
  const requests = cutRequests(items, o.minItems, o.maxItems, o.seed);
  const before = await maxCallId(s);
  const jobIds: string[] = [];
  const sizeOf = new Map<string, number>();
  const submitLat: number[] = [];
  let next = 0;
  let failed = false;
  const startedAt = Date.now();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: o.clients }, async () => {
      while (next < requests.length && !failed) {
        const r = requests[next++]!;
        const t = performance.now();
        const res = await s.post("/v1/jobs", classifyBody(r)).catch((e) => {
          failed = true;
          throw e;
        });
        submitLat.push(performance.now() - t);
        if (res.status !== 202) failed = true;
        if (res.status !== 202) throw new Error(`POST /v1/jobs: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
        jobIds.push(res.body.id as string);
        sizeOf.set(res.body.id as string, r.length);
      }
    }),
  );
  const submitMs = performance.now() - t0;
  let detectedMs = Number.NaN;
  let lastCompletedEpochMs = Number.NaN;
  while (true) {
    const r = await s.obs.query<{ pending: number; jobs: number; last: string | null }>(
      "select count(*) filter (where status = 'pending')::int as pending, count(*)::int as jobs, (extract(epoch from max(completed_at)) * 1000)::text as last from jobs where id = any($1::text[])",
      [jobIds],
    );
    const row = r.rows[0]!;
    if (row.jobs === jobIds.length && row.pending === 0) {
      detectedMs = performance.now() - t0;
      lastCompletedEpochMs = Number(row.last);
      break;
    }
    if (performance.now() - t0 > o.timeoutMs) throw new Error(`throughput run: ${row.pending} of ${row.jobs} jobs still pending after ${o.timeoutMs} ms`);
    await sleep(50);
  }
  // jobs.completed_at is Postgres now() on the same host clock as Date.now() here.
  const elapsedMs = lastCompletedEpochMs - startedAt;
  const res = (
    await s.obs.query<{ status: string; n: number }>("select status, count(*)::int as n from results where job_id = any($1::text[]) group by status", [jobIds])
  ).rows;
  const resultsOk = res.find((r) => r.status === "ok")?.n ?? 0;
  const resultsError = res.find((r) => r.status === "error")?.n ?? 0;
  // Cross-check through the public API on a sample of jobs.
  const sample = jobIds.filter((_, i) => i % Math.max(1, Math.floor(jobIds.length / 10)) === 0).slice(0, 10);
  let completedWithAllItems = 0;
  for (const id of sample) {
    const g = await s.get(`/v1/jobs/${id}?limit=100`);
    const ok = g.status === 200 && g.body.status === "completed" && Array.isArray(g.body.items);
    if (ok && g.body.items.length === sizeOf.get(id) && g.body.items.every((i: { status?: string }) => i.status === "ok")) completedWithAllItems++;
  }
  const llm = await callStats(s, before);
  return {
    items: items.length,
    requests: requests.length,
    clients: o.clients,
    itemsPerRequest: [o.minItems, o.maxItems],
    elapsedMs: round(elapsedMs, 1),
    itemsPerS: round(items.length / (elapsedMs / 1000), 1),
    submitMs: round(submitMs, 1),
    acceptedItemsPerS: round(items.length / (submitMs / 1000), 1),
    detectedMs: round(detectedMs, 1),
    submitLatencyMs: distribution(submitLat),
    resultsOk,
    resultsError,
    apiCheck: { sampled: sample.length, completedWithAllItems },
    llm,
    llmCallsPer1000Items: round((llm.calls / items.length) * 1000, 1),
    inputTokensPerItem: round(llm.inputTokens / items.length, 1),
    outputTokensPerItem: round(llm.outputTokens / items.length, 1),
    startedAt: new Date(startedAt).toISOString(),
    finishedAt: new Date(lastCompletedEpochMs).toISOString(),
  };
}

export interface LatencyResult {
  maxWaitMs: number;
  maxItemsPerCall: number;
  simulatorLatencyMs: number;
  targetRequestsPerS: number;
  durationS: number;
  itemsPerRequest: [number, number];
  requests: number;
  items: number;
  offeredItemsPerS: number;
  /** How late the open-loop scheduler sent requests (event-loop lag of this process). */
  sendLagMs: Distribution;
  /** Client-measured: POST /v1/jobs?wait=30s sent -> finished job body received. */
  totalMs: Distribution;
  /** Per request: the longest llm_calls.latency_ms among the calls that answered its items. */
  providerCallMs: Distribution;
  /** totalMs - providerCallMs, per request: THE added-latency figure. */
  addedMs: Distribution;
  /** totalMs - configured simulator latency (counts simulator + SDK + HTTP-to-provider time as overhead too). */
  addedVsConfiguredMs: Distribution;
  /** Postgres: jobs.completed_at - jobs.created_at (inside Sieve, excludes HTTP in/out and the long-poll wake-up). */
  serverSideMs: Distribution;
  notCompleted: number;
  llm: CallStats;
  llmCallsPer1000Items: number;
  startedAt: string;
  finishedAt: string;
}

/**
 * Open loop: request i is sent at t0 + i / rate whatever happened to earlier ones (a fixed arrival
 * rate, so a slow answer does not slow the load down). Each request holds 1..5 items and long-polls
 * (?wait=30s) for its result.
 */
export async function runSteadyLoad(
  s: SieveInstance,
  pool: readonly Item[],
  o: { ratePerS: number; durationS: number; minItems: number; maxItems: number; seed: number; simLatencyMs: number },
): Promise<LatencyResult> {
  const n = Math.round(o.ratePerS * o.durationS);
  const rand = rng(o.seed);
  const reqs: Item[][] = [];
  let k = 0;
  for (let i = 0; i < n; i++) {
    const size = randInt(rand, o.minItems, o.maxItems);
    reqs.push(Array.from({ length: size }, (_, j) => {
      const it = pool[(k + j) % pool.length]!;
      return { id: `${it.id}-${i}-${j}`, text: it.text };
    }));
    k += size;
  }
  const before = await maxCallId(s);
  const lag: number[] = [];
  const out: Array<{ jobId?: string; totalMs: number; status: number; jobStatus?: string }> = [];
  const inflight: Array<Promise<void>> = [];
  const startedAt = Date.now();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / o.ratePerS;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    lag.push(Math.max(0, performance.now() - due));
    const body = classifyBody(reqs[i]!);
    inflight.push(
      (async () => {
        const t = performance.now();
        try {
          const res = await s.post("/v1/jobs?wait=30s", body);
          out.push({ jobId: res.body?.id, totalMs: performance.now() - t, status: res.status, jobStatus: res.body?.status });
        } catch (e) {
          out.push({ totalMs: performance.now() - t, status: 0, jobStatus: String(e) });
        }
      })(),
    );
  }
  await Promise.all(inflight);
  const finishedAt = Date.now();
  const done = out.filter((r) => r.status === 200 && r.jobStatus === "completed" && r.jobId);
  const ids = done.map((r) => r.jobId!);
  const perJob = new Map<string, { maxCallMs: number; serverMs: number }>();
  const rows = (
    await s.obs.query<{ job_id: string; max_call_ms: number; server_ms: string }>(
      `select j.id as job_id, max(l.latency_ms)::int as max_call_ms,
              (extract(epoch from (j.completed_at - j.created_at)) * 1000)::text as server_ms
         from jobs j join results r on r.job_id = j.id join llm_calls l on l.id = r.llm_call_id
        where j.id = any($1::text[]) group by j.id`,
      [ids],
    )
  ).rows;
  for (const r of rows) perJob.set(r.job_id, { maxCallMs: r.max_call_ms, serverMs: Number(r.server_ms) });
  const total: number[] = [];
  const provider: number[] = [];
  const added: number[] = [];
  const addedCfg: number[] = [];
  const server: number[] = [];
  for (const r of done) {
    const j = perJob.get(r.jobId!);
    if (!j) continue;
    total.push(r.totalMs);
    provider.push(j.maxCallMs);
    added.push(r.totalMs - j.maxCallMs);
    addedCfg.push(r.totalMs - o.simLatencyMs);
    server.push(j.serverMs);
  }
  const llm = await callStats(s, before);
  const items = reqs.reduce((a, r) => a + r.length, 0);
  const policy = s.env;
  return {
    maxWaitMs: policy.SIEVE_CLASSIFY_MAX_WAIT_MS,
    maxItemsPerCall: policy.SIEVE_CLASSIFY_MAX_ITEMS,
    simulatorLatencyMs: o.simLatencyMs,
    targetRequestsPerS: o.ratePerS,
    durationS: o.durationS,
    itemsPerRequest: [o.minItems, o.maxItems],
    requests: n,
    items,
    offeredItemsPerS: round(items / o.durationS, 1),
    sendLagMs: distribution(lag),
    totalMs: distribution(total),
    providerCallMs: distribution(provider),
    addedMs: distribution(added),
    addedVsConfiguredMs: distribution(addedCfg),
    serverSideMs: distribution(server),
    notCompleted: n - total.length,
    llm,
    llmCallsPer1000Items: round((llm.calls / items) * 1000, 1),
    startedAt: new Date(startedAt).toISOString(),
    finishedAt: new Date(finishedAt).toISOString(),
  };
}
