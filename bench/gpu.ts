/**
 * GPU lane benchmark (docs/gpu-lane.md), against SIMULATED vLLM engines (tools/simulator, each in
 * its own process, continuous-batching timing calibrated to one H100; see
 * tools/simulator/src/vllm/batching.ts). Not a GPU measurement.
 *   npx tsx bench/gpu.ts [--quick]
 *
 * (a) Fixed concurrency 1, 2, 4 ... 256 against the adaptive limiter (untuned defaults) on the
 *     same engine: items/s and p95 latency of a call at the engine.
 * (b) Two engines; one is SIGKILLed mid-run and restarted 3 s later: items lost, duplicated, and
 *     seconds until the lane's throughput is back to 90% of what it was before the kill.
 * (c) The lane router on a mixed workload (bench/lib/gpu-router.ts).
 * Writes bench/results/gpu-latest.json (the summary keys) and gpu-details-latest.json (every row).
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createLogger } from "@sieve/shared";
import { VllmProvider } from "../apps/workers/src/providers/vllm/index.js";
import { GpuPool } from "../apps/workers/src/gpu/pool.js";
import { p95, runLoad } from "./lib/gpu-load.js";
import { routerBench } from "./lib/gpu-router.js";

const { values: args } = parseArgs({ options: { quick: { type: "boolean", default: false }, out: { type: "string", default: "bench/results" } } });
const MODEL = "Qwen/Qwen2.5-7B-Instruct-AWQ";
const TIME_SCALE = 5;
const ITEMS_PER_CALL = 20;
const WINDOW_MS = args.quick ? 4_000 : 9_000;
const WARMUP_MS = args.quick ? 1_000 : 2_000;
const silent = createLogger({ level: "silent" });
const here = path.dirname(fileURLToPath(import.meta.url));

async function engine(port = 0): Promise<{ url: string; child: ChildProcess }> {
  const child = fork(path.join(here, "lib/gpu-engine-child.ts"), [], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, BENCH_GPU_PORT: String(port), BENCH_GPU_TIME_SCALE: String(TIME_SCALE) },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.once("message", (m: { url: string }) => resolve(m.url));
    child.once("exit", (code) => reject(new Error(`engine exited (${code})`)));
  });
  return { url, child };
}

const stopEngine = (e: { child: ChildProcess }) => new Promise<void>((r) => (e.child.exitCode !== null || e.child.signalCode !== null ? r() : (e.child.once("exit", () => r()), e.child.kill("SIGTERM"))));

// --- (a) fixed vs adaptive ----------------------------------------------------------------
const settings = args.quick ? [1, 4, 16, 64, 256] : [1, 2, 4, 8, 16, 32, 64, 128, 256];
const rows: Array<{ mode: string; concurrency: number | string; itemsPerS: number; p95Ms: number; calls: number }> = [];
{
  const e = await engine();
  const direct = new VllmProvider({ provider: "vllm", baseURL: `${e.url}/vllm/v1`, apiKey: "EMPTY", defaultModel: MODEL, simulated: true });
  for (const c of settings) {
    const r = await runLoad(direct, MODEL, { callers: c, itemsPerCall: ITEMS_PER_CALL, durationMs: WINDOW_MS, warmupMs: WARMUP_MS, tag: `fixed${c}` });
    rows.push({ mode: "fixed", concurrency: c, itemsPerS: (r.measuredItems / r.measuredMs) * 1000, p95Ms: p95(r.latencies), calls: r.latencies.length });
    console.log(`fixed ${String(c).padStart(3)}: ${rows.at(-1)!.itemsPerS.toFixed(1)} items/s, p95 ${Math.round(rows.at(-1)!.p95Ms)} ms`);
  }
  const pool = new GpuPool({ engines: [{ baseURL: `${e.url}/vllm/v1`, model: MODEL }], log: silent });
  await pool.start();
  // Demand well above any useful concurrency: the limiter alone decides what reaches the engine.
  const r = await runLoad(pool, MODEL, { callers: 256, itemsPerCall: ITEMS_PER_CALL, durationMs: WINDOW_MS + 3_000, warmupMs: WARMUP_MS + 3_000, tag: "adaptive" });
  rows.push({ mode: "adaptive", concurrency: `limit ${pool.snapshot()[0]!.limit}`, itemsPerS: (r.measuredItems / r.measuredMs) * 1000, p95Ms: p95(r.latencies), calls: r.latencies.length });
  console.log(`adaptive (${rows.at(-1)!.concurrency}): ${rows.at(-1)!.itemsPerS.toFixed(1)} items/s, p95 ${Math.round(rows.at(-1)!.p95Ms)} ms`);
  pool.close();
  await stopEngine(e);
}
const fixed = rows.filter((r) => r.mode === "fixed");
const best = fixed.reduce((a, b) => (b.itemsPerS > a.itemsPerS ? b : a));
const adaptive = rows.find((r) => r.mode === "adaptive")!;

// --- (b) one of two engines killed --------------------------------------------------------
let engineKill: { lost: number; duplicated: number; recoverSeconds: number };
{
  const a = await engine();
  const b = await engine();
  const port = Number(new URL(a.url).port);
  const pool = new GpuPool({ engines: [a, b].map((e) => ({ baseURL: `${e.url}/vllm/v1`, model: MODEL })), log: silent });
  await pool.start();
  const killAt = args.quick ? 5_000 : 8_000;
  let restarted: { url: string; child: ChildProcess } | undefined;
  const load = runLoad(pool, MODEL, { callers: 128, itemsPerCall: ITEMS_PER_CALL, durationMs: killAt + (args.quick ? 10_000 : 15_000), warmupMs: 0, tag: "kill" });
  await new Promise((r) => setTimeout(r, killAt));
  a.child.kill("SIGKILL");
  await new Promise((r) => setTimeout(r, 3_000));
  restarted = await engine(port);
  const r = await load;
  let duplicated = 0;
  for (const n of r.answered.values()) if (n > 1) duplicated++;
  const lost = [...r.sent].filter((id) => !r.answered.has(id)).length;
  // Throughput per second (4 slots of 250 ms): the mean of the last 3 s before the kill is the bar.
  const perS = (i: number) => r.timeline.slice(i, i + 4).reduce((x, y) => x + y, 0);
  const killSlot = killAt / 250;
  const before = (perS(killSlot - 12) + perS(killSlot - 8) + perS(killSlot - 4)) / 3;
  let recover = NaN;
  for (let s = killSlot; s + 4 <= r.timeline.length; s++) {
    if (perS(s) >= 0.9 * before) {
      recover = ((s + 4) * 250 - killAt) / 1000;
      if (s > killSlot + 4) break;
    }
  }
  engineKill = { lost, duplicated, recoverSeconds: Math.round(recover * 10) / 10 };
  console.log(`engine kill: lost ${lost}, duplicated ${duplicated}, back to 90% of ${Math.round(before)} items/s after ${engineKill.recoverSeconds} s (engine down 3 s)`);
  pool.close();
  await Promise.all([stopEngine(b), stopEngine(restarted)]);
}

// --- (c) the router ------------------------------------------------------------------------
const router = routerBench({ items: args.quick ? 20_000 : 100_000, localShare: 0.5, seed: 9 });
console.log(`router: cost ${(router.summary.costVsRealtime * 100).toFixed(1)}% of all-realtime, ${router.summary.deadlineMisses} deadline misses`);

const summary = {
  adaptive: { itemsPerS: round(adaptive.itemsPerS), p95Ms: Math.round(adaptive.p95Ms) },
  bestFixed: { concurrency: best.concurrency as number, itemsPerS: round(best.itemsPerS), p95Ms: Math.round(best.p95Ms) },
  ratio: round(adaptive.itemsPerS / best.itemsPerS, 3),
  engineKill,
  router: router.summary,
};
console.log("\n| setting | items/s | p95 ms | calls |\n|---|---|---|---|");
for (const r of rows) console.log(`| ${r.mode} ${r.concurrency} | ${r.itemsPerS.toFixed(1)} | ${Math.round(r.p95Ms)} | ${r.calls} |`);
console.log(`\nadaptive / best fixed (${best.concurrency}): throughput ${summary.ratio}, p95 ${(adaptive.p95Ms / best.p95Ms).toFixed(2)}x`);
mkdirSync(args.out!, { recursive: true });
const name = args.quick ? "gpu-quick" : "gpu";
writeFileSync(path.join(args.out!, `${name}-latest.json`), JSON.stringify(summary, null, 2) + "\n");
writeFileSync(
  path.join(args.out!, `${name}-details-latest.json`),
  JSON.stringify({ note: "simulated vLLM engines (tools/simulator), not a GPU", timeScale: TIME_SCALE, itemsPerCall: ITEMS_PER_CALL, windowMs: WINDOW_MS, rows, router: router.details }, null, 2) + "\n",
);

function round(x: number, d = 1): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}
