/**
 * Builds the local GPU lane from the environment: its engines (SIEVE_GPU_ENGINES or
 * VLLM_BASE_URL), limiter settings and failover route. docs/gpu-lane.md.
 */
import { ConfigError, type Env, type Logger, type ProviderEndpoint, type ProviderName } from "@sieve/shared";
import type { LlmProvider } from "../providers/types.js";
import { GpuPool, type GpuEngineConfig } from "./pool.js";

/** `url` or `url|model` entries, comma-separated; the model defaults to the vLLM endpoint's. */
export function parseGpuEngines(spec: string | undefined, fallback: ProviderEndpoint): GpuEngineConfig[] {
  if (!spec) return [{ baseURL: fallback.baseURL!, model: fallback.defaultModel, apiKey: fallback.apiKey }];
  return spec
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const [url, model] = entry.split("|").map((x) => x.trim());
      if (!url || !/^https?:\/\//.test(url)) throw new ConfigError(`SIEVE_GPU_ENGINES: "${entry}" is not an http(s) base URL (e.g. http://vllm-0:8000/v1)`);
      return { baseURL: url, model: model || fallback.defaultModel, apiKey: fallback.apiKey };
    });
}

/** The provider queues this process consumes. */
export function workerLanes(env: Env, configured: Iterable<ProviderName>): Set<ProviderName> {
  const all = new Set(configured);
  if (env.SIEVE_WORKER_LANES) {
    const asked = env.SIEVE_WORKER_LANES.split(",").map((s) => s.trim()).filter(Boolean);
    for (const a of asked) if (!all.has(a as ProviderName)) throw new ConfigError(`SIEVE_WORKER_LANES: "${a}" is not a configured provider (configured: ${[...all].join(", ")})`);
    return new Set(asked as ProviderName[]);
  }
  if (env.SIEVE_ROLE === "gpu") {
    if (!all.has("vllm")) throw new ConfigError("SIEVE_ROLE=gpu needs a vLLM engine: set VLLM_BASE_URL (or SIEVE_GPU_ENGINES) and VLLM_MODEL");
    return new Set(["vllm"]);
  }
  return all;
}

export function createGpuPool(env: Env, endpoint: ProviderEndpoint, providers: Map<ProviderName, LlmProvider>, log: Logger): GpuPool {
  let fallback: { provider: LlmProvider; model: string } | undefined;
  if (env.SIEVE_GPU_FAILOVER_ROUTE) {
    const i = env.SIEVE_GPU_FAILOVER_ROUTE.indexOf(":");
    const name = env.SIEVE_GPU_FAILOVER_ROUTE.slice(0, i) as ProviderName;
    const provider = providers.get(name);
    if (!provider || name === "vllm") throw new ConfigError(`SIEVE_GPU_FAILOVER_ROUTE: provider "${name}" must be a configured cloud provider`);
    fallback = { provider, model: env.SIEVE_GPU_FAILOVER_ROUTE.slice(i + 1) };
  }
  return new GpuPool({
    engines: parseGpuEngines(env.SIEVE_GPU_ENGINES, endpoint),
    log,
    pollMs: env.SIEVE_GPU_POLL_MS,
    failoverAfterMs: env.SIEVE_GPU_FAILOVER_AFTER_MS,
    ...(fallback ? { fallback } : {}),
    limiter: { max: env.SIEVE_GPU_MAX_CONCURRENCY, waitingHigh: env.SIEVE_GPU_WAITING_HIGH, kvHigh: env.SIEVE_GPU_KV_HIGH, staleMs: env.SIEVE_GPU_STALE_MS },
  });
}
