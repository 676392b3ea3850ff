/**
 * The computed side of (e): input tokens of a call as the simulator counts them (the same
 * countChatTokens over the same rendered system + user messages), for one item per call or for
 * items packed `perCall` at a time. Used as a cross-check of the measured numbers.
 */
import { countChatTokens, countTokens, renderPrompt, type TaskParams } from "@sieve/shared";
import { round } from "./pipeline-util.js";

function callTokens(params: TaskParams, texts: readonly string[]): number {
  const { system, user } = renderPrompt(params, texts.map((text, i) => ({ id: `i${i + 1}`, text })));
  return countChatTokens([
    { role: "system", content: system },
    { role: "user", content: user },
  ]);
}

export interface ComputedTokens {
  items: number;
  /** Mean countTokens(text) of the items alone (no prompt). */
  itemTextTokensPerItem: number;
  /** Rendered single-item prompt (renderPrompt with one item) -> countChatTokens, mean per item. */
  singleItemInputTokensPerItem: number;
  /** The same items rendered `perCall` at a time, per item. */
  packedInputTokensPerItem: number;
  perCall: number;
  /** System prompt alone, tokens (the fixed part every call repeats). */
  systemPromptTokens: number;
}

export function computeTokens(params: TaskParams, texts: readonly string[], perCall: number): ComputedTokens {
  let single = 0;
  let text = 0;
  for (const t of texts) {
    single += callTokens(params, [t]);
    text += countTokens(t);
  }
  let packed = 0;
  for (let i = 0; i < texts.length; i += perCall) packed += callTokens(params, texts.slice(i, i + perCall));
  return {
    items: texts.length,
    itemTextTokensPerItem: round(text / texts.length, 1),
    singleItemInputTokensPerItem: round(single / texts.length, 1),
    packedInputTokensPerItem: round(packed / texts.length, 1),
    perCall,
    systemPromptTokens: countTokens(renderPrompt(params, []).system),
  };
}
