/**
 * Runs ONE packed batch of items through a provider and persists what it can.
 *
 * - Items get short call-local ids ("i1".."iN"), never the caller's ids.
 * - The answer is validated; items missing, duplicated or invalid are retried by splitting the
 *   failed set in halves, down to single items; a single item gets `singleAttempts` tries and then
 *   ends with its own error. One poison item never fails its neighbours.
 * - Every provider request is recorded (llm_calls) BEFORE it is sent (state "sent", estimated
 *   prompt tokens and cost), then completed with its results in one transaction: a call cut off
 *   by a crash stays in the ledger (the sweeper marks it "interrupted").
 * - A transient provider failure (429, 5xx, timeout) stops the batch: items not yet final are
 *   returned as `transient` so the caller can retry them later through BullMQ (with Retry-After /
 *   backoff). Non-retryable 4xx: auth/model errors end every item at once with the provider's
 *   message; other 4xx (bad request, content filter) are split, since one item may cause them.
 */
import type { Logger } from "@sieve/shared";
import { ProviderError, classifyInfraError, coerceError, costUsd, countChatTokens, countTokens, metrics, observeLlmCall, renderPrompt, validateResults, type PriceTable, type TaskParams, type ProviderName, type NewResult } from "@sieve/shared";
import type { Db } from "@sieve/shared";
import { openLlmCall, recordOutcome, type FinishedJob } from "@sieve/shared/db/ops/results";
import type { LlmProvider } from "../providers/types.js";
import { shuffleInPlace } from "../quality/shuffle.js";

export interface BatchItem {
  itemId: number;
  jobId: string;
  tenantId: string;
  text: string;
  /** Tokens of the text (countTokens), when the caller has counted them already. */
  tokens?: number;
}

export interface ExecuteContext {
  db: Db;
  provider: LlmProvider;
  model: string;
  params: TaskParams;
  batchKey: string;
  /** "flex": sent with service_tier flex, priced at batch rates unless it fell back to the default tier. */
  lane: "realtime" | "batch" | "flex";
  prices: PriceTable;
  timeoutMs: number;
  /** Tries for an item that is alone in its call. @defaultValue 2 */
  singleAttempts?: number;
  signal?: AbortSignal;
  log: Logger;
  /**
   * How long an answer that could not be written (Postgres unreachable) is kept and its write
   * retried before the items are handed back for another call, in ms: a short Postgres outage
   * then costs no second provider call (docs/operations.md#outages). @defaultValue 120000
   */
  persistRetryMs?: number;
  /** Called after each persisted write with the jobs it finished (publish events, metrics). */
  onPersisted?: (info: { finishedJobs: FinishedJob[]; llmCallId: number | null; rows: NewResult[]; inserted: Set<number> }) => void | Promise<void>;
  /** Called with the valid answers of each call that carried several items (re-check sampling, docs/quality.md). */
  onCallAnswered?: (info: { callItems: number; rows: NewResult[] }) => void | Promise<void>;
}

export interface ExecuteResult {
  /** Items that now have a final result or error (persisted). */
  final: Set<number>;
  /** Items not final because of a transient provider failure, with that failure. */
  transient?: { itemIds: number[]; error: ProviderError };
  /** Provider requests made. */
  calls: number;
}

type ClientErrorScope = "all" | "split";

/** 401/403/404 mean the whole route is broken (key, permission, model): splitting cannot help. */
function clientErrorScope(err: ProviderError): ClientErrorScope {
  return err.status === 401 || err.status === 403 || err.status === 404 ? "all" : "split";
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
function estimatePromptTokens(ctx: ExecuteContext, batch: BatchItem[]): number {
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

export async function executeBatch(ctx: ExecuteContext, items: BatchItem[]): Promise<ExecuteResult> {
  const final = new Set<number>();
  const state = { calls: 0, transient: undefined as ExecuteResult["transient"] };
  const singleAttempts = ctx.singleAttempts ?? 2;
  const providerName: ProviderName = ctx.provider.name;

  const persist = async (call: Parameters<typeof recordOutcome>[1], rows: NewResult[]) => {
    if (call) observeLlmCall(call);
    const out = await writeRetryingOutages(ctx, () => recordOutcome(ctx.db, call, rows));
    for (const r of rows) if (out.inserted.includes(r.itemId)) metrics.itemsFinished.inc({ status: r.status, cache: "none" });
    for (const r of rows) final.add(r.itemId);
    await ctx.onPersisted?.({ finishedJobs: out.finishedJobs, llmCallId: out.llmCallId, rows, inserted: new Set(out.inserted) });
  };

  const errorRows = (batch: BatchItem[], code: string, message: string): NewResult[] =>
    batch.map((i) => ({ itemId: i.itemId, jobId: i.jobId, tenantId: i.tenantId, status: "error", errorCode: code, errorMessage: message, provider: providerName, model: ctx.model }));

  const run = async (arrived: BatchItem[], singleTry: number): Promise<void> => {
    if (state.transient || arrived.length === 0) return;
    // Shuffled within the call: position changes answers (docs/quality.md); mapped back by id.
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
    state.calls++;
    const promptItems = batch.map((it, i) => ({ id: ids[i]!, text: it.text }));
    const estInputTokens = estimatePromptTokens(ctx, batch);
    // No request leaves without its ledger row: if this insert fails, nothing is sent.
    const callId = await openLlmCall(ctx.db, {
      ...baseCall,
      estInputTokens,
      estCostUsd: costUsd(ctx.prices, ctx.model, { inputTokens: estInputTokens, outputTokens: 0 }, ctx.lane).usd.toFixed(8),
    });
    const started = Date.now();
    let res;
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
      const err =
        e instanceof ProviderError ? e : new ProviderError({ provider: providerName, kind: "server", message: coerceError(e).message, cause: e });
      const callRow = { id: callId, ...baseCall, state: "error", outcome: outcomeOf(err), error: err.message.slice(0, 2000), latencyMs: Date.now() - started };
      if (err.retryable) {
        observeLlmCall(callRow);
        await recordOutcome(ctx.db, callRow, []);
        state.transient = { itemIds: batch.map((b) => b.itemId), error: err };
        return;
      }
      if (clientErrorScope(err) === "all" || batch.length === 1) {
        await persist(callRow, errorRows(batch, "provider_rejected", `${providerName}: ${err.message}`));
        return;
      }
      observeLlmCall(callRow);
      await recordOutcome(ctx.db, callRow, []);
      const mid = Math.ceil(batch.length / 2);
      await run(batch.slice(0, mid), 1);
      await run(batch.slice(mid), 1);
      return;
    }

    const validated = res.answer === undefined
      ? { ok: new Map(), failed: new Map(ids.map((id) => [id, { reason: "unparseable_output" as const, message: res.parseError ?? "unparseable output" }])), unknownIds: 0 }
      : validateResults(ctx.params, ids, res.answer);
    // The GPU lane may have failed over to a cloud route: record and price who answered.
    const served = res.servedBy ?? { provider: providerName, model: ctx.model };
    const lane = ctx.lane === "flex" && res.servedTier === "default" ? "realtime" : ctx.lane;
    const cost = costUsd(ctx.prices, served.model, res.usage, lane);
    const perItem = batch.length > 0 ? cost.usd / batch.length : 0;
    const okRows: NewResult[] = [];
    for (const [id, output] of validated.ok) {
      const it = byId.get(id)!;
      okRows.push({ itemId: it.itemId, jobId: it.jobId, tenantId: it.tenantId, status: "ok", output, provider: served.provider, model: served.model, costUsd: perItem });
    }
    const failedItems = [...validated.failed.keys()].map((id) => byId.get(id)!);
    const firstFailure = [...validated.failed.values()][0];
    const isLastSingleTry = batch.length === 1 && failedItems.length === 1 && singleTry >= singleAttempts;
    const rows = isLastSingleTry
      ? [...okRows, ...errorRows(failedItems, `item_${firstFailure!.reason}`, `no valid answer for this item after ${singleAttempts} single-item calls: ${firstFailure!.message}`)]
      : okRows;
    await persist(
      {
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
        outcome: failedItems.length === 0 ? "ok" : okRows.length === 0 ? "invalid_output" : "partial",
        validCount: okRows.length,
        error: firstFailure ? `${validated.failed.size} item(s) failed validation, e.g. ${firstFailure.reason}: ${firstFailure.message}`.slice(0, 2000) : null,
        requestId: res.requestId ?? null,
      },
      rows,
    );
    if (batch.length > 1 && okRows.length > 0) await ctx.onCallAnswered?.({ callItems: batch.length, rows: okRows });
    if (failedItems.length === 0 || isLastSingleTry) return;
    if (failedItems.length === 1) {
      await run(failedItems, batch.length === 1 ? singleTry + 1 : 1);
      return;
    }
    const mid = Math.ceil(failedItems.length / 2);
    await run(failedItems.slice(0, mid), 1);
    await run(failedItems.slice(mid), 1);
  };

  await run(items, 1);
  if (state.transient) {
    const pending = items.filter((i) => !final.has(i.itemId)).map((i) => i.itemId);
    return { final, transient: { itemIds: pending, error: state.transient.error }, calls: state.calls };
  }
  return { final, calls: state.calls };
}

/**
 * Runs a write of answers the provider already gave (and was paid for), retrying while Postgres is
 * unreachable, up to `ctx.persistRetryMs` or until the call's signal aborts: giving up would send
 * the same items to the provider again once Postgres is back. The write is one idempotent
 * transaction (results ON CONFLICT DO NOTHING, the call row updated by id), so a retry after a
 * connection lost mid-commit cannot double anything. Other errors are thrown at once.
 */
export async function writeRetryingOutages<T>(ctx: Pick<ExecuteContext, "persistRetryMs" | "signal">, write: () => Promise<T>): Promise<T> {
  const until = Date.now() + (ctx.persistRetryMs ?? 120_000);
  for (let delay = 500; ; delay = Math.min(delay * 2, 5_000)) {
    try {
      return await write();
    } catch (e) {
      if (classifyInfraError(e) !== "postgres" || Date.now() + delay > until || ctx.signal?.aborted) throw e;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
