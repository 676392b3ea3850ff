/**
 * The provider registry: one LlmProvider per configured endpoint, and one BatchApi per configured
 * provider that has a Batch API, built once at start-up.
 */
import { assertExhaustive } from "@sieve/shared/errors";
import type { ProviderName } from "@sieve/shared/providerNames";
import type { ProviderEndpoint } from "@sieve/shared/config/providers";
import type { LlmProvider } from "./types.js";
import type { BatchApi, BatchProviderName } from "./batch-types.js";
import { OpenAIProvider } from "./openai/index.js";
import { OpenAIBatchApi } from "./openai/batch.js";
import { AnthropicProvider } from "./anthropic/index.js";
import { AnthropicBatchApi } from "./anthropic/batch.js";
import { VllmProvider } from "./vllm/index.js";

export type { LlmProvider, StructuredCallRequest, StructuredCallResult } from "./types.js";
export { OpenAIProvider } from "./openai/index.js";
export { AnthropicProvider } from "./anthropic/index.js";
export { VllmProvider } from "./vllm/index.js";
export { CallAbortedError, isCallAborted, parseRetryAfterMs, toProviderError } from "./errors.js";
export { checkVllmHealth, fetchVllmMetrics, parseVllmMetrics, type VllmMetrics } from "@sieve/shared/vllm/metrics";

export interface ProviderOptions {
  /** Client-level timeout in ms (each call also passes its own `timeoutMs`). @defaultValue 60000 */
  timeoutMs?: number;
}

export function createProvider(endpoint: ProviderEndpoint, opts: ProviderOptions = {}): LlmProvider {
  const name = endpoint.provider;
  switch (name) {
    case "openai":
      return new OpenAIProvider(endpoint, opts);
    case "anthropic":
      return new AnthropicProvider(endpoint, opts);
    case "vllm":
      return new VllmProvider(endpoint, opts);
    default:
      return assertExhaustive(name, "unknown provider");
  }
}

export function createProviders(endpoints: Map<ProviderName, ProviderEndpoint>, opts: ProviderOptions = {}): Map<ProviderName, LlmProvider> {
  const out = new Map<ProviderName, LlmProvider>();
  for (const [name, endpoint] of endpoints) {
    if (endpoint.provider !== name) throw new Error(`provider map key "${name}" holds an endpoint for "${endpoint.provider}"`);
    out.set(name, createProvider(endpoint, opts));
  }
  return out;
}

/** The Batch API clients of the configured providers that have one (OpenAI, Anthropic; vLLM has none). */
export function createBatchApis(endpoints: Map<ProviderName, ProviderEndpoint>): Map<BatchProviderName, BatchApi> {
  const out = new Map<BatchProviderName, BatchApi>();
  const oa = endpoints.get("openai");
  if (oa) out.set("openai", new OpenAIBatchApi(oa));
  const an = endpoints.get("anthropic");
  if (an) out.set("anthropic", new AnthropicBatchApi(an));
  return out;
}
