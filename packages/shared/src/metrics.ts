/**
 * Prometheus metrics (prom-client), one registry per process. The API serves them at /metrics;
 * a workers-only process serves them on SIEVE_WORKER_METRICS_PORT.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: "sieve_process_" });

export const metrics = {
  itemsSubmitted: new Counter({ name: "sieve_items_submitted_total", help: "Items accepted by the API", labelNames: ["task", "lane"], registers: [registry] }),
  itemsFinished: new Counter({ name: "sieve_items_finished_total", help: "Items that reached a final result", labelNames: ["status", "cache"], registers: [registry] }),
  llmCalls: new Counter({ name: "sieve_llm_calls_total", help: "Provider requests made", labelNames: ["provider", "model", "lane", "outcome"], registers: [registry] }),
  llmItems: new Counter({ name: "sieve_llm_call_items_total", help: "Items sent in provider requests (with retries)", labelNames: ["provider", "model", "lane"], registers: [registry] }),
  tokens: new Counter({ name: "sieve_tokens_total", help: "Tokens by kind", labelNames: ["provider", "model", "kind"], registers: [registry] }),
  costUsd: new Counter({ name: "sieve_cost_usd_total", help: "Provider cost in USD (price table)", labelNames: ["provider", "model", "lane"], registers: [registry] }),
  callLatency: new Histogram({
    name: "sieve_llm_call_seconds",
    help: "Provider request latency",
    labelNames: ["provider"],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [registry],
  }),
  cacheLookups: new Counter({ name: "sieve_cache_lookups_total", help: "Cache lookups by outcome", labelNames: ["kind", "outcome"], registers: [registry] }),
  cacheAudits: new Counter({ name: "sieve_cache_audits_total", help: "Semantic hits re-checked by the LLM, by agreement", labelNames: ["task", "agree"], registers: [registry] }),
  flexFallbacks: new Counter({ name: "sieve_flex_fallbacks_total", help: "OpenAI flex calls refused with a 429 and sent again at the default tier", labelNames: ["model"], registers: [registry] }),
  routedItems: new Counter({ name: "sieve_routed_items_total", help: "Items placed by the lane router (lane auto), by lane", labelNames: ["lane"], registers: [registry] }),
  httpRequests: new Counter({ name: "sieve_http_requests_total", help: "API requests", labelNames: ["route", "status"], registers: [registry] }),
};

/** Counts one recorded provider request (an llm_calls row) in the counters above. */
export function observeLlmCall(c: { provider: string; model: string; lane: string; outcome: string; itemCount: number; inputTokens?: number | undefined; outputTokens?: number | undefined; cachedInputTokens?: number | undefined; costUsd?: string | undefined; latencyMs?: number | undefined }): void {
  const labels = { provider: c.provider, model: c.model };
  metrics.llmCalls.inc({ ...labels, lane: c.lane, outcome: c.outcome });
  metrics.llmItems.inc({ ...labels, lane: c.lane }, c.itemCount);
  if (c.inputTokens) metrics.tokens.inc({ ...labels, kind: "input" }, c.inputTokens);
  if (c.outputTokens) metrics.tokens.inc({ ...labels, kind: "output" }, c.outputTokens);
  if (c.cachedInputTokens) metrics.tokens.inc({ ...labels, kind: "cached_input" }, c.cachedInputTokens);
  if (c.costUsd && Number(c.costUsd)) metrics.costUsd.inc({ ...labels, lane: c.lane }, Number(c.costUsd));
  if (c.latencyMs) metrics.callLatency.observe({ provider: c.provider }, c.latencyMs / 1000);
}
