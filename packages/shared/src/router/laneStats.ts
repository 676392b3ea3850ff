/**
 * The GPU lane's state as the API process sees it: every GPU worker process writes its lane stats
 * into one Redis hash (field = process id, value = JSON with a timestamp); the lane router sums
 * the fresh entries. Stale entries (a dead process) are ignored, then removed by the next writer.
 */
import type { Redis } from "ioredis";
import { z } from "zod";

export interface GpuLaneStats {
  itemsPerS: number;
  healthyEngines: number;
  capacity: number;
  at: number;
}

/** Entries older than this are ignored, ms. @defaultValue 10000 */
export const GPU_STATS_TTL_MS = 10_000;

export function gpuStatsKey(prefix: string): string {
  return `${prefix}:gpu-lane:stats`;
}

export async function publishGpuStats(redis: Redis, prefix: string, processId: string, stats: Omit<GpuLaneStats, "at">, now = Date.now()): Promise<void> {
  const key = gpuStatsKey(prefix);
  await redis.hset(key, processId, JSON.stringify({ ...stats, at: now }));
  await redis.pexpire(key, GPU_STATS_TTL_MS * 6);
}

/** The sum over fresh entries; undefined when no GPU worker reported recently. */
export async function readGpuStats(redis: Redis, prefix: string, now = Date.now()): Promise<GpuLaneStats | undefined> {
  const all = await redis.hgetall(gpuStatsKey(prefix));
  let out: GpuLaneStats | undefined;
  for (const [field, raw] of Object.entries(all)) {
    let s: GpuLaneStats;
    try {
      s = JSON.parse(raw) as GpuLaneStats;
    } catch {
      continue;
    }
    if (now - s.at > GPU_STATS_TTL_MS) {
      await redis.hdel(gpuStatsKey(prefix), field);
      continue;
    }
    out = out
      ? { itemsPerS: out.itemsPerS + s.itemsPerS, healthyEngines: out.healthyEngines + s.healthyEngines, capacity: out.capacity + s.capacity, at: Math.max(out.at, s.at) }
      : s;
  }
  return out;
}

/**
 * Per-engine state of the GPU lane for the operator console (docs/console.md "GPU engines"): a
 * second hash next to the lane stats, one field per GPU worker process, the value a JSON report of
 * that process's engines. Same freshness rule as the lane stats.
 */
export const GpuEngineState = z.object({
  /** Position in SIEVE_GPU_ENGINES, e.g. "vllm-0". */
  id: z.string().max(64),
  /** The engine's base URL (the key engines are merged on across processes). */
  url: z.string().max(512),
  model: z.string().max(256),
  health: z.enum(["unknown", "healthy", "drained"]),
  /** This process's adaptive concurrency limit for the engine (calls). */
  limit: z.number(),
  inFlight: z.number(),
  /** The limiter's last decision (grow, hold, congested, stale). */
  signal: z.string().max(32),
  running: z.number().optional(),
  waiting: z.number().optional(),
  /** KV-cache usage, 0..1. */
  kvUsage: z.number().optional(),
  /** When the gauges above were read from the engine's /metrics, ms since the epoch. */
  gaugesAt: z.number().optional(),
  lastError: z.string().max(300).optional(),
});
export type GpuEngineState = z.infer<typeof GpuEngineState>;

export const GpuEngineReport = z.object({ at: z.number(), engines: z.array(GpuEngineState).max(64) });
export type GpuEngineReport = z.infer<typeof GpuEngineReport> & { process: string };

/** Engines one process publishes at most (the report stays small). @defaultValue 64 */
export const GPU_ENGINES_MAX = 64;

export function gpuEnginesKey(prefix: string): string {
  return `${prefix}:gpu-lane:engines`;
}

export async function publishGpuEngines(redis: Redis, prefix: string, processId: string, engines: GpuEngineState[], now = Date.now()): Promise<void> {
  const key = gpuEnginesKey(prefix);
  const report: z.infer<typeof GpuEngineReport> = { at: now, engines: engines.slice(0, GPU_ENGINES_MAX) };
  await redis.multi().hset(key, processId, JSON.stringify(report)).pexpire(key, GPU_STATS_TTL_MS * 6).exec();
}

/** A process that stops cleanly removes its report at once instead of letting it go stale. */
export async function withdrawGpuEngines(redis: Redis, prefix: string, processId: string): Promise<void> {
  await redis.hdel(gpuEnginesKey(prefix), processId);
}

/** Fresh reports, one per live GPU worker process; stale ones (a dead process) are removed. */
export async function readGpuEngines(redis: Redis, prefix: string, now = Date.now()): Promise<GpuEngineReport[]> {
  const key = gpuEnginesKey(prefix);
  const all = await redis.hgetall(key);
  const out: GpuEngineReport[] = [];
  const stale: string[] = [];
  for (const [field, raw] of Object.entries(all)) {
    let parsed: ReturnType<typeof GpuEngineReport.safeParse>;
    try {
      parsed = GpuEngineReport.safeParse(JSON.parse(raw));
    } catch {
      stale.push(field);
      continue;
    }
    if (!parsed.success || now - parsed.data.at > GPU_STATS_TTL_MS) stale.push(field);
    else out.push({ ...parsed.data, process: field });
  }
  if (stale.length > 0) await redis.hdel(key, ...stale);
  return out.sort((a, b) => a.process.localeCompare(b.process));
}
