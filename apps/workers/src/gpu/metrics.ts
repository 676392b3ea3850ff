/**
 * Prometheus metrics of the local GPU lane, one series per engine (its base URL), on the
 * process registry (README "Operating"; docs/gpu-lane.md "What to watch").
 */
import { Counter, Gauge } from "prom-client";
import { registry } from "@sieve/shared";

const engine = ["engine"] as const;

export const gpuMetrics = {
  limit: new Gauge({ name: "sieve_gpu_engine_limit", help: "Adaptive concurrency limit of a vLLM engine (calls)", labelNames: engine, registers: [registry] }),
  inFlight: new Gauge({ name: "sieve_gpu_engine_in_flight", help: "Calls in flight to a vLLM engine from this process", labelNames: engine, registers: [registry] }),
  healthy: new Gauge({ name: "sieve_gpu_engine_healthy", help: "1 while a vLLM engine takes work (health checked, not drained)", labelNames: engine, registers: [registry] }),
  running: new Gauge({ name: "sieve_gpu_engine_requests_running", help: "vllm:num_requests_running as last polled", labelNames: engine, registers: [registry] }),
  waiting: new Gauge({ name: "sieve_gpu_engine_requests_waiting", help: "vllm:num_requests_waiting as last polled", labelNames: engine, registers: [registry] }),
  kvUsage: new Gauge({ name: "sieve_gpu_engine_kv_cache_usage", help: "vllm:kv_cache_usage_perc (0..1) as last polled", labelNames: engine, registers: [registry] }),
  metricsAge: new Gauge({ name: "sieve_gpu_engine_metrics_age_seconds", help: "Age of the last successful /metrics poll", labelNames: engine, registers: [registry] }),
  drains: new Counter({ name: "sieve_gpu_engine_drains_total", help: "Times a vLLM engine was drained after failures", labelNames: engine, registers: [registry] }),
  failovers: new Counter({ name: "sieve_gpu_failovers_total", help: "Calls sent to the cloud failover route because no vLLM engine was healthy", labelNames: ["provider", "model"], registers: [registry] }),
};
