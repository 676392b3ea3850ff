/**
 * Bulk ingestion and batch-lane cost benchmark:
 *   npm run bench:bulk [-- --quick] [-- --lines 1000000 --items 100000]
 *
 * 1. Ingest: a 1,000,000-line NDJSON file (AG News test texts, 7,600 rows repeated with a "(#k)"
 *    suffix to reach the count) streamed to POST /v1/bulk (lane "batch": items go to Postgres and
 *    the lane's queue table) of the REAL producer (`sieve start`, apps/cli/src/start.ts, SIEVE_ROLE=api) run
 *    as a child process; its RSS is sampled every 100 ms from /proc (and VmHWM read at the end).
 * 2. Cost: a 100,000-item job per provider through the batch lane against the provider simulator
 *    (its token usage is counted with the o200k tokenizer): provider requests, input/output tokens
 *    and cost at the batch price, versus
 *    - the same multi-item requests at the realtime list price, and
 *    - one realtime call per item at list price, estimated from a 1,000-item sample: each item's
 *      single-item prompt (system + user message, o200k + chat overhead) and its one-entry JSON
 *      answer, counted with the real tokenizer. The JSON schema / tool definition is not counted,
 *      so this baseline is a LOWER bound and the savings shown are conservative.
 * Writes bench/results/bulk-<date>.json and bulk-latest.json (quick runs: bulk-quick-*).
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { DEFAULT_PRICES, costUsd, countChatTokens, countTokens, createLogger, parseEnv, providerEndpoints, queryOne, renderPrompt, type TaskParams } from "@sieve/shared";
import { createTestDb, testPrefix } from "@sieve/shared/db/testing";
import { addApiKey } from "@sieve/shared/db/ops/tenants";
import { startSimulator } from "@sieve/simulator";
import { startApi } from "@sieve/producer/server";
import { startWorkers } from "@sieve/workers";
import { agNewsItems } from "../test/support/datasets.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    lines: { type: "string" },
    items: { type: "string" },
    out: { type: "string", default: path.join(ROOT, "bench", "results") },
  },
});
const LINES = Number(args.lines ?? (args.quick ? 100_000 : 1_000_000));
const ITEMS = Number(args.items ?? (args.quick ? 10_000 : 100_000));
const LABELS = ["World", "Sports", "Business", "Sci/Tech"];
const PARAMS: TaskParams = { task: "classify", labels: LABELS };
const started = performance.now();
const log = (s: string) => console.log(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${s}`);
const base = agNewsItems().map((i) => i.text);
const textOf = (i: number) => `${base[i % base.length]!} (#${Math.floor(i / base.length)})`;

async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, "127.0.0.1");
  await once(s, "listening");
  const port = (s.address() as { port: number }).port;
  s.close();
  return port;
}

function rssKiB(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const st = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = Number(/VmRSS:\s+(\d+)/.exec(st)?.[1] ?? 0);
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(st)?.[1] ?? 0);
    return { rss, hwm };
  } catch {
    return undefined;
  }
}

async function writeNdjson(file: string, lines: number, provider: string): Promise<number> {
  if (existsSync(file)) return statSync(file).size;
  const out = createWriteStream(file);
  out.write(JSON.stringify({ task: "classify", labels: LABELS, lane: "batch", provider }) + "\n");
  for (let i = 0; i < lines; i++) {
    if (!out.write(JSON.stringify({ id: `b${i}`, text: textOf(i) }) + "\n")) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
  return statSync(file).size;
}

// ------------------------------------------------------------------------------------- 1. ingest
async function ingestBench() {
  const dir = path.join(os.tmpdir(), "sieve-bench-bulk");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `items-${LINES}.jsonl`);
  log(`writing ${LINES.toLocaleString("en-US")} lines to ${file}`);
  const bytes = await writeNdjson(file, LINES, "openai");
  const db = await createTestDb("sieve_bench_bulk");
  const port = await freePort();
  const key = "sk-sieve-bench-key";
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "apps/cli/src/main.ts"), "start"], {
    cwd: ROOT,
    env: {
      ...process.env,
      SIEVE_ROLE: "api",
      PORT: String(port),
      HOST: "127.0.0.1",
      DATABASE_URL: db.url,
      REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
      SIEVE_QUEUE_PREFIX: testPrefix("benchbulk"),
      // Never called during ingest (no workers run): a provider must merely be configured.
      OPENAI_API_KEY: "sk-bench",
      OPENAI_BASE_URL: "http://127.0.0.1:9/v1",
      SIEVE_BATCH_LANE: "true",
      SIEVE_SEMANTIC_CACHE: "off",
      SIEVE_API_KEYS: `bench:${key}`,
      LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  try {
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      const ok = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (i > 300) throw new Error("the API child did not start");
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 500));
    const idle = rssKiB(child.pid!)!;
    let peak = idle.rss;
    const sampler = setInterval(() => {
      const s = rssKiB(child.pid!);
      if (s) peak = Math.max(peak, s.rss);
    }, 100);
    log(`uploading ${(bytes / 1e6).toFixed(0)} MB (API child pid ${child.pid}, RSS ${(idle.rss / 1024).toFixed(0)} MiB idle)`);
    const t0 = performance.now();
    const res = await fetch(`${url}/v1/bulk`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/x-ndjson" },
      body: createReadStream(file, { highWaterMark: 256 * 1024 }) as unknown as ReadableStream,
      duplex: "half",
    } as RequestInit);
    const body = (await res.json()) as { id: string; counts: { accepted: number; rejected: number } };
    const secs = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    const end = rssKiB(child.pid!)!;
    peak = Math.max(peak, end.hwm);
    if (res.status !== 202) throw new Error(`bulk upload: ${res.status} ${JSON.stringify(body)}`);
    const stored = await queryOne<{ items: number; queued: number }>(db.db, sql`select (select count(*)::int from items) as items, (select count(*)::int from batch_items) as queued`);
    const out = {
      lines: LINES,
      bytes,
      accepted: body.counts.accepted,
      rejected: body.counts.rejected,
      storedItems: stored.items,
      queuedForBatchLane: stored.queued,
      seconds: +secs.toFixed(2),
      itemsPerSecond: Math.round(body.counts.accepted / secs),
      mbPerSecond: +(bytes / 1e6 / secs).toFixed(2),
      producerRssIdleMiB: +(idle.rss / 1024).toFixed(1),
      producerRssPeakMiB: +(peak / 1024).toFixed(1),
      producerRssAfterMiB: +(end.rss / 1024).toFixed(1),
    };
    log(`ingest: ${out.accepted.toLocaleString("en-US")} items in ${out.seconds} s = ${out.itemsPerSecond.toLocaleString("en-US")} items/s; producer RSS peak ${out.producerRssPeakMiB} MiB`);
    return out;
  } finally {
    child.kill("SIGTERM");
    await once(child, "exit").catch(() => {});
    await db.drop();
  }
}

// ------------------------------------------------------------------------------------- 2. cost
/** Per-item tokens of a one-item realtime call, measured on a sample with the o200k tokenizer. */
function realtimeBaseline(sample: number) {
  let input = 0;
  let output = 0;
  for (let i = 0; i < sample; i++) {
    const { system, user } = renderPrompt(PARAMS, [{ id: "i1", text: textOf(i) }]);
    input += countChatTokens([
      { role: "system", content: system },
      { role: "user", content: user },
    ]);
    output += countTokens(JSON.stringify({ results: [{ id: "i1", label: LABELS[i % LABELS.length] }] }));
  }
  return { inputPerItem: input / sample, outputPerItem: output / sample, sample };
}

async function costBench() {
  const db = await createTestDb("sieve_bench_lane");
  const sim = await startSimulator({ port: 0, batch: { phaseMs: 300, seed: 1 } });
  const env = parseEnv({
    PORT: "0",
    REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    DATABASE_URL: db.url,
    SIEVE_QUEUE_PREFIX: testPrefix("benchlane"),
    OPENAI_API_KEY: "sk-bench",
    OPENAI_BASE_URL: `${sim.url}/v1`,
    ANTHROPIC_API_KEY: "sk-ant-bench",
    ANTHROPIC_BASE_URL: sim.url,
    SIEVE_BATCH_LANE: "true",
    SIEVE_BATCH_PACK_EVERY_MS: "1000",
    SIEVE_BATCH_POLL_EVERY_MS: "500",
    SIEVE_CACHE_ENABLED: "false",
    SIEVE_SEMANTIC_CACHE: "off",
    LOG_LEVEL: "silent",
  });
  const silent = createLogger({ level: "silent" });
  const endpoints = providerEndpoints(env);
  const api = await startApi({ env, db: db.db, endpoints, log: silent });
  const workers = await startWorkers({ env, db: db.db, endpoints, log: silent, sweepEveryMs: 0 });
  const key = "sk-sieve-bench-lane";
  await addApiKey(db.db, "bench", key);
  const rows = [];
  try {
    const baseline = realtimeBaseline(1_000);
    for (const provider of ["openai", "anthropic"] as const) {
      const model = endpoints.get(provider)!.defaultModel;
      const lines = [JSON.stringify({ task: "classify", labels: LABELS, lane: "batch", provider })];
      for (let i = 0; i < ITEMS; i++) lines.push(JSON.stringify({ id: `${provider}${i}`, text: textOf(i) }));
      const t0 = performance.now();
      const res = await fetch(`${api.url}/v1/bulk`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/x-ndjson" }, body: lines.join("\n") });
      const job = (await res.json()) as { id: string };
      if (res.status !== 202) throw new Error(JSON.stringify(job));
      for (;;) {
        const s = await queryOne<{ status: string }>(db.db, sql`select status from jobs where id = ${job.id}`);
        if (s.status !== "pending") break;
        await new Promise((r) => setTimeout(r, 1_000));
      }
      const secs = (performance.now() - t0) / 1000;
      const m = await queryOne<{ requests: number; input: string; output: string; cached: string; written: string; cost: string; ok: number; batches: number }>(
        db.db,
        sql`select count(*)::int as requests, sum(input_tokens)::text as input, sum(output_tokens)::text as output, sum(cached_input_tokens)::text as cached,
                   sum(cache_write_tokens)::text as written, sum(cost_usd)::text as cost,
                   (select count(*)::int from results where job_id = ${job.id} and status = 'ok') as ok,
                   (select count(*)::int from provider_batches where provider = ${provider} and provider_batch_id is not null) as batches
            from llm_calls where lane = 'batch' and provider = ${provider}`,
      );
      const usage = { inputTokens: Number(m.input), outputTokens: Number(m.output), cachedInputTokens: Number(m.cached), cacheWriteTokens: Number(m.written) };
      const listSame = costUsd(DEFAULT_PRICES, model, usage, "realtime").usd;
      const perItemIn = baseline.inputPerItem * ITEMS;
      const perItemOut = baseline.outputPerItem * ITEMS;
      const oneByOne = costUsd(DEFAULT_PRICES, model, { inputTokens: Math.round(perItemIn), outputTokens: Math.round(perItemOut) }, "realtime").usd;
      const row = {
        provider,
        model,
        items: ITEMS,
        okItems: m.ok,
        seconds: +secs.toFixed(1),
        providerBatches: m.batches,
        providerRequests: m.requests,
        itemsPerRequest: +(ITEMS / m.requests).toFixed(1),
        inputTokens: usage.inputTokens,
        outputTokens: usage.outputTokens,
        batchCostUsd: +Number(m.cost).toFixed(4),
        sameRequestsRealtimeListUsd: +listSame.toFixed(4),
        oneCallPerItem: { requests: ITEMS, inputTokens: Math.round(perItemIn), outputTokens: Math.round(perItemOut), listUsd: +oneByOne.toFixed(4) },
        savingVsOneCallPerItem: +(1 - Number(m.cost) / oneByOne).toFixed(3),
      };
      rows.push(row);
      log(`${provider}: ${ITEMS} items in ${row.seconds} s, ${row.providerRequests} requests, $${row.batchCostUsd} vs $${row.oneCallPerItem.listUsd} one call per item`);
    }
    return { baseline, rows };
  } finally {
    await workers.close();
    await api.close();
    await sim.close();
    await db.drop();
  }
}

const ingest = await ingestBench();
const cost = await costBench();
const fmt = (n: number) => n.toLocaleString("en-US");
const table = [
  "| provider / model | items | provider requests | input tokens | output tokens | batch lane cost | same requests, realtime list | 1 call/item realtime list (est.) | saving |",
  "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ...cost.rows.map(
    (r) =>
      `| ${r.provider} / ${r.model} | ${fmt(r.items)} | ${fmt(r.providerRequests)} (${r.providerBatches} batches) | ${fmt(r.inputTokens)} | ${fmt(r.outputTokens)} | $${r.batchCostUsd.toFixed(2)} | $${r.sameRequestsRealtimeListUsd.toFixed(2)} | $${r.oneCallPerItem.listUsd.toFixed(2)} (${fmt(r.oneCallPerItem.inputTokens)} in / ${fmt(r.oneCallPerItem.outputTokens)} out) | ${(r.savingVsOneCallPerItem * 100).toFixed(0)}% |`,
  ),
  "",
  `Ingest: ${fmt(ingest.accepted)} lines (${(ingest.bytes / 1e6).toFixed(0)} MB) through POST /v1/bulk in ${ingest.seconds} s = ${fmt(ingest.itemsPerSecond)} items/s, ${ingest.mbPerSecond} MB/s; producer RSS ${ingest.producerRssIdleMiB} MiB idle, ${ingest.producerRssPeakMiB} MiB peak.`,
].join("\n");
console.log(`\n${table}\n`);
const result = {
  benchmark: "bulk",
  date: new Date().toISOString(),
  quick: args.quick,
  machine: { cpus: os.cpus().length, memGiB: +(os.totalmem() / 2 ** 30).toFixed(1), node: process.version },
  notes: [
    "Ingest: lane batch, the real producer process (SIEVE_ROLE=api) as a child; exact cache on, semantic cache off; texts are AG News test rows repeated with a (#k) suffix.",
    "Cost: provider simulator (token usage counted with o200k for both providers; Anthropic's real tokenizer differs). Batch price = 50% of list (pricing.ts).",
    "1 call/item baseline: single-item prompts of a 1,000-item sample counted with the o200k tokenizer (system + user + chat overhead; schema/tool tokens NOT counted: a lower bound).",
  ],
  ingest,
  cost,
  table,
};
mkdirSync(args.out!, { recursive: true });
const name = args.quick ? "bulk-quick" : "bulk";
const day = new Date().toISOString().slice(0, 10);
writeFileSync(path.join(args.out!, `${name}-${day}.json`), JSON.stringify(result, null, 2) + "\n");
writeFileSync(path.join(args.out!, `${name}-latest.json`), JSON.stringify(result, null, 2) + "\n");
log(`results: ${path.join(args.out!, `${name}-${day}.json`)}`);
process.exit(0);
