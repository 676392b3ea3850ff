/**
 * OpenAI provider: one chat.completions call with a strict json_schema response format per batch.
 */
import type OpenAI from "openai";
import { metrics, ProviderError, type ProviderEndpoint, type ProviderName } from "@sieve/shared";
import type { LlmProvider, StructuredCallRequest, StructuredCallResult } from "../types.js";
import { callDeadline } from "../deadline.js";
import { toProviderError } from "../errors.js";
import { createOpenAIClient, type OpenAIClientOptions } from "./api.js";
import { buildChatRequest, parseChatResponse, type ChatRequestBody } from "./chat.js";

export interface ChatCallContext {
  client: OpenAI;
  provider: ProviderName;
  apiKey: string;
}

/**
 * Sends one chat.completions request and returns the parsed result. Shared by every
 * OpenAI-compatible provider (OpenAI, vLLM). Throws only ProviderError.
 */
export async function callChatCompletions(
  ctx: ChatCallContext,
  req: StructuredCallRequest,
  build: (req: StructuredCallRequest) => ChatRequestBody = buildChatRequest,
): Promise<StructuredCallResult> {
  const d = callDeadline(req.timeoutMs, req.signal);
  const started = performance.now();
  try {
    const body = build(req);
    const { data, request_id } = await ctx.client.chat.completions
      .create(body, { signal: d.signal, timeout: req.timeoutMs, maxRetries: 0 })
      .withResponse();
    const parsed = parseChatResponse(data);
    return { ...parsed, latencyMs: Math.round(performance.now() - started), ...(request_id ? { requestId: request_id } : {}) };
  } catch (e) {
    throw toProviderError(ctx.provider, e, { callerSignal: req.signal, deadlineSignal: d.deadline, timeoutMs: req.timeoutMs, apiKey: ctx.apiKey });
  } finally {
    d.dispose();
  }
}

export class OpenAIProvider implements LlmProvider {
  readonly name = "openai" as const;
  readonly #ctx: ChatCallContext;

  constructor(endpoint: ProviderEndpoint, opts: OpenAIClientOptions = {}) {
    this.#ctx = { client: createOpenAIClient(endpoint, opts), provider: this.name, apiKey: endpoint.apiKey };
  }

  /**
   * A flex request refused for capacity (429, "resource unavailable":
   * https://platform.openai.com/docs/guides/flex-processing) is sent again at once at the default
   * tier: the lane router only picks flex when realtime would also meet the deadline, so waiting
   * for flex capacity would only save money at the risk of the deadline.
   */
  async callStructured(req: StructuredCallRequest): Promise<StructuredCallResult> {
    try {
      return await callChatCompletions(this.#ctx, req);
    } catch (e) {
      if (req.serviceTier !== "flex" || !(e instanceof ProviderError) || e.kind !== "rate_limited") throw e;
      metrics.flexFallbacks.inc({ model: req.model });
      const { serviceTier: _flex, ...standard } = req;
      return { ...(await callChatCompletions(this.#ctx, standard)), servedTier: "default" };
    }
  }
}
