/**
 * GPU engines on the "Lanes and engines" page. Any engine source can plug in through
 * `EngineSource` (ctx.engines); when none is given and a vLLM server is configured
 * (VLLM_BASE_URL), the console samples that server's Prometheus /metrics and /health itself
 * every 15 s and keeps the last hour (https://docs.vllm.ai/en/latest/usage/metrics.html).
 */
import type { Env } from "@sieve/shared";
import { checkVllmHealth, fetchVllmMetrics } from "@sieve/workers/providers/vllm/metrics";

export interface EngineSample {
  at: number;
  healthy: boolean;
  running?: number | undefined;
  waiting?: number | undefined;
  /** KV-cache usage, 0..1. */
  kvCacheUsage?: number | undefined;
}

export interface EngineStatus {
  id: string;
  url?: string | undefined;
  model?: string | undefined;
  /** Requests Sieve sends to it at once at most, when known. */
  concurrencyLimit?: number | undefined;
  lastError?: string | undefined;
  /** Oldest first; the last one is the current state. */
  samples: EngineSample[];
}

export interface EngineSource {
  engines(): Promise<EngineStatus[]>;
  /** Stops any background sampling. */
  close?(): void;
}

const EVERY_MS = 15_000;
const KEEP = 240;

/** Samples one vLLM server (the configured VLLM_BASE_URL). */
export function vllmEngineSource(env: Env): EngineSource | undefined {
  const base = env.VLLM_BASE_URL;
  if (!base) return undefined;
  const status: EngineStatus = { id: "vllm-0", url: base, model: env.VLLM_MODEL, concurrencyLimit: env.SIEVE_WORKER_CONCURRENCY, samples: [] };
  let timer: NodeJS.Timeout | undefined;
  let last = 0;
  const sample = async () => {
    last = Date.now();
    const s: EngineSample = { at: last, healthy: false };
    try {
      s.healthy = await checkVllmHealth(base);
      const m = await fetchVllmMetrics(base, env.VLLM_MODEL ? { model: env.VLLM_MODEL } : {});
      s.running = m.requestsRunning;
      s.waiting = m.requestsWaiting;
      s.kvCacheUsage = m.kvCacheUsage;
      status.lastError = undefined;
    } catch (e) {
      status.lastError = (e as Error).message.slice(0, 300);
    }
    status.samples.push(s);
    if (status.samples.length > KEEP) status.samples.shift();
  };
  return {
    async engines() {
      if (!timer) {
        timer = setInterval(() => void sample(), EVERY_MS);
        timer.unref();
      }
      if (Date.now() - last > 5_000) await sample();
      return [status];
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
