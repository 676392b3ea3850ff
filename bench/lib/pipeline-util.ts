/** Small helpers for bench/pipeline.ts: seeded randomness, percentiles, the table, machine info. */
import os from "node:os";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

/** LCG, reproducible from a seed (the same shape test/e2e uses). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

/** Uniform integer in [lo, hi]. */
export function randInt(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

/** Cuts `items` into consecutive requests of lo..hi items. */
export function cutRequests<T>(items: readonly T[], lo: number, hi: number, seed: number): T[][] {
  const rand = rng(seed);
  const out: T[][] = [];
  for (let i = 0; i < items.length; ) {
    const n = randInt(rand, lo, hi);
    out.push(items.slice(i, i + n));
    i += n;
  }
  return out;
}

/** Nearest-rank percentile (p in 0..100) of an unsorted list; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export interface Distribution {
  n: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  min: number;
}

export function distribution(values: readonly number[]): Distribution {
  const n = values.length;
  const mean = n === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / n;
  return {
    n,
    mean: round(mean, 1),
    p50: round(percentile(values, 50), 1),
    p90: round(percentile(values, 90), 1),
    p99: round(percentile(values, 99), 1),
    max: round(n ? Math.max(...values) : Number.NaN, 1),
    min: round(n ? Math.min(...values) : Number.NaN, 1),
  };
}

export function round(x: number, digits = 2): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function fmt(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return "n/a";
  return x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A plain three-column text table. */
export function renderTable(rows: Array<[string, string, string] | "---">, headers: [string, string, string]): string {
  const all = rows.filter((r): r is [string, string, string] => r !== "---");
  const w = [0, 1, 2].map((i) => Math.max(headers[i]!.length, ...all.map((r) => r[i]!.length)));
  const line = (r: readonly string[]) => `| ${r.map((c, i) => (i === 1 ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join(" | ")} |`;
  const sep = `|${w.map((n) => "-".repeat(n + 2)).join("|")}|`;
  return [line(headers), sep, ...rows.map((r) => (r === "---" ? sep : line(r)))].join("\n");
}

function tryRun(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return undefined;
  }
}

export function packageVersion(name: string): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    const file = require.resolve(`${name}/package.json`);
    return (JSON.parse(readFileSync(file, "utf8")) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

export function machineInfo() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? "unknown",
    totalMemGiB: round(os.totalmem() / 2 ** 30, 1),
    loadAvgAtStart: os.loadavg().map((l) => round(l, 2)),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    bullmq: packageVersion("bullmq"),
    ioredis: packageVersion("ioredis"),
    gitCommit: tryRun("git", ["rev-parse", "--short", "HEAD"]),
    gitDirty: (tryRun("git", ["status", "--porcelain"]) ?? "").length > 0,
  };
}
