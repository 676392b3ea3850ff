/**
 * Anthropic provider: one Messages call with a forced tool whose input is the multi-item answer.
 */
import type Anthropic from "@anthropic-ai/sdk";
import type { ProviderEndpoint } from "@sieve/shared";
import type { LlmProvider, StructuredCallRequest, StructuredCallResult } from "../types.js";
import { callDeadline } from "../deadline.js";
import { toProviderError } from "../errors.js";
import { createAnthropicClient, type AnthropicClientOptions } from "./api.js";
import { buildMessagesRequest, parseMessagesResponse } from "./chat.js";

export class AnthropicProvider implements LlmProvider {
  readonly name = "anthropic" as const;
  readonly #client: Anthropic;
  readonly #apiKey: string;

  constructor(endpoint: ProviderEndpoint, opts: AnthropicClientOptions = {}) {
    this.#client = createAnthropicClient(endpoint, opts);
    this.#apiKey = endpoint.apiKey;
  }

  async callStructured(req: StructuredCallRequest): Promise<StructuredCallResult> {
    const d = callDeadline(req.timeoutMs, req.signal);
    const started = performance.now();
    try {
      const body = buildMessagesRequest(req);
      const { data, request_id } = await this.#client.messages
        .create(body, { signal: d.signal, timeout: req.timeoutMs, maxRetries: 0 })
        .withResponse();
      const parsed = parseMessagesResponse(data);
      return { ...parsed, latencyMs: Math.round(performance.now() - started), ...(request_id ? { requestId: request_id } : {}) };
    } catch (e) {
      throw toProviderError(this.name, e, { callerSignal: req.signal, deadlineSignal: d.deadline, timeoutMs: req.timeoutMs, apiKey: this.#apiKey });
    } finally {
      d.dispose();
    }
  }
}
