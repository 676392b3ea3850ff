/**
 * The console's default engine source (docs/console.md "GPU engines"): every GPU worker process
 * publishes its engines' state to Redis once a second (packages/shared/src/router/laneStats.ts);
 * this source reads the fresh reports every EVERY_MS (and on a page load when its last sample is
 * older than FRESH_MS), merges them per engine URL across processes and keeps a bounded history
 * per engine. Only while no GPU worker publishes does it probe the configured vLLM server itself.
 */
import type { Redis } from "ioredis";
import { readGpuEngines, safeErrorMessage, type DependencyMonitor, type GpuEngineReport, type GpuEngineState, type Logger } from "@sieve/shared";
import { EVERY_MS, KEEP, periodic, pushSample, type DirectSampler, type EngineSample, type EngineSource, type EngineStatus } from "./engines.js";

/** Engines no report has named for this long leave the page, ms. @defaultValue KEEP * EVERY_MS (an hour) */
const FORGET_MS = KEEP * EVERY_MS;
/** Engines tracked at most (the least recently reported go first). @defaultValue 64 */
const MAX_ENGINES = 64;

export interface MergedEngine {
  id: string;
  url: string;
  model: string;
  sample: Omit<EngineSample, "at">;
  lastError?: string | undefined;
}

const WORD: Record<GpuEngineState["health"], string> = { healthy: "healthy", drained: "drained", unknown: "starting" };

/**
 * One entry per engine URL over all processes' reports: limits and in-flight calls add up (each
 * process has its own limiter for the engine); the gauges are the engine's own, so the freshest
 * reading wins; the engine is healthy only when every process that reports it says so.
 */
export function mergeReports(reports: GpuEngineReport[]): MergedEngine[] {
  const byUrl = new Map<string, GpuEngineState[]>();
  for (const r of reports) for (const e of r.engines) byUrl.set(e.url, [...(byUrl.get(e.url) ?? []), e]);
  return [...byUrl.entries()].map(([url, states]) => {
    const n = states.length;
    const counts = new Map<string, number>();
    for (const s of states) counts.set(WORD[s.health], (counts.get(WORD[s.health]) ?? 0) + 1);
    const health = counts.size === 1 ? [...counts.keys()][0]! : [...counts].map(([w, c]) => `${w} in ${c} of ${n} processes`).join(", ");
    const gauges = states.filter((s) => s.gaugesAt !== undefined).sort((a, b) => b.gaugesAt! - a.gaugesAt!)[0];
    return {
      id: states[0]!.id,
      url,
      model: states[0]!.model,
      sample: {
        healthy: states.every((s) => s.health === "healthy"),
        health,
        limit: states.reduce((a, s) => a + s.limit, 0),
        limits: states.map((s) => s.limit),
        inFlight: states.reduce((a, s) => a + s.inFlight, 0),
        signal: [...new Set(states.map((s) => s.signal))].join(", "),
        processes: n,
        running: gauges?.running,
        waiting: gauges?.waiting,
        kvCacheUsage: gauges?.kvUsage,
      },
      lastError: states.find((s) => s.lastError)?.lastError,
    };
  });
}

export interface GpuLaneEngineSourceOptions {
  redis: Redis;
  prefix: string;
  log: Logger;
  /** Redis errors during an outage are reported here (one line per outage, not one per sample). */
  monitor?: DependencyMonitor | undefined;
  /** Probed only while no GPU worker process publishes. */
  direct?: DirectSampler | undefined;
}

type Tracked = EngineStatus & { seenAt: number };

export function gpuLaneEngineSource(o: GpuLaneEngineSourceOptions): EngineSource {
  const byUrl = new Map<string, Tracked>();
  const track = (url: string, id: string, model: string | undefined, source: EngineStatus["source"], now: number): Tracked => {
    let t = byUrl.get(url);
    if (!t) {
      const taken = new Set([...byUrl.values()].map((x) => x.id));
      let unique = id;
      for (let i = 2; taken.has(unique); i++) unique = `${id}-${i}`;
      t = { id: unique, url, model, source, samples: [], seenAt: now };
      byUrl.set(url, t);
    }
    t.source = source;
    t.seenAt = now;
    if (model) t.model = model;
    return t;
  };
  const sample = async () => {
    const now = Date.now();
    let reports: GpuEngineReport[];
    try {
      reports = await readGpuEngines(o.redis, o.prefix, now);
    } catch (e) {
      if (!o.monitor?.report(e, "console gpu engines")) o.log.warn({ err: safeErrorMessage(e) }, "could not read the GPU workers' engine reports");
      // The history stays; the page shows how old the last sample is and why.
      for (const t of byUrl.values()) t.lastError = `could not read the GPU workers' reports: ${safeErrorMessage(e).slice(0, 200)}`;
      return;
    }
    const seen = new Set<string>();
    if (reports.length > 0) {
      for (const m of mergeReports(reports)) {
        const t = track(m.url, m.id, m.model, "gpu-lane", now);
        pushSample(t, { at: now, ...m.sample });
        t.concurrencyLimit = m.sample.limit;
        t.lastError = m.lastError;
        seen.add(m.url);
      }
    } else if (o.direct) {
      const d = o.direct;
      const r = await d.sample();
      const t = track(d.url, d.id, d.model, "direct", now);
      pushSample(t, { ...r.sample, at: now });
      t.concurrencyLimit = d.concurrencyLimit;
      t.lastError = r.error;
      seen.add(d.url);
    }
    for (const [url, t] of byUrl) {
      if (seen.has(url)) continue;
      if (now - t.seenAt > FORGET_MS) {
        byUrl.delete(url);
        continue;
      }
      // A process that died stops reporting; an engine nobody reports takes no work.
      pushSample(t, { at: now, healthy: false, health: reports.length > 0 ? "not reported by any GPU worker" : "no GPU worker reports" });
    }
    if (byUrl.size > MAX_ENGINES) {
      const oldest = [...byUrl.entries()].sort((a, b) => a[1].seenAt - b[1].seenAt).slice(0, byUrl.size - MAX_ENGINES);
      for (const [url] of oldest) byUrl.delete(url);
    }
  };
  const p = periodic(sample);
  return {
    async engines() {
      await p.ensure();
      return [...byUrl.values()].sort((a, b) => a.id.localeCompare(b.id, "en", { numeric: true })).map(({ seenAt: _seenAt, ...s }) => ({ ...s, samples: [...s.samples] }));
    },
    close: () => p.close(),
  };
}
