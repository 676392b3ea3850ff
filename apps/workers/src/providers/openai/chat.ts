/**
 * Pure transforms for chat.completions with structured outputs (json_schema, strict). Reused
 * unchanged by the vLLM provider (OpenAI-compatible server).
 */
import type OpenAI from "openai";
// Subpath imports: the package root also loads the db, redis and queue modules.
import { coerceError } from "@sieve/shared/errors";
import { OUTPUT_SCHEMA_NAME, parseModelJson, resultsJsonSchema } from "@sieve/shared/tasks/output";
import { renderPrompt } from "@sieve/shared/prompts/index";
import type { TokenUsage } from "@sieve/shared";
import type { StructuredCallRequest, StructuredCallResult } from "../types.js";
import { maxOutputTokens } from "../budget.js";

export type ChatRequestBody = OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming;

/** The request body of one multi-item call. The schema pins the ids and the count of this call. */
export function buildChatRequest(req: Pick<StructuredCallRequest, "model" | "params" | "items" | "serviceTier">): ChatRequestBody {
  const { system, user } = renderPrompt(req.params, req.items);
  const body: ChatRequestBody = {
    model: req.model,
    // System first, items last: the system prompt is the stable prefix that automatic prefix
    // caching (OpenAI, vLLM --enable-prefix-caching) reuses across calls of a batch key.
    messages: [
      { role: "system", content: system },
      { role: "user", content: user },
    ],
    response_format: {
      type: "json_schema",
      json_schema: {
        name: OUTPUT_SCHEMA_NAME,
        schema: resultsJsonSchema(req.params, req.items.map((i) => i.id)),
        strict: true,
      },
    },
    temperature: 0,
    // `max_tokens` rather than `max_completion_tokens`: understood by every OpenAI chat model
    // Sieve defaults to and by all vLLM versions. o-series/gpt-5 models need max_completion_tokens.
    max_tokens: maxOutputTokens(req.params, req.items),
  };
  // Flex processing (https://platform.openai.com/docs/guides/flex-processing) is offered for
  // reasoning models (o-series, gpt-5), which take max_completion_tokens (reasoning included) and
  // no temperature (https://platform.openai.com/docs/guides/reasoning).
  if (req.serviceTier) body.service_tier = req.serviceTier;
  if (isReasoningModel(req.model)) {
    delete body.temperature;
    delete body.max_tokens;
    body.max_completion_tokens = (maxOutputTokens(req.params, req.items) + REASONING_HEADROOM);
    body.reasoning_effort = "low";
  }
  return body;
}

/** Output tokens a reasoning model may spend thinking before it writes the answer. @defaultValue 2048 */
const REASONING_HEADROOM = 2_048;

/** o1, o3, o4-mini, gpt-5, gpt-5-mini, ...: models that reason before answering. */
export function isReasoningModel(model: string): boolean {
  return /^(o\d|gpt-5)/.test(model);
}

export function mapChatUsage(usage: OpenAI.CompletionUsage | undefined | null): TokenUsage {
  const out: TokenUsage = { inputTokens: usage?.prompt_tokens ?? 0, outputTokens: usage?.completion_tokens ?? 0 };
  // vLLM sends prompt_tokens_details only with --enable-prompt-tokens-details, and then may send null.
  const cached = usage?.prompt_tokens_details?.cached_tokens;
  if (typeof cached === "number") out.cachedInputTokens = cached;
  return out;
}

export type ParsedCall = Omit<StructuredCallResult, "latencyMs" | "requestId">;

/** Never throws: an unusable answer is `answer: undefined` plus `parseError` (the items get split and retried). */
export function parseChatResponse(completion: OpenAI.Chat.Completions.ChatCompletion): ParsedCall {
  const usage = mapChatUsage(completion.usage);
  const choice = completion.choices?.[0];
  if (!choice) return { answer: undefined, parseError: "no choices in the response", usage };
  const { message, finish_reason: finish } = choice;
  if (message?.refusal) return { answer: undefined, parseError: `refusal: ${message.refusal.slice(0, 500)}`, usage };
  if (finish === "length") return { answer: undefined, parseError: "truncated: finish_reason length (max_tokens reached)", usage };
  if (finish === "content_filter") return { answer: undefined, parseError: "content_filter: the provider filtered the answer", usage };
  const content = message?.content;
  if (content === null || content === undefined || content.trim() === "") {
    return { answer: undefined, parseError: `empty content (finish_reason ${finish ?? "none"})`, usage };
  }
  try {
    return { answer: parseModelJson(content), usage };
  } catch (e) {
    return { answer: undefined, parseError: `invalid JSON: ${coerceError(e).message}`, usage };
  }
}
