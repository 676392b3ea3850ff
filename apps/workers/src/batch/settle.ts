/**
 * Settling an ended provider batch: every result line (OpenAI output AND error file,
 * Anthropic results) is matched to its request by custom_id, NEVER by order, and each request is
 * settled exactly once, in one transaction with its effects:
 *
 * - `batch_requests.settled_at` is set first, `WHERE settled_at IS NULL`: a second settler (the
 *   poller run twice, a restart mid-settle) finds it set and skips the request. So the request's
 *   llm_calls row (lane "batch", tokens, cost at the batch price) is written exactly once.
 * - Its answer is validated per item (validateResults); valid items get their result through
 *   recordOutcome (idempotent, bumps the job counters).
 * - Items without a valid answer (invalid, missing from the answer, request errored, expired,
 *   cancelled, line malformed or absent) go back to waiting, or, after SIEVE_BATCH_MAX_ATTEMPTS
 *   batches, end with their own error.
 *
 * Requests with no usable line at all are settled last, as "expired" / "cancelled" / "failed" /
 * "missing" after the batch's end. A batch that failed because the provider's enqueued-token limit
 * was reached (OpenAI "fail" mode) gives its items back without counting an attempt.
 */
import { costUsd, shareCost, observeLlmCall, validateResults, TaskParams, type NewLlmCall, type NewResult, type TaskParams as TaskParamsT } from "@sieve/shared";
import { recordOutcome, type FinishedJob } from "@sieve/shared/db/ops/results";
import { RollupBatch } from "@sieve/shared/db/ops/rollups";
import { updateBatch, type ProviderBatchRow } from "@sieve/shared/db/ops/batchLane";
import {
  addSettleTotals,
  claimSettlement,
  itemsOfRequest,
  releaseUnsentBatch,
  removeBatchItems,
  requeueItems,
  setRequestCall,
  unsettledRequests,
  type SettleDelta,
  type UnsettledRequest,
} from "./db/settlement.js";
import { asDb } from "./db/tx.js";
import type { BatchApi, BatchItemError, BatchLineResult, BatchOk } from "../providers/batch-types.js";
import { batchRefOf } from "./batchRef.js";
import { callIds } from "./ids.js";
import type { LaneDeps } from "./laneDeps.js";

/** Requests settled per transaction. */
const SETTLE_CHUNK = 100;

type Entry =
  | { req: UnsettledRequest; kind: "ok"; ok: BatchOk }
  | { req: UnsettledRequest; kind: "error"; error: BatchItemError }
  | { req: UnsettledRequest; kind: "absent"; outcome: "expired" | "cancelled" | "failed" | "missing"; message: string };

export interface SettleReport {
  requests: number;
  okItems: number;
  retriedItems: number;
  erroredItems: number;
  malformedLines: number;
  unknownLines: number;
  costUsd: number;
}

function isDeadlock(e: unknown): boolean {
  const code = (e as { code?: string; cause?: { code?: string } }).code ?? (e as { cause?: { code?: string } }).cause?.code;
  return code === "40P01" || code === "40001";
}

/** The final error code of an item that ran out of attempts, by why its last attempt failed. */
function finalCode(entry: Entry, reason?: string): string {
  if (entry.kind === "absent") return `batch_${entry.outcome === "missing" ? "output_missing" : entry.outcome}`;
  if (entry.kind === "error") return entry.error.reason === "request_error" ? "batch_request_failed" : `batch_${entry.error.reason}`;
  return `item_${reason ?? "invalid_value"}`;
}

async function settleChunk(deps: LaneDeps, row: ProviderBatchRow, params: TaskParamsT, entries: Entry[], report: SettleReport): Promise<void> {
  const maxAttempts = deps.env.SIEVE_BATCH_MAX_ATTEMPTS;
  const finished: FinishedJob[] = [];
  let answered: NewResult[] = [];
  const run = () =>
    deps.db.transaction(async (txRaw) => {
      answered = [];
      const tx = asDb(txRaw);
      const delta: SettleDelta = { requests: 0, okItems: 0, retriedItems: 0, erroredItems: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 };
      const jobsDone: FinishedJob[] = [];
      // Console rollups and /metrics for this chunk (docs/console.md): rollups written once at its end, metrics after commit.
      const rollups = new RollupBatch();
      const calls: NewLlmCall[] = [];
      for (const e of entries) {
        const outcomeGuess = e.kind === "ok" ? "ok" : e.kind === "error" ? (e.error.reason === "request_error" ? "errored" : e.error.reason) : e.outcome;
        if (!(await claimSettlement(tx, e.req.id, outcomeGuess))) continue;
        delta.requests++;
        const packed = await itemsOfRequest(tx, e.req.id);
        const byItem = new Map(packed.map((p) => [p.itemId, p]));
        const ids = callIds(e.req.itemIds.length);
        const tenants = new Set(packed.map((p) => p.tenantId));
        const okRows: NewResult[] = [];
        const errRows: NewResult[] = [];
        const retry: number[] = [];
        let reasonMsg = "";
        let outcome = outcomeGuess;
        let usage = { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, cacheWriteTokens: 0 };
        let cost = 0;
        let callError: string | null = null;
        // Items whose answer was not usable, with why.
        const failed: Array<{ itemId: number; reason: string; message: string }> = [];
        if (e.kind === "ok") {
          usage = { inputTokens: e.ok.usage.inputTokens, outputTokens: e.ok.usage.outputTokens, cachedInputTokens: e.ok.usage.cachedInputTokens ?? 0, cacheWriteTokens: e.ok.usage.cacheWriteTokens ?? 0 };
          cost = costUsd(deps.prices, row.model, e.ok.usage, "batch").usd;
          const shares = shareCost(cost, e.req.itemIds.length);
          const validated =
            e.ok.answer === undefined
              ? { ok: new Map(), failed: new Map(ids.map((id) => [id, { reason: "unparseable_output", message: e.ok.parseError ?? "unparseable output" }])) }
              : validateResults(params, ids, e.ok.answer);
          ids.forEach((id, k) => {
            const itemId = e.req.itemIds[k]!;
            const it = byItem.get(itemId);
            if (!it) return; // answered elsewhere meanwhile, or its job was deleted
            const v = validated.ok.get(id);
            if (v !== undefined) {
              okRows.push({ itemId, jobId: it.jobId, tenantId: it.tenantId, status: "ok", output: v, provider: row.provider, model: row.model, costUsd: shares[k]! });
            } else {
              const f = validated.failed.get(id) ?? { reason: "missing", message: `id ${id} missing from answer` };
              failed.push({ itemId, reason: f.reason, message: f.message });
            }
          });
          outcome = failed.length === 0 ? "ok" : okRows.length === 0 ? "invalid_output" : "partial";
          if (failed.length > 0) callError = `${failed.length} item(s) failed validation, e.g. ${failed[0]!.reason}: ${failed[0]!.message}`;
        } else {
          const msg = e.kind === "error" ? `${e.error.code}: ${e.error.message}` : e.message;
          callError = msg;
          for (const p of packed) failed.push({ itemId: p.itemId, reason: e.kind === "error" ? e.error.code : e.outcome, message: msg });
        }
        for (const f of failed) {
          const it = byItem.get(f.itemId)!;
          reasonMsg = f.message;
          if (it.attempts >= maxAttempts) {
            errRows.push({
              itemId: f.itemId,
              jobId: it.jobId,
              tenantId: it.tenantId,
              status: "error",
              errorCode: finalCode(e, f.reason),
              errorMessage: `no valid answer after ${it.attempts} provider batch(es); last: ${f.message}`.slice(0, 2000),
              provider: row.provider,
              model: row.model,
            });
          } else retry.push(f.itemId);
        }
        const call = {
          tenantId: tenants.size === 1 ? [...tenants][0]! : tenants.size === 0 ? row.tenantId : "(mixed)",
          provider: row.provider,
          model: row.model,
          lane: "batch",
          batchKey: row.batchKey,
          itemCount: e.req.itemIds.length,
          inputTokens: usage.inputTokens,
          outputTokens: usage.outputTokens,
          cachedInputTokens: usage.cachedInputTokens,
          cacheWriteTokens: usage.cacheWriteTokens,
          costUsd: cost.toFixed(8),
          outcome,
          // The ledger state (docs/retries.md): answered, or refused/expired/missing at the provider.
          state: e.kind === "ok" ? "ok" : "error",
          validCount: okRows.length,
          error: callError?.slice(0, 2000) ?? null,
          providerBatchId: row.providerBatchId,
          requestId: e.req.customId,
        };
        const rec = await recordOutcome(tx, call, [...okRows, ...errRows], rollups);
        calls.push(call);
        answered.push(...okRows.filter((r) => rec.inserted.includes(r.itemId)));
        jobsDone.push(...rec.finishedJobs);
        await setRequestCall(tx, e.req.id, rec.llmCallId, outcome);
        await removeBatchItems(tx, [...okRows, ...errRows].map((r) => r.itemId));
        await requeueItems(tx, retry, reasonMsg);
        delta.okItems += okRows.length;
        delta.erroredItems += errRows.length;
        delta.retriedItems += retry.length;
        delta.inputTokens += usage.inputTokens;
        delta.outputTokens += usage.outputTokens;
        delta.costUsd += cost;
      }
      await rollups.flush(tx);
      await addSettleTotals(tx, row.id, delta);
      return { delta, jobsDone, calls };
    });
  for (let attempt = 1; ; attempt++) {
    try {
      const { delta, jobsDone, calls } = await run();
      for (const c of calls) observeLlmCall(c);
      report.requests += delta.requests;
      report.okItems += delta.okItems;
      report.retriedItems += delta.retriedItems;
      report.erroredItems += delta.erroredItems;
      report.costUsd += delta.costUsd;
      finished.push(...jobsDone);
      break;
    } catch (e) {
      // Job counters are shared with other writers: a deadlock aborts this chunk only; it is retried.
      if (attempt >= 5 || !isDeadlock(e)) throw e;
      await new Promise((r) => setTimeout(r, 50 * attempt));
    }
  }
  // Cache writes before "job finished" (as in the realtime lane).
  if (answered.length > 0) await deps.onAnswered?.(answered);
  if (finished.length > 0) deps.onJobsFinished?.(finished);
}

/** Settles every not-yet-settled request of an ended batch, then marks it settled. */
export async function settleBatch(deps: LaneDeps, api: BatchApi, row: ProviderBatchRow): Promise<SettleReport> {
  const log = deps.log.child({ batchId: row.id, provider: row.provider, providerBatchId: row.providerBatchId });
  const report: SettleReport = { requests: 0, okItems: 0, retriedItems: 0, erroredItems: 0, malformedLines: 0, unknownLines: 0, costUsd: 0 };
  const params = TaskParams.parse(row.params);
  const pending = new Map((await unsettledRequests(deps.db, row.id)).map((r) => [r.customId, r]));
  const end = row.providerStatus;
  const errors = ((row.providerCounts as { errors?: Array<{ code: string; message: string }> } | null)?.errors ?? []);

  if (pending.size > 0 && end === "failed" && errors.some((e) => /token_limit/.test(e.code))) {
    // OpenAI "enqueued token limit" reported as a failed batch: not the items' fault, they wait.
    const n = await deps.db.transaction((tx) => releaseUnsentBatch(asDb(tx), row.id, { countAttempt: false, reason: `provider at capacity: ${errors[0]!.message}` }));
    log.info({ items: n }, "batch failed at the provider's enqueued-token limit: items keep waiting");
    pending.clear();
  }

  if (pending.size > 0) {
    let chunk: Entry[] = [];
    const seen = new Set<string>();
    const flush = async () => {
      if (chunk.length === 0) return;
      await settleChunk(deps, row, params, chunk, report);
      chunk = [];
    };
    for await (const line of api.results(batchRefOf(row)) as AsyncIterable<BatchLineResult>) {
      if (line.kind === "malformed") {
        // Its custom_id is unknown: its request stays pending and is settled below as missing.
        report.malformedLines++;
        continue;
      }
      const req = pending.get(line.customId);
      if (!req) {
        if (!seen.has(line.customId)) report.unknownLines++;
        continue;
      }
      pending.delete(line.customId);
      seen.add(line.customId);
      chunk.push(line.kind === "ok" ? { req, kind: "ok", ok: line.ok } : { req, kind: "error", error: line.error });
      if (chunk.length >= SETTLE_CHUNK) await flush();
    }
    await flush();
    // Requests with no line (not run before expiry/cancel, or their line was malformed).
    const outcome = end === "expired" ? "expired" : end === "cancelled" ? "cancelled" : end === "failed" ? "failed" : "missing";
    const why =
      outcome === "missing"
        ? `no result line for this request in the batch output${report.malformedLines > 0 ? ` (${report.malformedLines} malformed line(s) in it)` : ""}`
        : outcome === "failed"
          ? `the provider batch failed${errors[0] ? `: ${errors[0].code}: ${errors[0].message}` : ""}`
          : `the provider batch was ${outcome} before this request ran`;
    const rest = [...pending.values()].map((req): Entry => ({ req, kind: "absent", outcome, message: why }));
    for (let i = 0; i < rest.length; i += SETTLE_CHUNK) await settleChunk(deps, row, params, rest.slice(i, i + SETTLE_CHUNK), report);
  }
  await updateBatch(deps.db, row.id, { state: "settled", settledAt: new Date() });
  log.info({ ...report }, "provider batch settled");
  return report;
}
