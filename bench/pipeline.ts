/**
 * `npm run bench:pipeline` (-- --quick for a < 1 min smoke run): what Sieve's spine costs, in one
 * run on the same Redis and Postgres. NOT a test: it measures and reports, it asserts nothing
 * beyond "every item got a result".
 *
 *  (a) raw BullMQ: no-op jobs/s (Queue.addBulk + one Worker, no-op processor)
 *  (b) Sieve end to end: HTTP POST /v1/jobs -> aggregation -> simulator at 0 ms -> results in
 *      Postgres, items/s (first POST -> last job completed in Postgres)
 *  (c) (b) / (a)
 *  (d) LLM calls per 1,000 items (llm_calls rows)
 *  (e) input tokens per item: Sieve's multi-item calls (sum llm_calls.input_tokens / items) versus
 *      one call per item (a second Sieve run with SIEVE_CLASSIFY_MAX_ITEMS=1, measured the same way;
 *      plus the rendered single-item prompt counted with countChatTokens, as a cross-check)
 *  (f) added latency p50/p99 at a fixed, low arrival rate: per request, client-measured
 *      POST ?wait=30s time minus the longest provider call (llm_calls.latency_ms) behind its items
 *
 * Every phase runs its own Sieve (fresh Postgres database, unique BullMQ prefix); everything is
 * dropped/deleted at the end. The provider simulator runs in a child process (a provider is
 * another machine; its CPU must not be charged to Sieve). Items: ../shared/datasets/ag_news_test.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { randomBytes } from "node:crypto";
import os from "node:os";
import pg from "pg";
import { Redis } from "ioredis";
import { ADMIN_URL } from "@sieve/shared/db/testing";
import { agNewsItems, DATASETS_DIR } from "../test/support/datasets.js";
import { runRawBullmq, type RawResult } from "./lib/pipeline-raw.js";
import { startSimProcess, type SimProcess } from "./lib/pipeline-sim.js";
import { KEEP_ALIVE_MS, LABELS, deletePrefix, runSteadyLoad, runThroughput, startSieve, warmUp, type Item, type LatencyResult, type SieveInstance, type ThroughputResult } from "./lib/pipeline-sieve.js";
import { computeTokens, type ComputedTokens } from "./lib/pipeline-tokens.js";
import { fmt, machineInfo, renderTable, round } from "./lib/pipeline-util.js";

const HELP = `npm run bench:pipeline [-- options]

  --quick                 smaller everything (< 1 min)
  --reps N                (a)+(b) repetitions, alternating; medians reported (default 3; quick 1)
  --raw-jobs N            no-op jobs for raw BullMQ (default 60000; quick 5000)
  --raw-concurrency N     raw BullMQ Worker concurrency (default 50)
  --items N               items for the Sieve throughput run (default 12000; quick 1500); the
                          AG News rows (7,400 after the warm-up rows) are cycled beyond that
  --clients N             concurrent HTTP clients in the throughput runs (default 16)
  --baseline-items N      items for the one-item-per-call run (default 500; quick 150)
  --rate R                requests/s in the latency run (default 10)
  --duration S            seconds per latency run (default 30; quick 8)
  --wait-ms LIST          SIEVE_CLASSIFY_MAX_WAIT_MS values for latency runs (default 200,50)
  --sim-latency-ms N      simulator latency in the latency runs (default 50)
  --no-write              do not write bench/results/*.json
  --help`;

const { values: a } = parseArgs({
  options: {
    quick: { type: "boolean" },
    reps: { type: "string" },
    "raw-jobs": { type: "string" },
    "raw-concurrency": { type: "string" },
    items: { type: "string" },
    clients: { type: "string" },
    "baseline-items": { type: "string" },
    rate: { type: "string" },
    duration: { type: "string" },
    "wait-ms": { type: "string" },
    "sim-latency-ms": { type: "string" },
    "no-write": { type: "boolean" },
    help: { type: "boolean" },
  },
  strict: true,
});
if (a.help) {
  console.log(HELP);
  process.exit(0);
}
const quick = a.quick ?? false;
const int = (v: string | undefined, def: number, name: string, min = 1): number => {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name}: expected a number >= ${min}, got "${v}"`);
  return n;
};

const config = {
  quick,
  reps: int(a.reps, quick ? 1 : 3, "reps"),
  redisUrl: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
  postgresAdminUrl: ADMIN_URL.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@"),
  dataset: path.join(DATASETS_DIR, "ag_news_test", "ag_news_test.csv"),
  itemText: 'title + ". " + description (test/support/datasets.ts agNewsItems)',
  raw: { jobs: int(a["raw-jobs"], quick ? 5_000 : 60_000, "raw-jobs"), concurrency: int(a["raw-concurrency"], 50, "raw-concurrency"), chunk: 1_000, warmupJobs: quick ? 500 : 2_000 },
  throughput: { items: int(a.items, quick ? 1_500 : 12_000, "items"), clients: int(a.clients, 16, "clients"), itemsPerRequest: [20, 40] as [number, number], warmupItems: 200, simulatorLatencyMs: 0 },
  baseline: { items: int(a["baseline-items"], quick ? 150 : 500, "baseline-items"), env: { SIEVE_CLASSIFY_MAX_ITEMS: "1" } },
  latency: {
    ratePerS: int(a.rate, 10, "rate"),
    durationS: int(a.duration, quick ? 8 : 30, "duration"),
    itemsPerRequest: [1, 5] as [number, number],
    maxWaitMs: (a["wait-ms"] ?? "200,50").split(",").map((s) => int(s.trim(), 0, "wait-ms", 0)),
    simulatorLatencyMs: int(a["sim-latency-ms"], 50, "sim-latency-ms", 0),
    longPoll: "POST /v1/jobs?wait=30s",
  },
};

// Everything opened is closed in reverse order, also on Ctrl-C.
const closers: Array<{ name: string; fn: () => Promise<unknown> }> = [];
async function closeAll(): Promise<void> {
  while (closers.length > 0) {
    const c = closers.pop()!;
    await c.fn().catch((e) => console.error(`cleanup ${c.name}: ${String(e)}`));
  }
}
function dropCloser(c: (typeof closers)[number]): void {
  const i = closers.indexOf(c);
  if (i >= 0) closers.splice(i, 1);
}
let interrupted = false;
process.once("SIGINT", () => {
  interrupted = true;
  console.error("\ninterrupted: cleaning up (databases, Redis keys, simulator)...");
  void closeAll().finally(() => process.exit(130));
});

function log(msg: string): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

/** The Sieve settings that shape these numbers (defaults unless a phase overrides them). */
interface Effective {
  SIEVE_CLASSIFY_MAX_ITEMS: number;
  SIEVE_CLASSIFY_MAX_TOKENS: number;
  SIEVE_CLASSIFY_MAX_WAIT_MS: number;
  SIEVE_WORKER_CONCURRENCY: number;
  SIEVE_MAX_ATTEMPTS: number;
  SIEVE_CALL_TIMEOUT_MS: number;
}

async function withSieve<T>(
  label: string,
  simUrl: string,
  env: Record<string, string>,
  fn: (s: SieveInstance) => Promise<T>,
): Promise<{ result: T; envVars: Record<string, string>; effective: Effective; loadAvg1m: [number, number] }> {
  const load0 = os.loadavg()[0]!;
  const t0 = performance.now();
  const s = await startSieve({ label, redisUrl: config.redisUrl, simUrl, env });
  log(`    started ${label} (database ${s.dbName}, prefix ${s.prefix}) in ${fmt(performance.now() - t0)} ms`);
  const closer = { name: label, fn: () => s.close() };
  closers.push(closer);
  try {
    const result = await fn(s);
    const { DATABASE_URL: _db, OPENAI_API_KEY: _k, ...envVars } = s.envVars;
    const e = s.env;
    const effective: Effective = {
      SIEVE_CLASSIFY_MAX_ITEMS: e.SIEVE_CLASSIFY_MAX_ITEMS,
      SIEVE_CLASSIFY_MAX_TOKENS: e.SIEVE_CLASSIFY_MAX_TOKENS,
      SIEVE_CLASSIFY_MAX_WAIT_MS: e.SIEVE_CLASSIFY_MAX_WAIT_MS,
      SIEVE_WORKER_CONCURRENCY: e.SIEVE_WORKER_CONCURRENCY,
      SIEVE_MAX_ATTEMPTS: e.SIEVE_MAX_ATTEMPTS,
      SIEVE_CALL_TIMEOUT_MS: e.SIEVE_CALL_TIMEOUT_MS,
    };
    return { result, envVars, effective, loadAvg1m: [round(load0, 2), round(os.loadavg()[0]!, 2)] };
  } finally {
    dropCloser(closer);
    const t = performance.now();
    await s.close();
    log(`    closed ${label} in ${fmt(performance.now() - t)} ms`);
  }
}

async function serviceVersions(): Promise<{ redis: string; postgres: string }> {
  const r = new Redis(config.redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 3_000, lazyConnect: true });
  r.on("error", () => {});
  let redis = "unknown";
  try {
    await r.connect();
    redis = /redis_version:(\S+)/.exec(await r.info("server"))?.[1] ?? "unknown";
  } catch (e) {
    throw new Error(`Redis is not reachable at ${config.redisUrl} (set REDIS_URL): ${String(e)}`);
  } finally {
    r.disconnect();
  }
  const c = new pg.Client({ connectionString: ADMIN_URL });
  try {
    await c.connect();
    const v = (await c.query<{ v: string }>("select current_setting('server_version') as v")).rows[0]?.v ?? "unknown";
    return { redis, postgres: v };
  } catch (e) {
    throw new Error(`PostgreSQL is not reachable at ${config.postgresAdminUrl} (set TEST_DATABASE_URL): ${String(e)}`);
  } finally {
    await c.end().catch(() => {});
  }
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const machine = { ...machineInfo(), ...(await serviceVersions()) };
  const all = agNewsItems();
  // The throughput items: the dataset minus its last `warmupItems` rows (kept for warm-ups), cycled
  // when more items are asked for than it has (caches are off, so a repeated text costs the same).
  const pool = all.slice(0, all.length - config.throughput.warmupItems);
  const items: Item[] = Array.from({ length: config.throughput.items }, (_, i) => {
    const it = pool[i % pool.length]!;
    const cycle = Math.floor(i / pool.length);
    return { id: cycle === 0 ? it.id : `${it.id}~${cycle}`, text: it.text };
  });
  const warm: Item[] = all.slice(all.length - config.throughput.warmupItems).map(({ id, text }) => ({ id, text }));
  // A stride sample across the throughput items, so its texts are like the whole set.
  const stride = Math.max(1, Math.floor(items.length / config.baseline.items));
  const baselineItems = items.filter((_, i) => i % stride === 0).slice(0, config.baseline.items);
  log(`dataset: ${all.length} AG News rows; ${items.length} items for the throughput run${items.length > pool.length ? ` (the first ${pool.length} rows, cycled)` : ""}; machine: ${machine.cpus} cpus, node ${machine.node}, redis ${machine.redis}, postgres ${machine.postgres}`);

  const sim: SimProcess = await startSimProcess();
  closers.push({ name: "simulator", fn: () => sim.close() });
  log(`simulator child pid ${sim.pid} at ${sim.url}`);
  // (a) raw BullMQ and (b) Sieve end to end at 0 ms provider latency, interleaved (a, b, a, b, ...)
  // on one Sieve instance so that background load on a shared machine hits both alike.
  await sim.setFaults({ latencyMs: 0 });
  const rawRuns: RawResult[] = [];
  type TpRun = ThroughputResult & { rep: number; simulator: unknown; benchProcessCpuMs: number; benchProcessCpuMsPerItem: number; loadAvg1m: [number, number] };
  const tpRun = await withSieve("throughput", sim.url, {}, async (s) => {
    await warmUp(s, warm);
    const runs: TpRun[] = [];
    for (let rep = 1; rep <= config.reps; rep++) {
      const rawPrefix = `bench-pipeline-raw-${randomBytes(4).toString("hex")}`;
      const rawCloser = { name: "raw prefix", fn: () => deletePrefix(config.redisUrl, rawPrefix) };
      closers.push(rawCloser);
      log(`(a) rep ${rep}/${config.reps}: raw BullMQ, ${config.raw.jobs} no-op jobs, worker concurrency ${config.raw.concurrency}`);
      const load0 = os.loadavg()[0]!;
      const raw = await runRawBullmq({ redisUrl: config.redisUrl, prefix: rawPrefix, ...config.raw });
      rawRuns.push({ ...raw, loadAvg1m: [round(load0, 2), round(os.loadavg()[0]!, 2)] });
      dropCloser(rawCloser);
      await deletePrefix(config.redisUrl, rawPrefix);
      log(`    ${fmt(raw.jobsPerS)} jobs/s`);

      log(`(b) rep ${rep}/${config.reps}: Sieve end to end, ${items.length} items, ${config.throughput.clients} clients, requests of ${config.throughput.itemsPerRequest.join("-")} items, simulator 0 ms`);
      await sim.reset();
      const l0 = os.loadavg()[0]!;
      const cpu0 = process.cpuUsage();
      const r = await runThroughput(s, items, { clients: config.throughput.clients, minItems: config.throughput.itemsPerRequest[0], maxItems: config.throughput.itemsPerRequest[1], seed: 41 + rep, timeoutMs: 240_000 });
      const cpu = process.cpuUsage(cpu0);
      const st = await sim.stats();
      const cpuMs = (cpu.user + cpu.system) / 1000;
      runs.push({
        ...r,
        rep,
        simulator: { requests: st.requests, promptTokens: st.tokens.prompt, completionTokens: st.tokens.completion, itemsSeen: st.itemsSeen },
        benchProcessCpuMs: round(cpuMs, 0),
        benchProcessCpuMsPerItem: round(cpuMs / r.items, 3),
        loadAvg1m: [round(l0, 2), round(os.loadavg()[0]!, 2)],
      });
      log(`    ${fmt(r.itemsPerS)} items/s, ${r.llm.calls} LLM calls, ${r.resultsOk} ok / ${r.resultsError} errors`);
    }
    return runs;
  });
  const tpRuns = tpRun.result;
  const eff = tpRun.effective;
  const medianBy = <T>(xs: readonly T[], key: (x: T) => number): T => [...xs].sort((p, q) => key(p) - key(q))[Math.floor((xs.length - 1) / 2)]!;
  const raw = medianBy(rawRuns, (r) => r.jobsPerS);
  const tp = medianBy(tpRuns, (r) => r.itemsPerS);
  const ratios = tpRuns.map((t, i) => t.itemsPerS / rawRuns[i]!.jobsPerS);
  const ratio = medianBy(ratios, (x) => x);
  // (d) and (e) over every rep (they barely vary between reps).
  const sum = (f: (t: TpRun) => number) => tpRuns.reduce((acc, t) => acc + f(t), 0);
  const tpItems = sum((t) => t.items);
  const tpCalls = sum((t) => t.llm.calls);
  const callsPer1000 = (tpCalls / tpItems) * 1000;
  const multiTokensPerItem = sum((t) => t.llm.inputTokens) / tpItems;
  const itemsPerCall = sum((t) => t.llm.itemsInCalls) / tpCalls;

  // (e) baseline: one item per call, same path, measured
  log(`(e) baseline: ${baselineItems.length} items with SIEVE_CLASSIFY_MAX_ITEMS=1`);
  const blRun = await withSieve("single-item baseline", sim.url, config.baseline.env, async (s) => {
    await warmUp(s, warm.slice(0, 50));
    return runThroughput(s, baselineItems, { clients: config.throughput.clients, minItems: config.throughput.itemsPerRequest[0], maxItems: config.throughput.itemsPerRequest[1], seed: 43, timeoutMs: 240_000 });
  });
  const bl: ThroughputResult & { loadAvg1m: [number, number] } = { ...blRun.result, loadAvg1m: blRun.loadAvg1m };
  log(`    ${bl.llm.calls} LLM calls, ${fmt(bl.inputTokensPerItem, 1)} input tokens/item (${fmt(bl.itemsPerS)} items/s)`);
  const params = { task: "classify" as const, labels: LABELS };
  const computedAll: ComputedTokens = computeTokens(params, items.map((i) => i.text), Math.max(1, Math.round(itemsPerCall)));
  const computedSample: ComputedTokens = computeTokens(params, baselineItems.map((i) => i.text), 1);

  // (f) latency at a fixed low arrival rate
  await sim.setFaults({ latencyMs: config.latency.simulatorLatencyMs });
  const latency: Array<LatencyResult & { envVars: Record<string, string>; effective: Effective; loadAvg1m: [number, number] }> = [];
  for (const w of config.latency.maxWaitMs) {
    log(`(f) latency: ${config.latency.ratePerS} req/s x ${config.latency.durationS} s, 1-5 items each, simulator ${config.latency.simulatorLatencyMs} ms, maxWaitMs ${w}`);
    const r = await withSieve(`latency maxWait ${w}`, sim.url, { SIEVE_CLASSIFY_MAX_WAIT_MS: String(w) }, async (s) => {
      await warmUp(s, warm.slice(0, 50));
      return runSteadyLoad(s, all, { ratePerS: config.latency.ratePerS, durationS: config.latency.durationS, minItems: config.latency.itemsPerRequest[0], maxItems: config.latency.itemsPerRequest[1], seed: 44, simLatencyMs: config.latency.simulatorLatencyMs });
    });
    latency.push({ ...r.result, envVars: r.envVars, effective: r.effective, loadAvg1m: r.loadAvg1m });
    log(`    added p50 ${fmt(r.result.addedMs.p50)} ms, p99 ${fmt(r.result.addedMs.p99)} ms`);
  }
  await closeAll();
  const finishedAt = new Date();

  // ---- derived numbers and the table
  const tokenReduction = 1 - multiTokensPerItem / bl.inputTokensPerItem;
  const tokenReductionComputed = 1 - multiTokensPerItem / computedAll.singleItemInputTokensPerItem;
  const d = {
    a_rawBullmqJobsPerS: raw.jobsPerS,
    b_sieveItemsPerS: tp.itemsPerS,
    c_ratio: round(ratio, 3),
    reps: config.reps,
    repsNote: "(a), (b) and (c) are medians over reps; (a) and (b) alternate within each rep; (c) is the median of the per-rep ratios",
    c_meaning:
      `Sieve delivers ${fmt(tp.itemsPerS)} items/s end to end (HTTP in, Postgres writes, aggregation, provider call, validation, results in Postgres) ` +
      `where a bare BullMQ queue on the same Redis completes ${fmt(raw.jobsPerS)} no-op jobs/s: per item Sieve spends ${fmt(1000 / tp.itemsPerS, 3)} ms of wall time ` +
      `vs ${fmt(1000 / raw.jobsPerS, 3)} ms per bare queue job, i.e. ${fmt(1 / ratio, 1)}x. (Sieve enqueues one BullMQ job per request, or one per maxItems items of a larger request, not one per item.)`,
    d_llmCallsPer1000Items: round(callsPer1000, 1),
    e_inputTokensPerItem: { multiItemMeasured: round(multiTokensPerItem, 1), singleItemMeasured: bl.inputTokensPerItem, singleItemComputedAllItems: computedAll.singleItemInputTokensPerItem, singleItemComputedBaselineSample: computedSample.singleItemInputTokensPerItem, reduction: round(tokenReduction, 3), reductionVsComputedSameItems: round(tokenReductionComputed, 3) },
    f_addedLatencyMs: latency.map((l) => ({ maxWaitMs: l.maxWaitMs, p50: l.addedMs.p50, p99: l.addedMs.p99 })),
  };

  const rows: Array<[string, string, string] | "---"> = [
    ["(a) raw BullMQ, no-op jobs", `${fmt(raw.jobsPerS)} jobs/s`, `${fmt(raw.jobs)} jobs, addBulk x${raw.chunk}, 1 Worker concurrency ${raw.concurrency}; ${config.reps > 1 ? `median of ${rawRuns.map((r) => fmt(r.jobsPerS)).join(" / ")}` : `${fmt(raw.totalMs)} ms`}`],
    ["(b) Sieve end to end", `${fmt(tp.itemsPerS)} items/s`, `${fmt(tp.items)} items, ${tp.requests} POSTs of ${tp.itemsPerRequest.join("-")} items, ${tp.clients} clients, sim 0 ms; ${config.reps > 1 ? `median of ${tpRuns.map((r) => fmt(r.itemsPerS)).join(" / ")}` : `${fmt(tp.elapsedMs)} ms`}`],
    ["    accepted (POST -> 202)", `${fmt(tp.acceptedItemsPerS)} items/s`, `submit p50 ${fmt(tp.submitLatencyMs.p50)} ms, p99 ${fmt(tp.submitLatencyMs.p99)} ms; results ${tp.resultsOk} ok, ${tp.resultsError} error`],
    ["(c) ratio (b)/(a)", fmt(ratio, 3), `Sieve items/s per bare-queue no-op job/s: ${fmt(1 / ratio, 1)}x the wall time per item`],
    ["(d) LLM calls / 1,000 items", fmt(callsPer1000, 1), `${tpCalls} calls for ${fmt(tpItems)} items, ${fmt(itemsPerCall, 1)} items/call (maxItems ${eff.SIEVE_CLASSIFY_MAX_ITEMS}: floor ${fmt(1000 / eff.SIEVE_CLASSIFY_MAX_ITEMS, 1)})`],
    ["(e) input tokens/item, multi-item", fmt(multiTokensPerItem, 1), `measured: sum(llm_calls.input_tokens) / ${fmt(tpItems)} items`],
    ["    one call per item (measured)", fmt(bl.inputTokensPerItem, 1), `Sieve run with SIEVE_CLASSIFY_MAX_ITEMS=1, ${bl.items} items (every ${stride}th), ${bl.llm.calls} calls`],
    ["    one call per item (computed)", fmt(computedAll.singleItemInputTokensPerItem, 1), `renderPrompt(1 item) + countChatTokens over the same ${computedAll.items} items`],
    ["    saving vs one call per item", `${fmt(tokenReduction * 100, 1)} %`, `vs measured; vs computed on the same items ${fmt(tokenReductionComputed * 100, 1)} %; system prompt ${computedAll.systemPromptTokens} tokens, item text ${fmt(computedAll.itemTextTokensPerItem, 1)} (sample ${fmt(computedSample.itemTextTokensPerItem, 1)}) tokens/item`],
    "---",
  ];
  for (const l of latency) {
    rows.push(
      [`(f) added latency, maxWaitMs ${l.maxWaitMs}`, `p50 ${fmt(l.addedMs.p50)} / p99 ${fmt(l.addedMs.p99)} ms`, `${l.targetRequestsPerS} req/s x ${l.durationS} s = ${fmt(l.offeredItemsPerS)} items/s (${fmt((100 * l.offeredItemsPerS) / tp.itemsPerS)} % of (b)), ${l.notCompleted} of ${l.requests} not completed`],
      ["    submit -> result (client)", `p50 ${fmt(l.totalMs.p50)} / p99 ${fmt(l.totalMs.p99)} ms`, `minus provider call p50 ${fmt(l.providerCallMs.p50)} / p99 ${fmt(l.providerCallMs.p99)} ms (sim ${l.simulatorLatencyMs} ms)`],
      ["    in Sieve (created -> completed)", `p50 ${fmt(l.serverSideMs.p50)} / p99 ${fmt(l.serverSideMs.p99)} ms`, `jobs.completed_at - created_at in Postgres (includes the provider call)`],
      ["    minus configured sim latency", `p50 ${fmt(l.addedVsConfiguredMs.p50)} / p99 ${fmt(l.addedVsConfiguredMs.p99)} ms`, `${fmt(l.llm.meanItemsPerCall, 1)} items/call, ${fmt(l.llmCallsPer1000Items)} calls/1,000 items at this load`],
    );
  }
  const busy = [...rawRuns.map((r) => r.loadAvg1m?.[0] ?? 0), ...tpRuns.map((r) => r.loadAvg1m[0]), bl.loadAvg1m[0], ...latency.map((l) => l.loadAvg1m[0])];
  const maxLoad = Math.max(...busy);
  console.log("");
  console.log(`Sieve pipeline benchmark ${quick ? "(QUICK) " : ""}- ${startedAt.toISOString()} - ${machine.cpus} cpus (${machine.cpuModel}), node ${machine.node}, redis ${machine.redis}, postgres ${machine.postgres}, bullmq ${machine.bullmq}`);
  console.log(renderTable(rows, ["measurement", "value", "how"]));
  console.log(
    [
      "",
      `(b) runs with SIEVE_CLASSIFY_MAX_ITEMS=${eff.SIEVE_CLASSIFY_MAX_ITEMS}, SIEVE_CLASSIFY_MAX_WAIT_MS=${eff.SIEVE_CLASSIFY_MAX_WAIT_MS}, SIEVE_WORKER_CONCURRENCY=${eff.SIEVE_WORKER_CONCURRENCY}; API + workers in this process, simulator in a child process, all sharing ${machine.cpus} cpus with Redis and Postgres.`,
      `(c) ${d.c_meaning} Below 1 means one Sieve item costs more wall time than one bare no-op BullMQ job; the difference is Sieve's per-item overhead: HTTP + JSON validation, Postgres writes (job, items, llm_calls, results), tokenizing, aggregation, building and validating the structured output, and the (0 ms) provider round trip.`,
      `(f) added = client-measured POST ?wait=30s time minus, per request, the longest llm_calls.latency_ms among the calls that answered its items (the provider round trip as Sieve's OpenAI client timed it: request build + HTTP + simulator ${config.latency.simulatorLatencyMs} ms sleep + parse). What remains is HTTP in/out, validation, Postgres, BullMQ, waiting in the aggregation bin (up to maxWaitMs) and the long-poll wake-up.`,
      ...(maxLoad > machine.cpus
        ? [`WARNING: the 1-minute load average reached ${fmt(maxLoad, 1)} on ${machine.cpus} cpus at the start of a phase: other work shared the machine, so the numbers are low and noisy (per-phase load averages are in the JSON).`]
        : []),
    ].join("\n"),
  );

  const out = {
    benchmark: "pipeline",
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationS: round((finishedAt.getTime() - startedAt.getTime()) / 1000, 1),
    machine,
    config,
    sieveEnv: { throughput: { ...tpRun.envVars, effective: eff }, baseline: { ...blRun.envVars, effective: blRun.effective } },
    summary: d,
    measurements: {
      rawBullmq: rawRuns,
      sieveThroughput: tpRuns,
      singleItemBaseline: bl,
      tokensComputed: { allThroughputItems: computedAll, baselineSample: computedSample },
      latency,
    },
    notes: [
      "Each Sieve phase ran with a fresh Postgres database and a unique BullMQ prefix; both were dropped/deleted afterwards.",
      "The simulator counts input tokens as countChatTokens(system + user messages) with o200k_base; it does not count the JSON schema sent in response_format (a real provider bills it, per call, so the real multi-item saving would be larger).",
      "Throughput elapsed time ends at max(jobs.completed_at) (Postgres now() on the same host clock); detectedMs is when the benchmark's 50 ms poll saw no pending job.",
      "Load generators run in the same Node process as the API and workers; their CPU is included.",
      `The API server's keepAliveTimeout is raised to ${KEEP_ALIVE_MS} ms for the benchmark (Node's 5 s default races undici's idle-socket reuse on a CPU-starved machine and fails requests with ECONNRESET).`,
    ],
  };
  if (!a["no-write"]) {
    const dir = fileURLToPath(new URL("./results/", import.meta.url));
    mkdirSync(dir, { recursive: true });
    const day = startedAt.toISOString().slice(0, 10);
    const stem = quick ? "pipeline-quick" : "pipeline";
    const json = `${JSON.stringify(out, null, 2)}\n`;
    writeFileSync(path.join(dir, `${stem}-${day}.json`), json);
    writeFileSync(path.join(dir, `${stem}-latest.json`), json);
    console.log(`\nwrote bench/results/${stem}-${day}.json and bench/results/${stem}-latest.json`);
  }
}

main()
  .catch(async (e) => {
    if (!interrupted) {
      const cause = e instanceof Error && e.cause ? ` (cause: ${String((e.cause as Error).stack ?? e.cause)})` : "";
      console.error(`bench:pipeline failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}${cause}`);
      process.exitCode = 1;
    }
  })
  .finally(() => closeAll());
