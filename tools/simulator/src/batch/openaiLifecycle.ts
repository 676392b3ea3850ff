/**
 * The lifecycle of a simulated OpenAI batch (each phase lasts `phaseMs`): validating -> in_progress
 * -> finalizing -> completed; validating -> failed (bad input file, or the enqueued-token limit in
 * "fail" mode); in_progress -> expired (partial output, the rest `batch_expired` in the error file);
 * cancel -> cancelling -> cancelled (partial output; requests never run are in NEITHER file and
 * not counted as failed, as api.openai.com reports them).
 *
 * Requests run while in_progress, in a shuffled order, at an even pace over the phase: each look at
 * the batch runs the share that is due by then (so polls see `request_counts` grow, and the work
 * is spread over the polls). Each is answered by the realtime chat-completions handler
 * (invoke.ts). Output and error lines come back shuffled, never in input order.
 */
import { countChatTokens } from "@sieve/shared/tokens";
import { contentText } from "../generation.js";
import { isRecord } from "../http.js";
import { chatCompletionsHandler } from "../openai/chat.js";
import { openaiChatFlavor } from "../openai/index.js";
import type { RouteContext } from "../types.js";
import { corruptLine, newBatchId, seconds, shuffled, yieldToEventLoop } from "./common.js";
import { storeFile } from "./files.js";
import { invokeHandler } from "./invoke.js";
import type { OpenAIBatchRecord, OpenAIBatchStatus, OpenAITimestamp, OutputLine } from "./records.js";
import type { BatchState } from "./state.js";

export const TERMINAL: ReadonlySet<OpenAIBatchStatus> = new Set(["failed", "completed", "expired", "cancelled"]);
/** Statuses whose requests have been run (or decided): the output exists. */
const MATERIALIZED: ReadonlySet<OpenAIBatchStatus> = new Set(["finalizing", "completed", "expired", "cancelling", "cancelled"]);

/** The only endpoint the simulator runs in a batch. */
export const CHAT_ENDPOINT = "/v1/chat/completions";
const COMPLETION_WINDOW_MS = 24 * 3600 * 1000;

const chatHandler = chatCompletionsHandler(openaiChatFlavor);

export function requestTokens(b: OpenAIBatchRecord): number {
  if (b.tokens === undefined) {
    let n = 0;
    for (const r of b.requests) {
      const messages = Array.isArray(r.body.messages) ? r.body.messages : [];
      n += countChatTokens(messages.map((m) => ({ role: isRecord(m) ? String(m.role) : "user", content: isRecord(m) ? contentText(m.content) : "" })));
    }
    b.tokens = n;
  }
  return b.tokens;
}

/** Moves a batch through every phase that is due, using the current phaseMs. Synchronous. */
export function advanceOpenAI(bs: BatchState, b: OpenAIBatchRecord): void {
  const now = bs.now();
  const phaseMs = bs.phaseMs;
  while (!TERMINAL.has(b.status)) {
    const due = b.phaseStartedAt + phaseMs;
    if (now < due) return;
    switch (b.status) {
      case "validating":
        if (b.errors.length > 0) {
          b.status = "failed";
          b.ts.failed_at = due;
          bs.ended("openai", "failed");
        } else {
          b.status = "in_progress";
          b.ts.in_progress_at = due;
        }
        break;
      case "in_progress":
        if (b.outcome === "expire") {
          b.status = "expired";
          b.ts.expired_at = due;
          bs.ended("openai", "expired");
        } else {
          b.status = "finalizing";
          b.ts.finalizing_at = due;
        }
        break;
      case "finalizing":
        b.status = "completed";
        b.ts.completed_at = due;
        bs.ended("openai", "completed");
        break;
      case "cancelling":
        b.status = "cancelled";
        b.ts.cancelled_at = due;
        bs.ended("openai", "cancelled");
        break;
      default:
        return;
    }
    b.phaseStartedAt = due;
  }
}

/** Requests that run in total: all, or (expiry) a partial share, or (cancel) what ran before it. */
function doneCount(b: OpenAIBatchRecord): number {
  if (b.cancelDone !== undefined) return b.cancelDone;
  if (b.outcome !== "expire") return b.total;
  const k = Math.floor(b.total * b.doneFraction);
  // An expired batch keeps a PARTIAL output: some done, some not (when there are two or more).
  return b.total >= 2 ? Math.min(b.total - 1, Math.max(1, k)) : k;
}

/** Requests that should have run by now: in_progress runs them at an even pace over phaseMs. */
export function dueCount(bs: BatchState, b: OpenAIBatchRecord): number {
  if (b.status === "validating" || b.status === "failed") return 0;
  if (b.status !== "in_progress") return doneCount(b);
  const p = bs.phaseMs === 0 ? 1 : Math.min(1, (bs.now() - b.phaseStartedAt) / bs.phaseMs);
  return Math.min(doneCount(b), Math.floor(b.total * p));
}

function line(customId: string, response: unknown, error: unknown): string {
  return JSON.stringify({ id: newBatchId("batch_req_"), custom_id: customId, response, error });
}

function serverErrorResponse(why: string): { status_code: number; request_id: string; body: unknown } {
  return {
    status_code: 500,
    request_id: newBatchId("req_"),
    body: { error: { message: `The server had an error while processing your request (${why}, simulated by the Sieve simulator).`, type: "server_error", param: null, code: null } },
  };
}

/** Runs requests in processing order until `target` have run. */
async function runUpTo(ctx: RouteContext, bs: BatchState, b: OpenAIBatchRecord, target: number): Promise<void> {
  const stats = bs.stats.openai;
  b.order ??= shuffled(
    b.requests.map((_, i) => i),
    bs.rng,
  );
  while (b.next < Math.min(target, b.total)) {
    const idx = b.order[b.next++]!;
    const r = b.requests[idx]!;
    stats.requests.processed++;
    if (b.outcome === "fail_all" || bs.rng() < (bs.knobs.requestErrorRate ?? 0)) {
      b.failed++;
      stats.requests.errored++;
      b.err.push({ idx, line: line(r.customId, serverErrorResponse(b.outcome === "fail_all" ? "every request of this batch failed" : "requestErrorRate"), null) });
      continue;
    }
    const res = await invokeHandler(chatHandler, {
      state: ctx.state,
      body: r.body,
      path: CHAT_ENDPOINT,
      headers: { authorization: "Bearer sieve-simulator-batch" },
      dialect: "openai",
    });
    const response = { status_code: res.status, request_id: res.requestId, body: res.body };
    if (res.status === 200) {
      stats.requests.succeeded++;
      const u = isRecord(res.body) && isRecord(res.body.usage) ? res.body.usage : {};
      b.usage.input += Number(u.prompt_tokens ?? 0);
      b.usage.output += Number(u.completion_tokens ?? 0);
      b.usage.cached += Number(isRecord(u.prompt_tokens_details) ? (u.prompt_tokens_details.cached_tokens ?? 0) : 0);
      b.out.push({ idx, line: line(r.customId, response, null) });
    } else {
      // A request the endpoint refused: api.openai.com puts the HTTP error in `response` and leaves `error` null.
      b.failed++;
      stats.requests.errored++;
      b.err.push({ idx, line: line(r.customId, response, null) });
    }
    if (b.next % 100 === 0) await yieldToEventLoop();
  }
}

/** Writes the output and error files once every request that will run has run. */
function writeFiles(bs: BatchState, b: OpenAIBatchRecord): void {
  const stats = bs.stats.openai;
  const expired = b.outcome === "expire" && b.cancelDone === undefined;
  for (const idx of (b.order ?? []).slice(b.next)) {
    if (expired) {
      stats.requests.expired++;
      b.err.push({ idx, line: line(b.requests[idx]!.customId, null, { code: "batch_expired", message: "This request could not be executed before the completion window expired." }) });
    } else stats.requests.cancelled++;
  }
  if (b.next > 0 && b.out.length === 0) stats.allFailed++;
  const write = (entries: OutputLine[], kind: "output" | "error"): string | null => {
    if (entries.length === 0) return null;
    entries.sort((a, c) => a.idx - c.idx);
    const lines = shuffled(entries, bs.rng).map((e) => {
      if (bs.rng() >= (bs.knobs.malformedLineRate ?? 0)) return e.line;
      stats.malformedLines++;
      return corruptLine(e.line);
    });
    return storeFile(bs, { filename: `${b.id}_${kind}.jsonl`, purpose: "batch_output", content: Buffer.from(lines.join("\n") + "\n") }).id;
  };
  b.files = { outputFileId: write(b.out, "output"), errorFileId: write(b.err, "error") };
  // The lines live in the files now; the request bodies are no longer needed.
  b.out = [];
  b.err = [];
  b.requests = [];
  b.order = [];
}

/**
 * Advances the batch, runs the requests that are due (in_progress runs them progressively, so
 * polls see the counts grow) and writes the files once the batch is past in_progress.
 */
export async function refresh(ctx: RouteContext, bs: BatchState, b: OpenAIBatchRecord): Promise<void> {
  advanceOpenAI(bs, b);
  if (b.files || b.status === "validating" || b.status === "failed") return;
  const target = dueCount(bs, b);
  const finish = MATERIALIZED.has(b.status);
  const run = b.work.then(async () => {
    await runUpTo(ctx, bs, b, target);
    if (finish && !b.files) writeFiles(bs, b);
  });
  // A failure reaches this caller; the next poll starts from a settled chain.
  b.work = run.catch(() => undefined);
  await run;
}

/** The wire shape of a batch. */
export function batchObject(b: OpenAIBatchRecord): Record<string, unknown> {
  const ts = (k: OpenAITimestamp) => (b.ts[k] === undefined ? null : seconds(b.ts[k]));
  const total = b.status === "validating" || b.status === "failed" ? 0 : b.total;
  const terminal = TERMINAL.has(b.status);
  const u = b.usage;
  return {
    id: b.id,
    object: "batch",
    endpoint: b.endpoint,
    model: b.model ?? null,
    errors: b.errors.length > 0 && b.status === "failed" ? { object: "list", data: b.errors } : null,
    input_file_id: b.inputFileId,
    completion_window: b.completionWindow,
    status: b.status,
    output_file_id: terminal ? (b.files?.outputFileId ?? null) : null,
    error_file_id: terminal ? (b.files?.errorFileId ?? null) : null,
    created_at: seconds(b.createdAt),
    in_progress_at: ts("in_progress_at"),
    expires_at: seconds(b.createdAt + COMPLETION_WINDOW_MS),
    finalizing_at: ts("finalizing_at"),
    completed_at: ts("completed_at"),
    failed_at: ts("failed_at"),
    expired_at: ts("expired_at"),
    cancelling_at: ts("cancelling_at"),
    cancelled_at: ts("cancelled_at"),
    // Expired / cancelled requests count in neither `completed` nor `failed` (as api.openai.com reports them).
    request_counts: { total, completed: b.next - b.failed, failed: b.failed },
    usage: {
      input_tokens: u.input,
      input_tokens_details: { cached_tokens: u.cached },
      output_tokens: u.output,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: u.input + u.output,
    },
    metadata: b.metadata,
  };
}

export function openBatches(bs: BatchState): OpenAIBatchRecord[] {
  return [...bs.openaiBatches.values()].filter((b) => {
    advanceOpenAI(bs, b);
    return !TERMINAL.has(b.status);
  });
}

/** Prompt tokens enqueued per model across non-terminal batches that will run. */
export function openaiEnqueuedTokens(bs: BatchState): Record<string, number> {
  const out: Record<string, number> = {};
  for (const b of openBatches(bs)) {
    if (b.errors.length > 0 || b.model === undefined) continue;
    out[b.model] = (out[b.model] ?? 0) + requestTokens(b);
  }
  return out;
}
