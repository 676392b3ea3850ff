/**
 * Anthropic client construction from a ProviderEndpoint.
 */
import Anthropic from "@anthropic-ai/sdk";
import type { ProviderEndpoint } from "@sieve/shared";

/** Client-level timeout, in ms, for calls that pass none (every Sieve call passes its own). @defaultValue 60000 */
export const DEFAULT_TIMEOUT_MS = 60_000;

export interface AnthropicClientOptions {
  /** @defaultValue DEFAULT_TIMEOUT_MS */
  timeoutMs?: number;
  /** A custom fetch (tests). */
  fetch?: typeof fetch;
}

export function createAnthropicClient(endpoint: ProviderEndpoint, opts: AnthropicClientOptions = {}): Anthropic {
  return new Anthropic({
    // Passing the key explicitly also stops the SDK from looking for ANTHROPIC_AUTH_TOKEN or
    // profiles on disk.
    apiKey: endpoint.apiKey,
    // undefined: the SDK default (https://api.anthropic.com). The SDK appends /v1/messages.
    baseURL: endpoint.baseURL,
    // Retries are Sieve's job (BullMQ backoff honouring Retry-After), see openai/api.ts.
    maxRetries: 0,
    timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });
}
