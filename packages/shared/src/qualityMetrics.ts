/** Prometheus metrics of answer quality (docs/quality.md), in the process registry (metrics.ts). */
import { Counter, Gauge } from "prom-client";
import { registry } from "./metrics.js";

export const qualityMetrics = {
  rechecks: new Counter({
    name: "sieve_recheck_total",
    help: "Items of multi-item calls asked again alone, by agreement (agree=none: the single call gave no valid answer)",
    labelNames: ["task", "model", "items_per_call", "agree"],
    registers: [registry],
  }),
  agreement: new Gauge({
    name: "sieve_recheck_agreement",
    help: "Agreement of packed answers with single-item answers over the last 1000 re-checks, per task x model x items per call",
    labelNames: ["task", "model", "items_per_call"],
    registers: [registry],
  }),
  limitChanges: new Counter({ name: "sieve_batch_max_items_changes_total", help: "maxItems changes made by the re-check controller", labelNames: ["task", "model", "direction"], registers: [registry] }),
  learnedLookups: new Counter({ name: "sieve_learned_lookups_total", help: "Learned-cache lookups by outcome (hit, miss, cold)", labelNames: ["task", "outcome"], registers: [registry] }),
  learnedAudits: new Counter({ name: "sieve_learned_audits_total", help: "Learned-cache answers re-checked by the LLM, by agreement", labelNames: ["task", "agree"], registers: [registry] }),
  learnedErrorRate: new Gauge({ name: "sieve_learned_error_rate", help: "Live error rate of learned-cache answers: audit disagreements / audits (last 1000 audits)", labelNames: ["task"], registers: [registry] }),
};
