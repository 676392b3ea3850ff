/**
 * One provider call for a set of items, and the validation of its answer item by item.
 *
 * - Items get short call-local ids ("i1".."iN"), never the caller's ids, and are shuffled within
 *   the call (position changes answers: docs/quality.md); answers are mapped back by id.
 * - The call's ledger row (llm_calls) is opened BEFORE the request is sent (state "sent",
 *   estimated prompt tokens and cost): a call cut off by a crash stays in the ledger (the sweeper
 *   marks it "interrupted"). The row to complete it with is returned, not written: what to write
 *   with it is the caller's decision (answerOrSplit.ts).
 * - The answer is validated per id (`validateResults`): valid outputs become "ok" rows, priced
 *   per item; ids missing, duplicated or invalid are returned as failed, with why.
 */
import { ProviderError, coerceError, costUsd, shareCost, countChatTokens, countTokens, renderPrompt, validateResults, type ItemFailureReason, type PriceTable, type TaskParams, type ProviderName, type NewResult, type ValidatedOutput } from "@sieve/shared";
import type { Db } from "@sieve/shared";
import { openLlmCall, type NewLlmCall } from "@sieve/shared/db/ops/results";
import type { LlmProvider, StructuredCallResult } from "../providers/types.js";
import { shuffleInPlace } from "../quality/shuffle.js";

export interface BatchItem {
  itemId: number;
  jobId: string;
  tenantId: string;
  text: string;
  /** Tokens of the text (countTokens), when the caller has counted them already. */
  tokens?: number;
}

export interface CallContext {
  db: Db;
  provider: LlmProvider;
  model: string;
  params: TaskParams;
  batchKey: string;
  /** "flex": sent with service_tier flex, priced at batch rates unless it fell back to the default tier. */
  lane: "realtime" | "batch" | "flex";
  prices: PriceTable;
  timeoutMs: number;
  signal?: AbortSignal;
}

export type OneCall =
  /** The provider failed the request; `callRow` completes the ledger row as an error. */
  | { kind: "failed"; batch: BatchItem[]; error: ProviderError; callRow: NewLlmCall }
  /** The provider answered; `callRow` completes the ledger row with usage, cost and how many answers were valid. */
  | { kind: "answered"; batch: BatchItem[]; ok: NewResult[]; failed: FailedItem[]; callRow: NewLlmCall };

/** An item without a valid answer in its call, with why. */
export interface FailedItem {
  item: BatchItem;
  reason: ItemFailureReason;
  message: string;
}

/** Sends one call for `arrived` (in a shuffled order, which `batch` returns) and validates its answer. */
export async function callOnce(ctx: CallContext, arrived: BatchItem[]): Promise<OneCall> {
  const providerName: ProviderName = ctx.provider.name;
  const batch = shuffleInPlace([...arrived]);
  const ids = batch.map((_, i) => `i${i + 1}`);
  const byId = new Map(ids.map((id, i) => [id, batch[i]!]));
  const baseCall = {
    tenantId: tenantOf(batch),
    provider: providerName,
    model: ctx.model,
    lane: ctx.lane,
    batchKey: ctx.batchKey,
    itemCount: batch.length,
  };
  const promptItems = batch.map((it, i) => ({ id: ids[i]!, text: it.text }));
  const estInputTokens = estimatePromptTokens(ctx, batch);
  // No request leaves without its ledger row: if this insert fails, nothing is sent.
  const callId = await openLlmCall(ctx.db, {
    ...baseCall,
    estInputTokens,
    estCostUsd: costUsd(ctx.prices, ctx.model, { inputTokens: estInputTokens, outputTokens: 0 }, ctx.lane).usd.toFixed(8),
  });
  const started = Date.now();
  let res: StructuredCallResult;
  try {
    res = await ctx.provider.callStructured({
      model: ctx.model,
      params: ctx.params,
      items: promptItems,
      timeoutMs: ctx.timeoutMs,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      ...(ctx.lane === "flex" ? { serviceTier: "flex" as const } : {}),
    });
  } catch (e) {
    const error = e instanceof ProviderError ? e : new ProviderError({ provider: providerName, kind: "server", message: coerceError(e).message, cause: e });
    const callRow = { id: callId, ...baseCall, state: "error", outcome: outcomeOf(error), error: error.message.slice(0, 2000), latencyMs: Date.now() - started };
    return { kind: "failed", batch, error, callRow };
  }

  const validated = validateAnswer(ctx.params, ids, res);
  // The GPU lane may have failed over to a cloud route: record and price who answered.
  const served = res.servedBy ?? { provider: providerName, model: ctx.model };
  const lane = ctx.lane === "flex" && res.servedTier === "default" ? "realtime" : ctx.lane;
  const cost = costUsd(ctx.prices, served.model, res.usage, lane);
  const shares = shareCost(cost.usd, batch.length);
  const ok: NewResult[] = [];
  for (const [id, output] of validated.ok) {
    const it = byId.get(id)!;
    ok.push({ itemId: it.itemId, jobId: it.jobId, tenantId: it.tenantId, status: "ok", output, provider: served.provider, model: served.model, costUsd: shares[ok.length]! });
  }
  const failed = [...validated.failed].map(([id, f]) => ({ item: byId.get(id)!, reason: f.reason, message: f.message }));
  const firstFailure = failed[0];
  const callRow = {
    id: callId,
    ...baseCall,
    state: "ok",
    provider: served.provider,
    model: served.model,
    lane,
    inputTokens: res.usage.inputTokens,
    outputTokens: res.usage.outputTokens,
    cachedInputTokens: res.usage.cachedInputTokens ?? 0,
    cacheWriteTokens: res.usage.cacheWriteTokens ?? 0,
    latencyMs: res.latencyMs,
    costUsd: cost.usd.toFixed(8),
    outcome: failed.length === 0 ? "ok" : ok.length === 0 ? "invalid_output" : "partial",
    validCount: ok.length,
    error: firstFailure ? `${failed.length} item(s) failed validation, e.g. ${firstFailure.reason}: ${firstFailure.message}`.slice(0, 2000) : null,
    requestId: res.requestId ?? null,
  };
  return { kind: "answered", batch, ok, failed, callRow };
}

/** Checks the answer against the asked ids: an answer that did not parse fails every item. */
function validateAnswer(params: TaskParams, ids: string[], res: StructuredCallResult): ValidatedOutput {
  return res.answer === undefined
    ? { ok: new Map(), failed: new Map(ids.map((id) => [id, { reason: "unparseable_output" as const, message: res.parseError ?? "unparseable output" }])), unknownIds: 0 }
    : validateResults(params, ids, res.answer);
}

function tenantOf(items: BatchItem[]): string {
  const first = items[0]?.tenantId ?? "unknown";
  return items.every((i) => i.tenantId === first) ? first : "(mixed)";
}

function outcomeOf(err: ProviderError): string {
  switch (err.kind) {
    case "rate_limited":
      return "rate_limited";
    case "server":
      return "server_error";
    case "timeout":
      return "timeout";
    case "client":
      return "client_error";
    case "invalid_output":
      return "invalid_output";
  }
}

/** Tokens of a batch key's system prompt (the same for every call of the key), most recent keys. */
const systemTokens = new Map<string, number>();

/**
 * Prompt tokens of a call before it is sent: the system prompt (counted once per batch key), the
 * items' counted texts and their JSON line wrappers, the chat framing. An estimate for the ledger.
 */
function estimatePromptTokens(ctx: CallContext, batch: BatchItem[]): number {
  let system = systemTokens.get(ctx.batchKey);
  if (system === undefined) {
    system = countChatTokens([{ role: "system", content: renderPrompt(ctx.params, []).system }]);
    if (systemTokens.size >= 1_000) systemTokens.delete(systemTokens.keys().next().value!);
    systemTokens.set(ctx.batchKey, system);
  }
  let items = 12; // the user message's heading line and framing
  for (const it of batch) items += (it.tokens ?? countTokens(it.text)) + ITEM_LINE_TOKENS;
  return system + items;
}

/** Tokens of one item's JSON line around its text ({"id":"i12","text":"..."}). */
const ITEM_LINE_TOKENS = 10;
