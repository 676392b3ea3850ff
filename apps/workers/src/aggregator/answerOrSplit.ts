/**
 * Answers ONE packed set of items, splitting it when its answer fails validation: the items the
 * call answered validly are kept, and the items missing, duplicated or invalid in the answer are
 * asked again in halves, down to single items; a single item gets `singleAttempts` tries and then
 * ends with its own error. One poison item never fails its neighbours.
 *
 * - Each call (callOnce.ts) is recorded in the ledger before it is sent, and its answers are
 *   written with its ledger row in one transaction as soon as it returns (persistAnswers.ts).
 * - A transient provider failure (429, 5xx, timeout) stops the splitting: items not yet final are
 *   returned as `transient` so the caller can retry them later through BullMQ (with Retry-After /
 *   backoff). Non-retryable 4xx: auth/model errors end every item at once with the provider's
 *   message; other 4xx (bad request, content filter) are split, since one item may cause them.
 */
import { observeLlmCall, type NewResult, type ProviderError, type ProviderName, type Logger } from "@sieve/shared";
import { recordOutcome } from "@sieve/shared/db/ops/results";
import { callOnce, type BatchItem, type CallContext } from "./callOnce.js";
import { persistAnswers, type PersistContext } from "./persistAnswers.js";

export type { BatchItem } from "./callOnce.js";

export interface AnswerContext extends CallContext, PersistContext {
  /** Tries for an item that is alone in its call. @defaultValue 2 */
  singleAttempts?: number;
  log: Logger;
  /** Called with the valid answers of each call that carried several items (re-check sampling, docs/quality.md). */
  onCallAnswered?: (info: { callItems: number; rows: NewResult[] }) => void | Promise<void>;
}

export interface AnswerResult {
  /** Items that now have a final result or error (persisted). */
  final: Set<number>;
  /** Items not final because of a transient provider failure, with that failure. */
  transient?: { itemIds: number[]; error: ProviderError };
  /** Provider requests made. */
  calls: number;
}

/** 401/403/404 mean the whole route is broken (key, permission, model): splitting cannot help. */
function clientErrorScope(err: ProviderError): "all" | "split" {
  return err.status === 401 || err.status === 403 || err.status === 404 ? "all" : "split";
}

export async function answerOrSplit(ctx: AnswerContext, items: BatchItem[]): Promise<AnswerResult> {
  const final = new Set<number>();
  const state = { calls: 0, transient: undefined as AnswerResult["transient"] };
  const singleAttempts = ctx.singleAttempts ?? 2;
  const providerName: ProviderName = ctx.provider.name;

  const persist = async (call: Parameters<typeof persistAnswers>[1], rows: NewResult[]) => {
    await persistAnswers(ctx, call, rows);
    for (const r of rows) final.add(r.itemId);
  };

  const errorRows = (batch: BatchItem[], code: string, message: string): NewResult[] =>
    batch.map((i) => ({ itemId: i.itemId, jobId: i.jobId, tenantId: i.tenantId, status: "error", errorCode: code, errorMessage: message, provider: providerName, model: ctx.model }));

  /** Asks the two halves of `batch` one after the other, each as a fresh multi-item call. */
  const splitInHalves = async (batch: BatchItem[]) => {
    const mid = Math.ceil(batch.length / 2);
    await ask(batch.slice(0, mid), 1);
    await ask(batch.slice(mid), 1);
  };

  /** `singleTry`: which try this is for an item alone in its call (1 for a fresh set). */
  const ask = async (arrived: BatchItem[], singleTry: number): Promise<void> => {
    if (state.transient || arrived.length === 0) return;
    state.calls++;
    const call = await callOnce(ctx, arrived);
    const batch = call.batch;

    if (call.kind === "failed") {
      const err = call.error;
      if (err.retryable) {
        observeLlmCall(call.callRow);
        await recordOutcome(ctx.db, call.callRow, []);
        state.transient = { itemIds: batch.map((b) => b.itemId), error: err };
        return;
      }
      if (clientErrorScope(err) === "all" || batch.length === 1) {
        await persist(call.callRow, errorRows(batch, "provider_rejected", `${providerName}: ${err.message}`));
        return;
      }
      observeLlmCall(call.callRow);
      await recordOutcome(ctx.db, call.callRow, []);
      await splitInHalves(batch);
      return;
    }

    // Validated answers: the valid ones are final; the failed ones are asked again.
    const failedItems = call.failed.map((f) => f.item);
    const firstFailure = call.failed[0];
    const isLastSingleTry = batch.length === 1 && failedItems.length === 1 && singleTry >= singleAttempts;
    const rows = isLastSingleTry
      ? [...call.ok, ...errorRows(failedItems, `item_${firstFailure!.reason}`, `no valid answer for this item after ${singleAttempts} single-item calls: ${firstFailure!.message}`)]
      : call.ok;
    await persist(call.callRow, rows);
    if (batch.length > 1 && call.ok.length > 0) await ctx.onCallAnswered?.({ callItems: batch.length, rows: call.ok });
    if (failedItems.length === 0 || isLastSingleTry) return;
    if (failedItems.length === 1) {
      await ask(failedItems, batch.length === 1 ? singleTry + 1 : 1);
      return;
    }
    await splitInHalves(failedItems);
  };

  await ask(items, 1);
  if (state.transient) {
    const pending = items.filter((i) => !final.has(i.itemId)).map((i) => i.itemId);
    return { final, transient: { itemIds: pending, error: state.transient.error }, calls: state.calls };
  }
  return { final, calls: state.calls };
}
