/**
 * Console page latency at volume:
 *   npm run bench:console [-- --items 1000000] [-- --runs 10]
 *
 * Seeds a fresh Postgres database with set-based SQL (generate_series): 20 tenants, 1,000 jobs of
 * 1,000 items (1,000,000 items and results; every 97th item failed, every 10th an exact-cache
 * hit), one llm_calls row per 25 items, 500 provider batches with status history, spread over
 * the last 7 days; then the rollups those rows imply (the same columns recordOutcome writes).
 * Starts the real API (startApi) on it and times every console page over HTTP with basic auth:
 * 2 warm-up requests, then `runs` timed ones. Writes bench/results/console-<date>.json and
 * console-latest.json with, per page, p50_ms, max_ms and under_200ms (every timed request < 200 ms).
 *
 * First, on the empty database, what the rollups add to the write path: 400 recordOutcome calls of
 * 25 results each (one LLM call row), timed whole, and the rollup upsert alone timed in 400 more
 * transactions (key `write_overhead`: record_outcome_ms_avg, rollup_ms_avg).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { createLogger, parseEnv, providerEndpoints, queryOne, recordOutcome, type Db, type NewResult } from "@sieve/shared";
import { createJob } from "@sieve/shared/db/ops/jobs";
import { rollupOutcome } from "@sieve/shared/db/ops/rollups";
import { createTestDb, testPrefix } from "@sieve/shared/db/testing";
import { startApi } from "@sieve/producer/server";

const { values: args } = parseArgs({ options: { items: { type: "string", default: "1000000" }, runs: { type: "string", default: "10" } } });
const ITEMS = Number(args.items);
const RUNS = Number(args.runs);
const PER_JOB = 1_000;
const JOBS = Math.max(1, Math.round(ITEMS / PER_JOB));
const WEEK_S = 7 * 24 * 3600;

async function seed(db: Awaited<ReturnType<typeof createTestDb>>["db"]): Promise<Record<string, number>> {
  const t0 = Date.now();
  const x = (q: ReturnType<typeof sql>) => db.execute(q);
  await x(sql`insert into tenants (id, name) select 't' || g, 'Tenant ' || g from generate_series(0, 19) g`);
  await x(sql`insert into api_keys (tenant_id, key_hash, label, last_used_at)
              select 't' || g, md5('a' || g) || md5('b' || g), 'bench', now() - g * interval '1 hour' from generate_series(0, 19) g`);
  // Job j starts (j / JOBS) of a week ago and its items finish over the next 10 minutes.
  await x(sql`insert into jobs (id, tenant_id, task, params, lane, provider, model, prompt_version, batch_key, status, item_count, done_count,
                error_count, enqueued, parcel_count, cached_count, created_at, completed_at)
              select 'job_bench_' || j, 't' || (j % 20), 'classify', '{"task":"classify","labels":["World","Sports","Business","Sci/Tech"]}'::jsonb,
                case when j % 5 = 0 then 'batch' else 'realtime' end, case when j % 3 = 0 then 'anthropic' else 'openai' end,
                case when j % 3 = 0 then 'claude-haiku-4-5' else 'gpt-4.1-mini' end, 'classify.v1', 'bk' || (j % 20),
                'partial', ${PER_JOB}, ${PER_JOB}, ${Math.ceil(PER_JOB / 97)}, true, 40, ${PER_JOB / 10},
                now() - make_interval(secs => ${WEEK_S} * (j + 1)::float8 / ${JOBS}), now() - make_interval(secs => ${WEEK_S} * (j + 1)::float8 / ${JOBS}) + interval '10 minutes'
              from generate_series(0, ${JOBS - 1}) j`);
  await x(sql`insert into items (job_id, tenant_id, seq, external_id, text, created_at)
              select 'job_bench_' || j, 't' || (j % 20), s, 'it-' || s, 'Bench headline ' || s || ' of job ' || j, now() - make_interval(secs => ${WEEK_S} * (j + 1)::float8 / ${JOBS})
              from generate_series(0, ${JOBS - 1}) j, generate_series(0, ${PER_JOB - 1}) s`);
  // One call per 25 items (ids chosen so results can point at them).
  await x(sql`insert into llm_calls (id, tenant_id, provider, model, lane, batch_key, item_count, input_tokens, output_tokens, latency_ms, cost_usd, outcome, valid_count, created_at)
              select j * 40 + c + 1, j2.tenant_id, j2.provider, j2.model, j2.lane, j2.batch_key, 25, 1400, 300, 300 + (c * 97) % 4000,
                case when j2.lane = 'batch' then 0.00052 else 0.00104 end, case when c % 13 = 0 then 'partial' else 'ok' end, 25,
                j2.created_at + make_interval(secs => c * 15)
              from generate_series(0, ${JOBS - 1}) j join jobs j2 on j2.id = 'job_bench_' || j, generate_series(0, 39) c`);
  await x(sql`select setval(pg_get_serial_sequence('llm_calls', 'id'), (select max(id) from llm_calls))`);
  await x(sql`insert into results (item_id, job_id, tenant_id, status, output, error_code, error_message, llm_call_id, provider, model, cache, cost_usd, saved_usd, created_at)
              select i.id, i.job_id, i.tenant_id,
                case when i.seq % 97 = 0 then 'error' else 'ok' end,
                case when i.seq % 97 = 0 then null else '{"label":"Business"}'::jsonb end,
                case when i.seq % 97 = 0 then 'item_missing' end, case when i.seq % 97 = 0 then 'no valid answer for this item after 2 single-item calls' end,
                case when i.seq % 97 <> 0 and i.seq % 10 <> 0 then substring(i.job_id from 11)::bigint * 40 + i.seq / 25 + 1 end,
                j.provider, j.model, case when i.seq % 97 <> 0 and i.seq % 10 = 0 then 'exact' end,
                case when i.seq % 97 <> 0 and i.seq % 10 <> 0 then 0.0000416 else 0 end, case when i.seq % 97 <> 0 and i.seq % 10 = 0 then 0.0000416 else 0 end,
                j.created_at + make_interval(secs => (i.seq / 25) * 15)
              from items i join jobs j on j.id = i.job_id`);
  // The rollups these rows imply (what recordOutcome would have written as they landed).
  await x(sql`insert into rollup_minute (minute, tenant_id, provider, model, lane, items_ok, items_failed, hits_exact, saved_exact_usd)
              select date_trunc('minute', r.created_at), r.tenant_id, r.provider, r.model, j.lane,
                count(*) filter (where r.status = 'ok'), count(*) filter (where r.status = 'error'), count(*) filter (where r.cache = 'exact'), sum(r.saved_usd)
              from results r join jobs j on j.id = r.job_id group by 1, 2, 3, 4, 5`);
  await x(sql`insert into rollup_minute (minute, tenant_id, provider, model, lane, calls, calls_failed, items_sent, input_tokens, output_tokens, cost_usd, packing_tokens, latency_ms_sum, lat_buckets)
              select date_trunc('minute', created_at), tenant_id, provider, model, lane, count(*), 0, sum(item_count), sum(input_tokens), sum(output_tokens), sum(cost_usd),
                sum((item_count - 1) * 180), sum(latency_ms),
                array[count(*) filter (where latency_ms <= 100), count(*) filter (where latency_ms > 100 and latency_ms <= 250),
                      count(*) filter (where latency_ms > 250 and latency_ms <= 500), count(*) filter (where latency_ms > 500 and latency_ms <= 1000),
                      count(*) filter (where latency_ms > 1000 and latency_ms <= 2500), count(*) filter (where latency_ms > 2500 and latency_ms <= 5000),
                      count(*) filter (where latency_ms > 5000), 0, 0, 0, 0, 0]::int[]
              from llm_calls group by 1, 2, 3, 4, 5
              on conflict (minute, tenant_id, provider, model, lane) do update set calls = excluded.calls, items_sent = excluded.items_sent,
                input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, cost_usd = excluded.cost_usd,
                packing_tokens = excluded.packing_tokens, latency_ms_sum = excluded.latency_ms_sum, lat_buckets = excluded.lat_buckets`);
  await x(sql`insert into rollup_errors (minute, tenant_id, provider, model, lane, code, n)
              select date_trunc('minute', r.created_at), r.tenant_id, r.provider, r.model, j.lane, r.error_code, count(*)
              from results r join jobs j on j.id = r.job_id where r.status = 'error' group by 1, 2, 3, 4, 5, 6`);
  // Provider batches: the trigger records each state change as status history.
  await x(sql`insert into provider_batches (provider, model, batch_key, params, tenant_id, tenant_ids, state, provider_status, request_count, item_count, est_input_tokens, created_at)
              select 'openai', 'gpt-4.1-mini', 'bk' || (b % 20), '{}'::jsonb, 't' || (b % 20), array['t' || (b % 20)], 'submitted', 'in_progress', 40, 1000, 56000,
                now() - make_interval(secs => ${WEEK_S} * b::float8 / 500)
              from generate_series(0, 499) b`);
  await x(sql`update provider_batches set state = 'ended', provider_status = 'completed' where id % 2 = 0`);
  await x(sql`update provider_batches set state = 'settled', ok_items = 990, errored_items = 10, cost_usd = 0.0208 where id % 2 = 0`);
  await x(sql`analyze`);
  const n = await queryOne<{ items: number; results: number; calls: number; rollups: number; batches: number }>(
    db,
    sql`select (select count(*) from items)::int as items, (select count(*) from results)::int as results, (select count(*) from llm_calls)::int as calls,
               (select count(*) from rollup_minute)::int as rollups, (select count(*) from provider_batches)::int as batches`,
  );
  return { ...n, seed_s: Math.round((Date.now() - t0) / 100) / 10 };
}

/** The write path with rollups: recordOutcome of 25-item calls, and the rollup statement alone. */
async function writeOverhead(db: Db): Promise<{ calls: number; record_outcome_ms_avg: number; rollup_ms_avg: number }> {
  const N = 400;
  const PER = 25;
  await db.execute(sql`insert into tenants (id, name) values ('w', 'w') on conflict do nothing`);
  const created = await createJob(db, {
    id: "job_write_overhead", tenantId: "w", task: "classify", params: { task: "classify", labels: ["a", "b"] }, lane: "realtime",
    provider: "openai", model: "gpt-4.1-mini", promptVersion: "classify.v1", batchKey: "bk-w",
    items: Array.from({ length: N * PER }, (_, i) => ({ externalId: `w${i}`, text: `write overhead item ${i}` })),
  });
  const call = { tenantId: "w", provider: "openai", model: "gpt-4.1-mini", lane: "realtime", batchKey: "bk-w", itemCount: PER, inputTokens: 900, outputTokens: 200, latencyMs: 420, costUsd: "0.00068000", outcome: "ok", validCount: PER };
  const rows = (k: number): NewResult[] => created.slice(k * PER, (k + 1) * PER).map((it) => ({ itemId: it.id, jobId: "job_write_overhead", tenantId: "w", status: "ok", output: { label: "a" }, provider: "openai", model: "gpt-4.1-mini", costUsd: 0.0000272 }));
  let t = performance.now();
  for (let k = 0; k < N; k++) await recordOutcome(db, call, rows(k));
  const record = (performance.now() - t) / N;
  const laneOf = new Map([["job_write_overhead", "realtime"]]);
  t = performance.now();
  for (let k = 0; k < N; k++) await db.transaction((tx) => rollupOutcome(tx as unknown as Db, call, rows(k), laneOf));
  const rollup = (performance.now() - t) / N;
  await db.execute(sql`delete from jobs where id = 'job_write_overhead'`);
  await db.execute(sql`delete from llm_calls; delete from rollup_minute; delete from rollup_errors; delete from tenants where id = 'w'`);
  return { calls: N, record_outcome_ms_avg: Math.round(record * 100) / 100, rollup_ms_avg: Math.round(rollup * 100) / 100 };
}

async function main(): Promise<void> {
  const db = await createTestDb("sieve_bench_console");
  const log = createLogger({ level: "silent" });
  let api: Awaited<ReturnType<typeof startApi>> | undefined;
  try {
    const write_overhead = await writeOverhead(db.db);
    console.log("write path:", write_overhead);
    console.log(`seeding ${ITEMS.toLocaleString()} items ...`);
    const seeded = await seed(db.db);
    console.log(seeded);
    const env = parseEnv({
      PORT: "0", HOST: "127.0.0.1", REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379", DATABASE_URL: db.url,
      SIEVE_QUEUE_PREFIX: testPrefix("bench-console"), OPENAI_API_KEY: "sk-bench-not-used", OPENAI_BASE_URL: "http://127.0.0.1:9/v1",
      SIEVE_ADMIN_USER: "admin", SIEVE_ADMIN_PASSWORD: "bench", SIEVE_SEMANTIC_CACHE: "off", SIEVE_BATCH_LANE: "true", LOG_LEVEL: "silent",
    });
    api = await startApi({ env, db: db.db, endpoints: providerEndpoints(env), log });
    const auth = { authorization: `Basic ${Buffer.from("admin:bench").toString("base64")}` };
    const pages: Array<[string, string]> = [
      ["overview (hour)", "/admin?range=hour"],
      ["overview (day)", "/admin?range=day"],
      ["overview (week)", "/admin?range=week"],
      ["overview (week, one tenant)", "/admin?range=week&tenant=t7"],
      ["jobs", "/admin/jobs"],
      ["jobs (tenant + status)", "/admin/jobs?tenant=t3&status=partial"],
      ["job (1,000 items, failed first)", `/admin/jobs/job_bench_${Math.floor(JOBS / 2)}`],
      ["batches", "/admin/batches"],
      ["batch", "/admin/batches/250"],
      ["lanes", "/admin/lanes"],
      ["tenants", "/admin/tenants"],
    ];
    const out: Array<{ page: string; path: string; p50_ms: number; max_ms: number; under_200ms: boolean; bytes: number }> = [];
    for (const [name, p] of pages) {
      const times: number[] = [];
      let bytes = 0;
      for (let i = 0; i < RUNS + 2; i++) {
        const t = performance.now();
        const res = await fetch(`${api.url}${p}`, { headers: auth });
        const body = await res.text();
        const dt = performance.now() - t;
        if (res.status !== 200) throw new Error(`${p}: HTTP ${res.status} ${body.slice(0, 200)}`);
        bytes = body.length;
        if (i >= 2) times.push(dt);
      }
      times.sort((a, b) => a - b);
      const row = { page: name, path: p, p50_ms: Math.round(times[Math.floor(times.length / 2)]! * 10) / 10, max_ms: Math.round(times[times.length - 1]! * 10) / 10, under_200ms: times[times.length - 1]! < 200, bytes };
      out.push(row);
    }
    console.log("\npage                               p50 ms   max ms   < 200 ms");
    for (const r of out) console.log(`${r.page.padEnd(34)} ${String(r.p50_ms).padStart(7)} ${String(r.max_ms).padStart(8)}   ${r.under_200ms ? "yes" : "NO"}`);
    const result = { date: new Date().toISOString(), machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model }, items: ITEMS, runs: RUNS, seeded, write_overhead, pages: out, all_under_200ms: out.every((r) => r.under_200ms) };
    const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "results");
    mkdirSync(dir, { recursive: true });
    const tag = ITEMS === 1_000_000 ? "console" : `console-${ITEMS}`;
    writeFileSync(path.join(dir, `${tag}-${result.date.slice(0, 10)}.json`), JSON.stringify(result, null, 2) + "\n");
    writeFileSync(path.join(dir, `${tag}-latest.json`), JSON.stringify(result, null, 2) + "\n");
    console.log(`\nall pages under 200 ms: ${result.all_under_200ms}`);
  } finally {
    await api?.close();
    await db.drop();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
