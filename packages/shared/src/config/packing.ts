/**
 * Per-model packing defaults: how many items one call may carry. A 7-8B model (the local GPU
 * lane) keeps fewer items straight per call than a frontier model: long multi-item prompts are
 * where small models drop or mix up entries, and every missing entry costs a split retry
 * (docs/gpu-lane.md, "Items per call"). The task's SIEVE_*_MAX_ITEMS / _MAX_TOKENS stay the upper
 * bound; a model's entry can only lower them.
 */
import type { BatchPolicy } from "./tasks.js";
import type { TaskName } from "../tasks/params.js";

export interface ModelPacking {
  /** Matches the model name (vLLM's --served-model-name, or a provider model id). */
  match: RegExp;
  caps: Record<TaskName, Pick<BatchPolicy, "maxItems" | "maxTokens">>;
}

export const MODEL_PACKING: readonly ModelPacking[] = [
  // 7-9B instruct models, quantized or not (Qwen2.5-7B, Llama-3.1-8B, Mistral-7B, Gemma-2-9B...).
  { match: /(^|[^0-9])[789](\.\d)?b([^a-z]|$)/i, caps: { classify: { maxItems: 10, maxTokens: 2_500 }, translate: { maxItems: 4, maxTokens: 1_200 } } },
  // 1-4B models: fewer still.
  { match: /(^|[^0-9])[1-4](\.\d)?b([^a-z]|$)/i, caps: { classify: { maxItems: 5, maxTokens: 1_200 }, translate: { maxItems: 2, maxTokens: 600 } } },
];

/** The task's policy, lowered to the model's packing defaults when it has some. */
export function packingFor(policy: BatchPolicy, task: TaskName, model: string): BatchPolicy {
  const entry = MODEL_PACKING.find((p) => p.match.test(model));
  if (!entry) return policy;
  const cap = entry.caps[task];
  return { ...policy, maxItems: Math.min(policy.maxItems, cap.maxItems), maxTokens: Math.min(policy.maxTokens, cap.maxTokens) };
}
