/**
 * The GPU lane's state as the API process sees it: every GPU worker process writes its lane stats
 * into one Redis hash (field = process id, value = JSON with a timestamp); the lane router sums
 * the fresh entries. Stale entries (a dead process) are ignored, then removed by the next writer.
 */
import type { Redis } from "ioredis";

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
