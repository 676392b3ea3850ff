/**
 * vLLM provider: an OpenAI-compatible server, the OpenAI call path with another name.
 */
import type { ProviderEndpoint } from "@sieve/shared";
import type { LlmProvider, StructuredCallRequest, StructuredCallResult } from "../types.js";
import { callChatCompletions, type ChatCallContext } from "../openai/index.js";
import type { OpenAIClientOptions } from "../openai/api.js";
import { createVllmClient } from "./api.js";
import { buildVllmChatRequest } from "./chat.js";
import { checkVllmHealth, fetchVllmMetrics, type ProbeOptions, type VllmMetrics } from "@sieve/shared/vllm/metrics";

export class VllmProvider implements LlmProvider {
  readonly name = "vllm" as const;
  readonly #ctx: ChatCallContext;
  readonly #baseURL: string;
  readonly #model: string;

  constructor(endpoint: ProviderEndpoint, opts: OpenAIClientOptions = {}) {
    this.#ctx = { client: createVllmClient(endpoint, opts), provider: this.name, apiKey: endpoint.apiKey };
    this.#baseURL = endpoint.baseURL ?? "";
    this.#model = endpoint.defaultModel;
  }

  /** Server load for backpressure (running/waiting requests, KV-cache usage) of the served model. */
  metrics(opts: Omit<ProbeOptions, "model"> = {}): Promise<VllmMetrics> {
    return fetchVllmMetrics(this.#baseURL, { ...opts, model: this.#model });
  }

  /** True when `/health` answers 200. */
  health(opts: Omit<ProbeOptions, "model"> = {}): Promise<boolean> {
    return checkVllmHealth(this.#baseURL, opts);
  }

  callStructured(req: StructuredCallRequest): Promise<StructuredCallResult> {
    return callChatCompletions(this.#ctx, req, buildVllmChatRequest);
  }
}
