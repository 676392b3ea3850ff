/**
 * A provider call off the hot path (a semantic-hit audit, a learned-cache audit, a re-check of a
 * packed answer), on the ledger like every call (docs/retries.md#the-ledger-of-provider-calls):
 * its llm_calls row is opened ("sent", with its estimate) before the request goes out, a failed
 * request completes it as an error, and the caller completes it with `completeSideCall`, which
 * also writes the console's rollup (recordOutcome) and counts it in /metrics.
 */
import { coerceError, costUsd, countChatTokens, observeLlmCall, renderPrompt, type Db, type PriceTable, type PromptItem, type ProviderName, type TaskParams } from "@sieve/shared";
import { openLlmCall, recordOutcome, type NewLlmCall } from "@sieve/shared/db/ops/results";
import type { LlmProvider, StructuredCallResult } from "./types.js";

export interface SideCall {
  tenantId: string;
  provider: ProviderName;
  model: string;
  /** The llm_calls lane: "audit", "recheck". */
  lane: string;
  batchKey: string;
  params: TaskParams;
  items: PromptItem[];
  timeoutMs: number;
}

/** The call's ledger row as answered, before its outcome is judged. */
export type AnsweredCall = Omit<NewLlmCall, "outcome"> & { id: number };

/** Sends `c` with its ledger row opened first. A failed request completes the row as an error and is rethrown. */
export async function sendSideCall(db: Db, prices: PriceTable, provider: LlmProvider, c: SideCall): Promise<{ res: StructuredCallResult; call: AnsweredCall }> {
  const base = { tenantId: c.tenantId, provider: c.provider, model: c.model, lane: c.lane, batchKey: c.batchKey, itemCount: c.items.length };
  const prompt = renderPrompt(c.params, c.items);
  const estInputTokens = countChatTokens([
    { role: "system", content: prompt.system },
    { role: "user", content: prompt.user },
  ]);
  const id = await openLlmCall(db, { ...base, estInputTokens, estCostUsd: costUsd(prices, c.model, { inputTokens: estInputTokens, outputTokens: 0 }).usd.toFixed(8) });
  let res: StructuredCallResult;
  try {
    res = await provider.callStructured({ model: c.model, params: c.params, items: c.items, timeoutMs: c.timeoutMs });
  } catch (e) {
    const failed = { id, ...base, state: "error", outcome: "server_error", error: coerceError(e).message.slice(0, 2000) };
    await recordOutcome(db, failed, []);
    observeLlmCall(failed);
    throw e;
  }
  const call: AnsweredCall = {
    id,
    ...base,
    state: "ok",
    inputTokens: res.usage.inputTokens,
    outputTokens: res.usage.outputTokens,
    cachedInputTokens: res.usage.cachedInputTokens ?? 0,
    cacheWriteTokens: res.usage.cacheWriteTokens ?? 0,
    latencyMs: res.latencyMs,
    costUsd: costUsd(prices, c.model, res.usage, "realtime").usd.toFixed(8),
    requestId: res.requestId ?? null,
  };
  return { res, call };
}

/**
 * Completes an answered side call with its outcome, in `db` (pass a transaction to commit it with
 * the caller's own rows). Count it with `observeLlmCall` once that commits.
 */
export async function completeSideCall(db: Db, call: AnsweredCall, outcome: { outcome: string; validCount: number }): Promise<NewLlmCall & { id: number }> {
  const done = { ...call, ...outcome };
  await recordOutcome(db, done, []);
  return done;
}
