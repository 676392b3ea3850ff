/**
 * vLLM speaks the OpenAI wire protocol: the OpenAI client, pointed at the server's /v1.
 * Its /metrics and /health live at the server root (packages/shared/src/vllm/metrics.ts).
 */
import type OpenAI from "openai";
import type { ProviderEndpoint } from "@sieve/shared";
import { ConfigError } from "@sieve/shared/errors";
import { createOpenAIClient, type OpenAIClientOptions } from "../openai/api.js";

export function createVllmClient(endpoint: ProviderEndpoint, opts: OpenAIClientOptions = {}): OpenAI {
  if (!endpoint.baseURL) throw new ConfigError("vllm: baseURL is required (VLLM_BASE_URL, e.g. http://vllm:8000/v1)");
  return createOpenAIClient(endpoint, opts);
}
