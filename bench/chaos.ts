/**
 * `npm run bench:chaos [-- --quick] [-- --only A,C]`: Sieve under infrastructure faults.
 *
 * One go, everything its own: a redis-server with AOF and a Postgres cluster (initdb in a temp dir,
 * free ports), the provider SIMULATOR at 200-800 ms per call behind a recording proxy, and Sieve as
 * separate processes (API + 3 workers) restarted by a supervisor when they exit. Per scenario: a
 * fresh database, an empty Redis, ~1/6 of 20,000 AG News classify items (~10% repeated texts) from
 * 25 clients that retry with the same Idempotency-Key, and one kind of fault (see
 * bench/lib/chaos-scenarios.ts). Then it waits for the work to drain and counts, from Postgres, the
 * clients' records and the simulator's log, what was accepted, answered, lost, doubled, paid twice
 * or left out of the ledger. Prints a table and writes bench/results/chaos-latest.json
 * (--quick: fewer items, shorter faults, bench/results/chaos-quick.json).
 * See docs/chaos.md.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import pg from "pg";
import { openDb } from "@sieve/shared";
import { agNewsItems } from "../test/support/datasets.js";
import { killAllChildren } from "../test/support/children.js";
import { CHAOS_TENANT_KEY, ChaosStack, partitionedHost, type PartitionedHost } from "./lib/chaos-stack.js";
import { planSubmissions, runClients } from "./lib/chaos-load.js";
import { measure, waitForDrain, type ScenarioResult } from "./lib/chaos-measure.js";
import { SCENARIOS } from "./lib/chaos-scenarios.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, only: { type: "string" }, out: { type: "string" }, keep: { type: "boolean", default: false } } });
const quick = values.quick;
const TOTAL_ITEMS = quick ? 3_000 : 20_000;
const CLIENTS = 25;
const DRAIN_TIMEOUT_MS = quick ? 60_000 : 120_000;
const scenarios = SCENARIOS.filter((s) => !values.only || values.only.split(",").includes(s.id));
const perScenario = Math.round(TOTAL_ITEMS / SCENARIOS.length);
const out = values.out ?? path.join(ROOT, "bench/results", quick ? "chaos-quick.json" : "chaos-latest.json");
const started = Date.now();
const say = (msg: string) => console.log(`[chaos +${Math.round((Date.now() - started) / 1000)}s] ${msg}`);

const tmp = mkdtempSync(path.join(os.tmpdir(), "sieve-chaos-"));
chmodSync(tmp, 0o755); // the postgres user reaches its data dir through here
const stack = new ChaosStack(tmp, { ms: 200, jitterMs: 600 });
let host: PartitionedHost | string | undefined;
const results: ScenarioResult[] = [];

async function runScenario(s: (typeof SCENARIOS)[number], index: number): Promise<ScenarioResult> {
  const db = `chaos_${s.id.toLowerCase()}_${index}`;
  await stack.pg.createDatabase(db);
  const migrated = await openDb({ url: stack.pg.socketUrl(db) });
  await migrated.close();
  const r = stack.redis.client();
  await r.flushall();
  await r.quit();
  await stack.simLog(true);
  if (s.partitionedWorker && host === undefined) host = await partitionedHost(tmp, stack.ports, { redis: stack.redis.socket, pg: stack.pgSocket, sim: stack.simSocket });
  const hostNs = s.partitionedWorker && typeof host === "object" ? host.ns : undefined;
  await stack.up(db, s.id, hostNs);
  say(`${s.id}: ${s.name}: processes up`);

  const texts = agNewsItems().map((x) => x.text);
  const subs = planSubmissions(texts, { count: perScenario, offset: index * 1_250, windowMs: s.windowMs(quick), tag: s.id, seed: 100 + index, waitShare: s.waitShare, wait: s.wait, burstShare: s.burstShare ?? 0 });
  const notes: string[] = [];
  const t0 = Date.now();
  const load = runClients({ apiUrl: `http://127.0.0.1:${stack.ports.api}`, apiKey: CHAOS_TENANT_KEY, submissions: subs, clients: CLIENTS, perSubmissionMs: quick ? 60_000 : 150_000, maxAttempts: 200 });
  await s.run({ stack, quick, ...(s.partitionedWorker && host !== undefined ? { host } : {}), note: (m) => notes.push(m) }, t0);
  const faultEnd = Date.now();
  say(`${s.id}: faults over after ${Math.round((faultEnd - t0) / 1000)} s; waiting for the clients`);
  const stats = await load;
  const pool = new pg.Pool({ connectionString: stack.pg.socketUrl(db), max: 2 });
  pool.on("error", () => {});
  try {
    const doneAt = await waitForDrain(pool, stats, Math.max(0, faultEnd + DRAIN_TIMEOUT_MS - Date.now()));
    const drainSeconds = Math.round(((doneAt ?? Date.now()) - faultEnd) / 100) / 10;
    say(`${s.id}: ${doneAt ? `drained ${drainSeconds} s after the fault` : `NOT drained ${drainSeconds} s after the fault`}`);
    // Let in-flight answers and late writes land before counting the ledger.
    await new Promise((res) => setTimeout(res, 3_000));
    const sim = await stack.simLog(false);
    return await measure(pool, s.name, subs, stats, sim, { drainSeconds, drained: doneAt !== undefined, crashes: stack.crashes(), notes });
  } finally {
    await pool.end();
    await stack.down();
  }
}

function table(rows: ScenarioResult[]): string {
  const cols: Array<[string, (r: ScenarioResult) => string]> = [
    ["scenario", (r) => r.name],
    ["accepted", (r) => String(r.accepted)],
    ["ok", (r) => String(r.ok)],
    ["errored", (r) => String(r.errored)],
    ["lost", (r) => String(r.lost)],
    ["duplicated", (r) => String(r.duplicated)],
    ["processedTwice", (r) => String(r.processedTwice)],
    ["stuck", (r) => String(r.stuck)],
    ["drainSeconds", (r) => `${r.drained ? "" : ">"}${r.drainSeconds}`],
    ["http500", (r) => String(r.http500)],
    ["unrecordedCalls", (r) => String(r.unrecordedCalls)],
    ["notAccepted", (r) => String(r.notAccepted)],
    ["crashes", (r) => String(r.crashes)],
  ];
  const head = `| ${cols.map((c) => c[0]).join(" | ")} |`;
  const sep = `|${cols.map(() => "---").join("|")}|`;
  return [head, sep, ...rows.map((r) => `| ${cols.map((c) => c[1](r)).join(" | ")} |`)].join("\n");
}

function gitDescribe(): string {
  try {
    return execFileSync("git", ["-C", ROOT, "log", "-1", "--format=%h %s"]).toString().trim();
  } catch {
    return "unknown";
  }
}

// Ctrl-C or a TERM from outside: the same clean-up as the normal end.
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    say(`${sig}: stopping everything`);
    void (async () => {
      await killAllChildren();
      if (typeof host === "object") host.close();
      if (!values.keep) rmSync(tmp, { recursive: true, force: true });
      process.exit(130);
    })();
  });
}

let failed = false;
try {
  say(`mode ${quick ? "quick" : "full"}: ${scenarios.length} scenarios x ${perScenario} items, ${CLIENTS} clients; temp dir ${tmp}`);
  await stack.start();
  say(`redis :${stack.ports.redis} (AOF), postgres :${stack.ports.pg}, simulator :${stack.ports.sim} (200-800 ms)`);
  for (const [i, s] of scenarios.entries()) {
    try {
      results.push(await runScenario(s, i));
    } catch (e) {
      failed = true;
      say(`${s.id}: the bench itself failed: ${(e as Error).stack ?? String(e)}`);
      await stack.down().catch(() => {});
    }
  }
  console.log(`\n${table(results)}\n`);
  for (const r of results) for (const n of r.notes) console.log(`${r.name}: ${n}`);
  mkdirSync(path.dirname(out), { recursive: true });
  const doc = {
    generatedAt: new Date().toISOString(),
    mode: quick ? "quick" : "full",
    code: gitDescribe(),
    machine: { cpus: os.cpus().length, node: process.version, loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100) },
    settings: { itemsPerScenario: perScenario, clients: CLIENTS, simulatorLatencyMs: "200-800", drainTimeoutSeconds: DRAIN_TIMEOUT_MS / 1000, redis: "own redis-server, appendonly yes, appendfsync everysec", postgres: "own cluster (initdb), fsync off" },
    scenarios: results,
  };
  writeFileSync(out, `${JSON.stringify(doc, null, 2)}\n`);
  say(`wrote ${path.relative(ROOT, out)} in ${Math.round((Date.now() - started) / 1000)} s`);
} catch (e) {
  failed = true;
  console.error(`[chaos] failed: ${(e as Error).stack ?? String(e)}`);
} finally {
  await stack.close().catch(() => {});
  if (typeof host === "object") host.close();
  await killAllChildren();
  if (!values.keep) rmSync(tmp, { recursive: true, force: true });
  else say(`kept ${tmp} (logs of every process)`);
}
process.exit(failed ? 1 : 0);
