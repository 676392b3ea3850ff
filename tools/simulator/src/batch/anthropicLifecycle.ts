/**
 * The lifecycle of a simulated Anthropic message batch (each phase lasts `phaseMs`): in_progress
 * -> ended; cancel: canceling -> ended. `request_counts` stay all `processing` until the batch ends
 * (as the API documents). Each request's `params` are validated only when it runs (an invalid one
 * comes back `errored` with invalid_request_error, as Anthropic validates params asynchronously).
 * Requests run while in_progress at an even pace (each look runs the share due by then), each
 * answered by the realtime `POST /v1/messages` handler (invoke.ts); results come back shuffled.
 */
import { countChatTokens, countTokens } from "@sieve/shared/tokens";
import { contentText } from "../generation.js";
import { isRecord } from "../http.js";
import { messagesHandler } from "../anthropic/messages.js";
import type { RouteContext } from "../types.js";
import { corruptLine, newBatchId, shuffled, yieldToEventLoop } from "./common.js";
import { invokeHandler } from "./invoke.js";
import type { AnthropicBatchRecord } from "./records.js";
import type { BatchState } from "./state.js";

const EXPIRY_MS = 24 * 3600 * 1000;

/** Estimated prompt tokens of one request (o200k; Anthropic's own tokenizer differs). */
function paramsTokens(p: Record<string, unknown>): number {
  const system = typeof p.system === "string" ? p.system : contentText(p.system);
  const messages = Array.isArray(p.messages) ? p.messages : [];
  const turns = messages.map((m) => ({ role: isRecord(m) ? String(m.role) : "user", content: isRecord(m) ? contentText(m.content) : "" }));
  const tools = Array.isArray(p.tools) ? countTokens(JSON.stringify(p.tools)) : 0;
  return countChatTokens(system ? [{ role: "system", content: system }, ...turns] : turns) + tools;
}

export function tokensByModel(b: AnthropicBatchRecord): Record<string, number> {
  if (!b.tokens) {
    const t: Record<string, number> = {};
    for (const r of b.requests) {
      const model = typeof r.params.model === "string" ? r.params.model : "(none)";
      t[model] = (t[model] ?? 0) + paramsTokens(r.params);
    }
    b.tokens = t;
  }
  return b.tokens;
}

export function advanceAnthropic(bs: BatchState, b: AnthropicBatchRecord): void {
  if (b.status === "ended") return;
  const due = b.phaseStartedAt + bs.phaseMs;
  if (bs.now() < due) return;
  bs.ended("anthropic", b.status === "canceling" ? "canceled" : b.outcome === "expire" ? "expired" : "processed");
  b.status = "ended";
  b.endedAt = due;
  b.phaseStartedAt = due;
}

function doneCount(b: AnthropicBatchRecord): number {
  if (b.cancelDone !== undefined) return b.cancelDone;
  if (b.outcome !== "expire") return b.total;
  const k = Math.floor(b.total * b.doneFraction);
  return b.total >= 2 ? Math.min(b.total - 1, Math.max(1, k)) : k;
}

/** Requests that should have run by now: in_progress runs them at an even pace over phaseMs. */
export function dueCount(bs: BatchState, b: AnthropicBatchRecord): number {
  if (b.status !== "in_progress") return doneCount(b);
  const p = bs.phaseMs === 0 ? 1 : Math.min(1, (bs.now() - b.phaseStartedAt) / bs.phaseMs);
  return Math.min(doneCount(b), Math.floor(b.total * p));
}

function apiError(message: string): unknown {
  return { type: "error", error: { type: "api_error", message: `${message} (simulated by the Sieve simulator)` }, request_id: newBatchId("req_") };
}

async function runUpTo(ctx: RouteContext, bs: BatchState, b: AnthropicBatchRecord, target: number): Promise<void> {
  const stats = bs.stats.anthropic;
  b.order ??= shuffled(
    b.requests.map((_, i) => i),
    bs.rng,
  );
  const push = (idx: number, result: unknown) => b.entries.push({ idx, line: JSON.stringify({ custom_id: b.requests[idx]!.customId, result }) });
  while (b.next < Math.min(target, b.total)) {
    const idx = b.order[b.next++]!;
    stats.requests.processed++;
    if (b.outcome === "fail_all" || bs.rng() < (bs.knobs.requestErrorRate ?? 0)) {
      b.counts.errored++;
      stats.requests.errored++;
      push(idx, { type: "errored", error: apiError(b.outcome === "fail_all" ? "Internal server error: every request of this batch failed" : "Internal server error") });
      continue;
    }
    const res = await invokeHandler(messagesHandler, {
      state: ctx.state,
      body: b.requests[idx]!.params,
      path: "/v1/messages",
      headers: { "x-api-key": "sieve-simulator-batch", "anthropic-version": "2023-06-01" },
      dialect: "anthropic",
    });
    if (res.status === 200) {
      b.counts.succeeded++;
      stats.requests.succeeded++;
      push(idx, { type: "succeeded", message: res.body });
    } else {
      b.counts.errored++;
      stats.requests.errored++;
      push(idx, { type: "errored", error: res.body });
    }
    if (b.next % 100 === 0) await yieldToEventLoop();
  }
}

function writeResults(bs: BatchState, b: AnthropicBatchRecord): void {
  const stats = bs.stats.anthropic;
  const canceled = b.cancelDone !== undefined;
  for (const idx of (b.order ?? []).slice(b.next)) {
    const type = canceled ? "canceled" : "expired";
    if (canceled) {
      b.counts.canceled++;
      stats.requests.cancelled++;
    } else {
      b.counts.expired++;
      stats.requests.expired++;
    }
    b.entries.push({ idx, line: JSON.stringify({ custom_id: b.requests[idx]!.customId, result: { type } }) });
  }
  if (b.next > 0 && b.counts.succeeded === 0) stats.allFailed++;
  b.entries.sort((a, c) => a.idx - c.idx);
  const lines = shuffled(b.entries, bs.rng).map((e) => {
    if (bs.rng() >= (bs.knobs.malformedLineRate ?? 0)) return e.line;
    stats.malformedLines++;
    return corruptLine(e.line);
  });
  b.results = lines.length > 0 ? lines.join("\n") + "\n" : "";
  b.entries = [];
  b.requests = [];
  b.order = [];
}

/** Advances the batch, runs the requests that are due and writes the results once it has ended. */
export async function refresh(ctx: RouteContext, bs: BatchState, b: AnthropicBatchRecord): Promise<void> {
  advanceAnthropic(bs, b);
  if (b.results !== undefined) return;
  const target = dueCount(bs, b);
  const finish = b.status === "ended";
  const run = b.work.then(async () => {
    await runUpTo(ctx, bs, b, target);
    if (finish && b.results === undefined) writeResults(bs, b);
  });
  b.work = run.catch(() => undefined);
  await run;
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

export function messageBatchObject(b: AnthropicBatchRecord, origin: string): Record<string, unknown> {
  return {
    id: b.id,
    type: "message_batch",
    processing_status: b.status,
    // Anthropic: every request counts as `processing` until the whole batch has ended.
    request_counts:
      b.results !== undefined ? { processing: 0, ...b.counts } : { processing: b.total, succeeded: 0, errored: 0, canceled: 0, expired: 0 },
    ended_at: b.status === "ended" ? iso(b.endedAt) : null,
    created_at: iso(b.createdAt),
    expires_at: iso(b.createdAt + EXPIRY_MS),
    archived_at: null,
    cancel_initiated_at: iso(b.cancelInitiatedAt),
    results_url: b.status === "ended" ? `${origin}/v1/messages/batches/${b.id}/results` : null,
  };
}

export function openBatches(bs: BatchState): AnthropicBatchRecord[] {
  return [...bs.anthropicBatches.values()].filter((b) => {
    advanceAnthropic(bs, b);
    return b.status !== "ended";
  });
}

/** Prompt tokens enqueued per model across batches still in progress. */
export function anthropicEnqueuedTokens(bs: BatchState): Record<string, number> {
  const out: Record<string, number> = {};
  for (const b of openBatches(bs)) for (const [m, t] of Object.entries(tokensByModel(b))) out[m] = (out[m] ?? 0) + t;
  return out;
}
