/**
 * GPU engines on the "Lanes and engines" page (docs/console.md "GPU engines"). Any engine source
 * can plug in through `EngineSource` (ctx.engines). The default one (gpuEngines.ts) reads what
 * every GPU worker process publishes to Redis; when no GPU worker publishes and a vLLM server is
 * configured (VLLM_BASE_URL), it samples that server's Prometheus /metrics and /health itself
 * (https://docs.vllm.ai/en/latest/usage/metrics.html) through `vllmDirectSampler` below.
 */
import type { Env } from "@sieve/shared";
import { checkVllmHealth, fetchVllmMetrics } from "@sieve/shared/vllm/metrics";

export interface EngineSample {
  at: number;
  /** Taking work: in every reporting GPU worker process (or answering /health, when sampled directly). */
  healthy: boolean;
  /** What the operator reads: "healthy", "drained in 1 of 2 processes", "not reported", "down"... */
  health?: string | undefined;
  running?: number | undefined;
  waiting?: number | undefined;
  /** KV-cache usage, 0..1. */
  kvCacheUsage?: number | undefined;
  /** Adaptive concurrency limit summed over the GPU worker processes (calls). */
  limit?: number | undefined;
  /** Calls in flight from Sieve, summed over the GPU worker processes. */
  inFlight?: number | undefined;
  /** Each process's limit, in process order (absent when sampled directly). */
  limits?: number[] | undefined;
  /** Limiter decisions seen, e.g. "grow" or "congested, grow". */
  signal?: string | undefined;
  /** GPU worker processes that reported the engine. */
  processes?: number | undefined;
}

export interface EngineStatus {
  id: string;
  url?: string | undefined;
  model?: string | undefined;
  /** Requests Sieve sends to it at once at most, when known (the last sample's limit). */
  concurrencyLimit?: number | undefined;
  /** Where the data comes from: the GPU workers' reports or the console's own probe. */
  source?: "gpu-lane" | "direct" | undefined;
  lastError?: string | undefined;
  /** Oldest first; the last one is the current state. */
  samples: EngineSample[];
}

export interface EngineSource {
  engines(): Promise<EngineStatus[]>;
  /** Stops any background sampling. */
  close?(): void;
}

/** Background sampling period, ms. @defaultValue 15000 */
export const EVERY_MS = 15_000;
/** A page load samples again when the last sample is older than this, ms. @defaultValue 5000 */
export const FRESH_MS = 5_000;
/** Samples kept per engine (an hour at EVERY_MS). @defaultValue 240 */
export const KEEP = 240;

/** Appends a sample, keeping the newest KEEP. */
export function pushSample(status: EngineStatus, s: EngineSample): void {
  status.samples.push(s);
  if (status.samples.length > KEEP) status.samples.splice(0, status.samples.length - KEEP);
}

/**
 * Runs `sample` every EVERY_MS once the page has been opened, and before answering when the last
 * sample is older than FRESH_MS. One sample at a time: a slow one is shared, not repeated.
 */
export function periodic(sample: () => Promise<void>): { ensure(): Promise<void>; close(): void } {
  let timer: NodeJS.Timeout | undefined;
  let last = 0;
  let running: Promise<void> | undefined;
  const once = () => {
    running ??= (async () => {
      last = Date.now();
      try {
        await sample();
      } finally {
        running = undefined;
      }
    })();
    return running;
  };
  return {
    async ensure() {
      if (!timer) {
        timer = setInterval(() => void once().catch(() => {}), EVERY_MS);
        timer.unref();
      }
      if (Date.now() - last > FRESH_MS) await once();
      else if (running) await running;
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}

/** The console's own probe of one vLLM server (the configured VLLM_BASE_URL). */
export interface DirectSampler {
  id: string;
  url: string;
  model: string | undefined;
  concurrencyLimit: number;
  sample(): Promise<{ sample: EngineSample; error?: string | undefined }>;
}

export function vllmDirectSampler(env: Env): DirectSampler | undefined {
  const base = env.VLLM_BASE_URL;
  if (!base) return undefined;
  return {
    id: "vllm-0",
    url: base,
    model: env.VLLM_MODEL,
    // Without a GPU lane, vLLM is a plain provider: the realtime aggregator's concurrency applies.
    concurrencyLimit: env.SIEVE_WORKER_CONCURRENCY,
    async sample() {
      const s: EngineSample = { at: Date.now(), healthy: false, health: "down" };
      try {
        s.healthy = await checkVllmHealth(base);
        s.health = s.healthy ? "healthy" : "down";
        const m = await fetchVllmMetrics(base, env.VLLM_MODEL ? { model: env.VLLM_MODEL } : {});
        s.running = m.requestsRunning;
        s.waiting = m.requestsWaiting;
        s.kvCacheUsage = m.kvCacheUsage;
        return { sample: s };
      } catch (e) {
        return { sample: s, error: (e as Error).message.slice(0, 300) };
      }
    },
  };
}

/** Samples one vLLM server directly, without looking for GPU worker reports. */
export function vllmEngineSource(env: Env): EngineSource | undefined {
  const direct = vllmDirectSampler(env);
  if (!direct) return undefined;
  const status: EngineStatus = { id: direct.id, url: direct.url, model: direct.model, concurrencyLimit: direct.concurrencyLimit, source: "direct", samples: [] };
  const p = periodic(async () => {
    const r = await direct.sample();
    status.lastError = r.error;
    pushSample(status, r.sample);
  });
  return {
    async engines() {
      await p.ensure();
      return [status];
    },
    close: () => p.close(),
  };
}
