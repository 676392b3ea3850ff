/**
 * Pure transforms for the Messages API with ONE forced tool carrying the output schema.
 *
 * Prompt caching: Anthropic caches the prefix tools -> system -> messages up to a `cache_control`
 * breakpoint. The breakpoint sits on the system block, so tools + system are cached; both must
 * be byte-stable across the calls of a batch key. That is why the tool schema is built WITHOUT the
 * call's ids (see resultsJsonSchema in packages/shared/src/tasks/output.ts): the count and the ids
 * are enforced by validateResults instead.
 */
import type Anthropic from "@anthropic-ai/sdk";
// Subpath imports: the package root also loads the db, redis and queue modules.
import { coerceError } from "@sieve/shared/errors";
import { OUTPUT_SCHEMA_NAME, parseModelJson, resultsJsonSchema } from "@sieve/shared/tasks/output";
import { renderPrompt } from "@sieve/shared/prompts/index";
import type { TokenUsage } from "@sieve/shared";
import type { StructuredCallRequest, StructuredCallResult } from "../types.js";
import { maxOutputTokens } from "../budget.js";

export type MessagesRequestBody = Anthropic.Messages.MessageCreateParamsNonStreaming;

/** Stable text (part of the cached prefix): never interpolate per-call data here. */
export const TOOL_DESCRIPTION =
  "Record the answer for every item of the request: one entry per item id, every id exactly once.";

export function buildMessagesRequest(req: Pick<StructuredCallRequest, "model" | "params" | "items">): MessagesRequestBody {
  const { system, user } = renderPrompt(req.params, req.items);
  return {
    model: req.model,
    max_tokens: maxOutputTokens(req.params, req.items),
    // No temperature: API version 2026-10-21 (sent by @anthropic-ai/sdk >= 1.0) rejects
    // temperature/top_p/top_k with a 400, even at default values; the SDK types dropped them.
    system: [{ type: "text", text: system, cache_control: { type: "ephemeral" } }],
    messages: [{ role: "user", content: user }],
    tools: [
      {
        name: OUTPUT_SCHEMA_NAME,
        description: TOOL_DESCRIPTION,
        // resultsJsonSchema returns a plain JSON schema object ({ type: "object", ... }).
        input_schema: resultsJsonSchema(req.params) as Anthropic.Messages.Tool.InputSchema,
      },
    ],
    tool_choice: { type: "tool", name: OUTPUT_SCHEMA_NAME },
  };
}

/**
 * Anthropic reports cache reads and writes APART from `input_tokens`; TokenUsage.inputTokens is ALL
 * prompt tokens (costUsd prices the cached and written parts from it), so the three are summed.
 */
export function mapMessagesUsage(usage: Partial<Anthropic.Messages.Usage> | undefined | null): TokenUsage {
  const read = usage?.cache_read_input_tokens ?? 0;
  const written = usage?.cache_creation_input_tokens ?? 0;
  const out: TokenUsage = { inputTokens: (usage?.input_tokens ?? 0) + read + written, outputTokens: usage?.output_tokens ?? 0 };
  if (usage?.cache_read_input_tokens != null) out.cachedInputTokens = read;
  if (usage?.cache_creation_input_tokens != null) out.cacheWriteTokens = written;
  return out;
}

export type ParsedCall = Omit<StructuredCallResult, "latencyMs" | "requestId">;

/** Never throws: an unusable answer is `answer: undefined` plus `parseError`. */
export function parseMessagesResponse(message: Anthropic.Messages.Message): ParsedCall {
  const usage = mapMessagesUsage(message.usage);
  const stop = message.stop_reason;
  // A tool_use block cut by max_tokens carries partial (or empty) input: never use it.
  if (stop === "max_tokens" || stop === "model_context_window_exceeded") {
    return { answer: undefined, parseError: `truncated: stop_reason ${stop}`, usage };
  }
  if (stop === "refusal") return { answer: undefined, parseError: "refusal: stop_reason refusal", usage };
  const blocks = message.content ?? [];
  const tool = blocks.find((b): b is Anthropic.Messages.ToolUseBlock => b.type === "tool_use" && b.name === OUTPUT_SCHEMA_NAME);
  if (tool) {
    // Some gateways hand tool input over as a JSON string.
    if (typeof tool.input !== "string") return { answer: tool.input, usage };
    try {
      return { answer: parseModelJson(tool.input), usage };
    } catch (e) {
      return { answer: undefined, parseError: `invalid JSON in tool input: ${coerceError(e).message}`, usage };
    }
  }
  // No tool call despite tool_choice (should not happen): accept a JSON text answer.
  const text = blocks
    .filter((b): b is Anthropic.Messages.TextBlock => b.type === "text")
    .map((b) => b.text)
    .join("");
  if (text.trim() === "") return { answer: undefined, parseError: `no ${OUTPUT_SCHEMA_NAME} tool_use block (stop_reason ${stop ?? "none"})`, usage };
  try {
    return { answer: parseModelJson(text), usage };
  } catch (e) {
    return { answer: undefined, parseError: `no tool_use block and the text is not JSON: ${coerceError(e).message}`, usage };
  }
}
