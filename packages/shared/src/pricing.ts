/**
 * Price table, USD per million tokens. List prices change: override any model with SIEVE_PRICES.
 * Batch lanes pay BATCH_DISCOUNT of these (OpenAI Batch API and Anthropic Message Batches: 50%).
 * A model missing from the table costs 0 and is flagged `priced: false` so reports can say so.
 */
import { z } from "zod";

export const ModelPrice = z.object({
  input: z.number().nonnegative(),
  output: z.number().nonnegative(),
  /** Prompt tokens served from the provider's prompt cache. Default: input. */
  cachedInput: z.number().nonnegative().optional(),
  /** Prompt tokens written to the prompt cache (Anthropic 5-minute TTL: 1.25x input). Default: input. */
  cacheWrite: z.number().nonnegative().optional(),
});
export type ModelPrice = z.infer<typeof ModelPrice>;
export const PriceTable = z.record(z.string(), ModelPrice);
export type PriceTable = z.infer<typeof PriceTable>;

/** List prices used when SIEVE_PRICES does not override them (per 1M tokens). */
export const DEFAULT_PRICES: PriceTable = {
  "gpt-4.1-mini": { input: 0.4, output: 1.6, cachedInput: 0.1 },
  "gpt-4.1-nano": { input: 0.1, output: 0.4, cachedInput: 0.025 },
  "gpt-4.1": { input: 2.0, output: 8.0, cachedInput: 0.5 },
  "gpt-4o-mini": { input: 0.15, output: 0.6, cachedInput: 0.075 },
  "gpt-5-mini": { input: 0.25, output: 2.0, cachedInput: 0.025 },
  "gpt-5-nano": { input: 0.05, output: 0.4, cachedInput: 0.005 },
  "claude-haiku-4-5": { input: 1.0, output: 5.0, cachedInput: 0.1, cacheWrite: 1.25 },
  "claude-sonnet-4-5": { input: 3.0, output: 15.0, cachedInput: 0.3, cacheWrite: 3.75 },
};

export const BATCH_DISCOUNT = 0.5;

export interface TokenUsage {
  /** All prompt tokens, including cached ones. */
  inputTokens: number;
  outputTokens: number;
  /** Part of inputTokens read from the prompt cache. */
  cachedInputTokens?: number;
  /** Part of inputTokens written to the prompt cache. */
  cacheWriteTokens?: number;
}

export function loadPriceTable(json: string | undefined): PriceTable {
  if (!json) return { ...DEFAULT_PRICES };
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (e) {
    throw new Error(`SIEVE_PRICES is not valid JSON: ${(e as Error).message}`);
  }
  const r = PriceTable.safeParse(parsed);
  if (!r.success) throw new Error(`SIEVE_PRICES: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return { ...DEFAULT_PRICES, ...r.data };
}

/**
 * Cost of one call in USD. `lane: "batch"` and `"flex"` apply the batch discount (flex tokens are
 * billed at Batch API rates: https://platform.openai.com/docs/guides/flex-processing).
 */
export function costUsd(table: PriceTable, model: string, usage: TokenUsage, lane: "realtime" | "batch" | "flex" = "realtime"): { usd: number; priced: boolean } {
  const p = table[model];
  if (!p) return { usd: 0, priced: false };
  const cached = usage.cachedInputTokens ?? 0;
  const written = usage.cacheWriteTokens ?? 0;
  const plain = Math.max(0, usage.inputTokens - cached - written);
  const usd =
    (plain * p.input + cached * (p.cachedInput ?? p.input) + written * (p.cacheWrite ?? p.input) + usage.outputTokens * p.output) / 1_000_000;
  return { usd: lane === "batch" || lane === "flex" ? usd * BATCH_DISCOUNT : usd, priced: true };
}

/**
 * A call's cost shared among its `n` items so that the shares, as stored (8 decimals), add up
 * EXACTLY to the call's cost as stored: the cost in units of 1e-8 USD is divided, and the remainder
 * goes one unit each to the first items. (Dividing and rounding each share separately drifts by up
 * to n/2 units per call, and /v1/usage would then disagree with the ledger.)
 */
export function shareCost(usd: number, n: number): number[] {
  if (n <= 0) return [];
  const units = Math.round(Number(usd.toFixed(8)) * 1e8);
  const base = Math.floor(units / n);
  const rest = units - base * n;
  return Array.from({ length: n }, (_, i) => (base + (i < rest ? 1 : 0)) / 1e8);
}
