/**
 * How many output tokens one multi-item call may need: the cap sent as `max_tokens`.
 *
 * Too low truncates the answer (every item of the call fails); too high has costs of its own:
 * vLLM rejects a request whose prompt + max_tokens exceeds `--max-model-len`, and Anthropic's
 * output-tokens-per-minute limiter counts `max_tokens` up front. So: a per-entry estimate with
 * room for whitespace and JSON escaping, never trusted beyond the cap.
 */
import { assertExhaustive } from "@sieve/shared/errors";
import { countTokens } from "@sieve/shared/tokens";
import type { PromptItem, TaskParams } from "@sieve/shared";

/** Highest `max_tokens` ever sent. gpt-4.1-mini allows 32k output; 16k keeps vLLM and Anthropic happy. @defaultValue 16384 */
export const MAX_OUTPUT_TOKENS_CAP = 16_384;
/** Lowest `max_tokens` ever sent, so that a tiny call still has room for the JSON envelope. @defaultValue 256 */
export const MIN_OUTPUT_TOKENS = 256;

/** JSON punctuation, the id, the key, and pretty-printing whitespace of one `{"id": ..., ...}` entry. */
const ENTRY_OVERHEAD = 24;
/** The `{"results": [` ... `]}` envelope. */
const ENVELOPE = 32;

export function maxOutputTokens(params: TaskParams, items: readonly PromptItem[]): number {
  let n = ENVELOPE;
  switch (params.task) {
    case "classify": {
      const longest = Math.max(1, ...params.labels.map((l) => countTokens(l)));
      n += items.length * (ENTRY_OVERHEAD + 2 * longest);
      break;
    }
    case "translate":
      // Translations may run ~2x the source tokens (e.g. into scripts the tokenizer splits finely),
      // plus JSON escaping of quotes and newlines.
      for (const it of items) n += ENTRY_OVERHEAD + Math.ceil(2 * countTokens(it.text)) + 8;
      break;
    default:
      return assertExhaustive(params);
  }
  return Math.min(MAX_OUTPUT_TOKENS_CAP, Math.max(MIN_OUTPUT_TOKENS, n));
}
