/**
 * OpenAI client construction from a ProviderEndpoint (also used by the vLLM provider, which speaks
 * the same wire protocol).
 */
import OpenAI from "openai";
import type { ProviderEndpoint } from "@sieve/shared";

/** Client-level timeout, in ms, for calls that pass none (every Sieve call passes its own). @defaultValue 60000 */
export const DEFAULT_TIMEOUT_MS = 60_000;

export interface OpenAIClientOptions {
  /** @defaultValue DEFAULT_TIMEOUT_MS */
  timeoutMs?: number;
  /** A custom fetch (tests). */
  fetch?: typeof fetch;
}

export function createOpenAIClient(endpoint: ProviderEndpoint, opts: OpenAIClientOptions = {}): OpenAI {
  return new OpenAI({
    apiKey: endpoint.apiKey,
    // undefined: the SDK default (https://api.openai.com/v1).
    baseURL: endpoint.baseURL,
    // Retries are Sieve's job (BullMQ backoff honouring Retry-After); SDK retries would hide
    // 429s from the rate limiter and multiply the load under an outage.
    maxRetries: 0,
    timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });
}
