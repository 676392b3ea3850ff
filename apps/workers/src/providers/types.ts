/**
 * One interface for every LLM provider. A provider is a folder with fixed file names (api.ts: base
 * URL, headers, client; chat.ts: pure request/response transforms; index.ts: wiring; batch.ts, for
 * a provider with a Batch API: its batch transforms and client, see batch-types.ts). Failures are
 * thrown as `ProviderError` (packages/shared/src/errors.ts), never as SDK errors.
 */
import type { ProviderName, TaskParams, PromptItem, TokenUsage } from "@sieve/shared";

export interface StructuredCallRequest {
  model: string;
  params: TaskParams;
  /** Items of this call with short server-assigned ids ("i1".."iN"). */
  items: PromptItem[];
  /** Abort the HTTP call (worker shutdown, lock lost). */
  signal?: AbortSignal;
  /** Per-call timeout in ms. */
  timeoutMs: number;
  /** OpenAI `service_tier` ("flex": batch price, slower, may be refused with a 429). */
  serviceTier?: "flex";
}

export interface StructuredCallResult {
  /** The parsed JSON answer, or undefined when the model's text was not valid JSON (e.g. truncated). */
  answer: unknown;
  /** Why `answer` is undefined (parse error, refusal, max_tokens), for the call record. */
  parseError?: string;
  usage: TokenUsage;
  latencyMs: number;
  /** Provider request id (x-request-id / request-id), when sent. */
  requestId?: string;
  /**
   * Who actually answered, when not the provider called (the GPU lane failing over to a cloud
   * route, docs/gpu-lane.md): the call is recorded and priced as this provider and model.
   */
  servedBy?: { provider: ProviderName; model: string };
  /** The tier that answered when it differs from the one asked (flex refused with a 429, answered at the default tier). */
  servedTier?: "default";
}

export interface LlmProvider {
  readonly name: ProviderName;
  callStructured(req: StructuredCallRequest): Promise<StructuredCallResult>;
}
