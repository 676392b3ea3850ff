/**
 * Token counting with a real BPE tokenizer (o200k_base, the GPT-4o/4.1 family). For Anthropic and
 * vLLM models this is an estimate: their tokenizers differ. Used for batch token budgets and by the
 * simulator to report usage.
 */
import { encode } from "gpt-tokenizer/encoding/o200k_base";

export function countTokens(text: string): number {
  return encode(text).length;
}

/** Tokens of a chat request: content plus a small per-message overhead (as OpenAI's cookbook counts). */
export function countChatTokens(messages: ReadonlyArray<{ role: string; content: string }>): number {
  let n = 3;
  for (const m of messages) n += 4 + countTokens(m.content);
  return n;
}
