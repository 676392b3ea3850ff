/**
 * Anthropic Message Batches: `POST /v1/messages/batches`, `GET /v1/messages/batches`,
 * `GET /v1/messages/batches/:id`, `POST /v1/messages/batches/:id/cancel`,
 * `GET /v1/messages/batches/:id/results`, `DELETE /v1/messages/batches/:id`.
 *
 * Lifecycle (each phase lasts `phaseMs`): in_progress -> ended; cancel: canceling -> ended.
 * `request_counts` stay all `processing` until the batch ends (as the API documents). The batch
 * itself is validated at create (400); each request's `params` only when it runs (an invalid one
 * comes back `errored` with invalid_request_error, as Anthropic validates params asynchronously).
 * Requests run while in_progress at an even pace (each look runs the share due by then), each
 * answered by the realtime `POST /v1/messages` handler (invoke.ts); results come back shuffled.
 */
import { countChatTokens, countTokens } from "@sieve/shared/tokens";
import { contentText } from "../generation.js";
import { header, isRecord, readBody, sendJson, sendText, SimError } from "../http.js";
import { messagesHandler, requireAnthropicKey } from "../anthropic/messages.js";
import type { Route, RouteContext } from "../types.js";
import { corruptLine, newBatchId, originOf, shuffled, yieldToEventLoop } from "./common.js";
import { invokeHandler } from "./invoke.js";
import { batchStateOf, BATCH_DEFAULTS, type BatchOutcome, type BatchState } from "./state.js";

export type AnthropicProcessingStatus = "in_progress" | "canceling" | "ended";

/** Anthropic: "custom_id ... 1 to 64 characters, letters, digits, underscores and hyphens". */
export const ANTHROPIC_CUSTOM_ID = /^[a-zA-Z0-9_-]{1,64}$/;
const EXPIRY_MS = 24 * 3600 * 1000;

interface AnthropicRequest {
  customId: string;
  params: Record<string, unknown>;
}

interface Entry {
  idx: number;
  line: string;
}

export interface AnthropicBatchRecord {
  id: string;
  /** ms since epoch. */
  createdAt: number;
  status: AnthropicProcessingStatus;
  phaseStartedAt: number;
  cancelInitiatedAt: number | undefined;
  endedAt: number | undefined;
  /** The requests (emptied once the results are written, to free memory). */
  requests: AnthropicRequest[];
  total: number;
  outcome: BatchOutcome;
  doneFraction: number;
  /** Requests run when a cancel arrived: nothing more runs. */
  cancelDone: number | undefined;
  /** Prompt tokens per model (computed when a token limit needs them). */
  tokens: Record<string, number> | undefined;
  /** Processing order (a shuffle of the request indices) and how many of it have run. */
  order: number[] | undefined;
  next: number;
  entries: Entry[];
  counts: { succeeded: number; errored: number; canceled: number; expired: number };
  /** The results file (JSONL), once the batch has ended. */
  results: string | undefined;
  /** Serialises the work on this batch (concurrent polls must not run a request twice). */
  work: Promise<void>;
}

/** Estimated prompt tokens of one request (o200k; Anthropic's own tokenizer differs). */
function paramsTokens(p: Record<string, unknown>): number {
  const system = typeof p.system === "string" ? p.system : contentText(p.system);
  const messages = Array.isArray(p.messages) ? p.messages : [];
  const turns = messages.map((m) => ({ role: isRecord(m) ? String(m.role) : "user", content: isRecord(m) ? contentText(m.content) : "" }));
  const tools = Array.isArray(p.tools) ? countTokens(JSON.stringify(p.tools)) : 0;
  return countChatTokens(system ? [{ role: "system", content: system }, ...turns] : turns) + tools;
}

function tokensByModel(b: AnthropicBatchRecord): Record<string, number> {
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
function dueCount(bs: BatchState, b: AnthropicBatchRecord): number {
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
async function refresh(ctx: RouteContext, bs: BatchState, b: AnthropicBatchRecord): Promise<void> {
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

function requireHeaders(ctx: RouteContext): void {
  requireAnthropicKey(ctx);
  if (!header(ctx.req, "anthropic-version")) throw new SimError("invalid_request", "anthropic-version: header is required");
}

function openBatches(bs: BatchState): AnthropicBatchRecord[] {
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

/** Validates a create body; throws the 400 the API sends. */
export function parseCreateBody(body: unknown, maxRequests: number): AnthropicRequest[] {
  if (!isRecord(body) || !Array.isArray(body.requests)) throw new SimError("invalid_request", "requests: Field required");
  const raw = body.requests;
  if (raw.length === 0) throw new SimError("invalid_request", "requests: List should have at least 1 item after validation, not 0");
  if (raw.length > maxRequests) {
    throw new SimError("invalid_request", `requests: List should have at most ${maxRequests} items after validation, not ${raw.length}`);
  }
  const seen = new Set<string>();
  return raw.map((r, i) => {
    if (!isRecord(r)) throw new SimError("invalid_request", `requests.${i}: Input should be a valid dictionary`);
    if (typeof r.custom_id !== "string" || !ANTHROPIC_CUSTOM_ID.test(r.custom_id)) {
      throw new SimError("invalid_request", `requests.${i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'`);
    }
    if (seen.has(r.custom_id)) throw new SimError("invalid_request", `requests.${i}.custom_id: Duplicate custom_id '${r.custom_id}'; each custom_id must be unique within a batch`);
    seen.add(r.custom_id);
    if (!isRecord(r.params)) throw new SimError("invalid_request", `requests.${i}.params: Field required`);
    return { customId: r.custom_id, params: r.params };
  });
}

async function create(ctx: RouteContext): Promise<void> {
  requireHeaders(ctx);
  const bs = batchStateOf(ctx.state);
  const stats = bs.stats.anthropic;
  try {
    const raw = await readBody(ctx.req, bs.knobs.anthropicMaxBytes ?? BATCH_DEFAULTS.anthropicMaxBytes);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch {
      throw new SimError("invalid_request", "request body is not valid JSON");
    }
    const requests = parseCreateBody(body, bs.knobs.anthropicMaxRequests ?? BATCH_DEFAULTS.anthropicMaxRequests);
    const open = openBatches(bs);
    const maxOpen = bs.knobs.maxOpenBatches;
    if (maxOpen !== undefined && open.length >= maxOpen) {
      throw new SimError("rate_limited", `Too many message batches in progress: ${open.length} of at most ${maxOpen} (simulated by the Sieve simulator).`, {
        headers: { "retry-after": String(Math.max(1, Math.ceil(bs.phaseMs / 1000))) },
      });
    }
    const now = bs.now();
    const { outcome, doneFraction } = bs.drawOutcome();
    const b: AnthropicBatchRecord = {
      id: newBatchId("msgbatch_"),
      createdAt: now,
      status: "in_progress",
      phaseStartedAt: now,
      cancelInitiatedAt: undefined,
      endedAt: undefined,
      requests,
      total: requests.length,
      outcome,
      doneFraction,
      cancelDone: undefined,
      tokens: undefined,
      order: undefined,
      next: 0,
      entries: [],
      counts: { succeeded: 0, errored: 0, canceled: 0, expired: 0 },
      results: undefined,
      work: Promise.resolve(),
    };
    const limits = bs.knobs.enqueuedTokenLimit ?? {};
    if (Object.keys(limits).length > 0) {
      const enqueued = anthropicEnqueuedTokens(bs);
      for (const [model, mine] of Object.entries(tokensByModel(b))) {
        const limit = bs.tokenLimitFor(model);
        if (limit !== undefined && (enqueued[model] ?? 0) + mine > limit) {
          throw new SimError(
            "rate_limited",
            `Number of enqueued batch tokens for ${model} would exceed your limit of ${limit.toLocaleString("en-US")} (simulated by the Sieve simulator). Please try again once some batches have ended.`,
            { headers: { "retry-after": String(Math.max(1, Math.ceil(bs.phaseMs / 1000))) } },
          );
        }
      }
    }
    bs.anthropicBatches.set(b.id, b);
    stats.created++;
    await refresh(ctx, bs, b);
    sendJson(ctx.res, 200, messageBatchObject(b, originOf(ctx.req)));
  } catch (e) {
    if (e instanceof SimError) stats.rejected++;
    throw e;
  }
}

function getBatch(bs: BatchState, id: string): AnthropicBatchRecord {
  const b = bs.anthropicBatches.get(id);
  if (!b) throw new SimError("not_found", `No message batch found with id '${id}'`);
  return b;
}

const batchId = (ctx: RouteContext) => decodeURIComponent(ctx.params.id ?? "");

export const anthropicBatchRoutes: Route[] = [
  { method: "POST", path: "/v1/messages/batches", dialect: "anthropic", handler: create },
  {
    method: "GET",
    path: "/v1/messages/batches",
    dialect: "anthropic",
    async handler(ctx) {
      requireHeaders(ctx);
      const bs = batchStateOf(ctx.state);
      // Most recently created first (Anthropic's order).
      const all = [...bs.anthropicBatches.values()].reverse();
      const limit = Math.min(1000, Math.max(1, Number(ctx.url.searchParams.get("limit") ?? 20) || 20));
      const afterId = ctx.url.searchParams.get("after_id");
      const beforeId = ctx.url.searchParams.get("before_id");
      let start = 0;
      let end = all.length;
      if (afterId !== null) start = all.findIndex((b) => b.id === afterId) + 1;
      if (beforeId !== null) end = Math.max(0, all.findIndex((b) => b.id === beforeId));
      const page = beforeId !== null && afterId === null ? all.slice(Math.max(0, end - limit), end) : all.slice(start, Math.min(end, start + limit));
      const hasMore = beforeId !== null && afterId === null ? end - limit > 0 : start + limit < end;
      for (const b of page) await refresh(ctx, bs, b);
      const origin = originOf(ctx.req);
      sendJson(ctx.res, 200, {
        data: page.map((b) => messageBatchObject(b, origin)),
        has_more: hasMore,
        first_id: page[0]?.id ?? null,
        last_id: page[page.length - 1]?.id ?? null,
      });
    },
  },
  {
    method: "GET",
    path: /^\/v1\/messages\/batches\/(?<id>[^/]+)$/,
    name: "GET /v1/messages/batches/:id",
    dialect: "anthropic",
    async handler(ctx) {
      requireHeaders(ctx);
      const bs = batchStateOf(ctx.state);
      const b = getBatch(bs, batchId(ctx));
      await refresh(ctx, bs, b);
      sendJson(ctx.res, 200, messageBatchObject(b, originOf(ctx.req)));
    },
  },
  {
    method: "POST",
    path: /^\/v1\/messages\/batches\/(?<id>[^/]+)\/cancel$/,
    name: "POST /v1/messages/batches/:id/cancel",
    dialect: "anthropic",
    async handler(ctx) {
      requireHeaders(ctx);
      const bs = batchStateOf(ctx.state);
      const b = getBatch(bs, batchId(ctx));
      advanceAnthropic(bs, b);
      if (b.status === "ended") {
        throw new SimError("invalid_request", `Message batch ${b.id} has already ended and cannot be canceled.`, { status: 409 });
      }
      if (b.status === "in_progress") {
        // Whatever is due by now runs (its results are kept); the rest comes back `canceled`.
        b.cancelDone = Math.max(b.next, dueCount(bs, b));
        b.status = "canceling";
        b.cancelInitiatedAt = bs.now();
        b.phaseStartedAt = bs.now();
      }
      await refresh(ctx, bs, b);
      sendJson(ctx.res, 200, messageBatchObject(b, originOf(ctx.req)));
    },
  },
  {
    method: "GET",
    path: /^\/v1\/messages\/batches\/(?<id>[^/]+)\/results$/,
    name: "GET /v1/messages/batches/:id/results",
    dialect: "anthropic",
    async handler(ctx) {
      requireHeaders(ctx);
      const bs = batchStateOf(ctx.state);
      const b = getBatch(bs, batchId(ctx));
      await refresh(ctx, bs, b);
      if (b.results === undefined) throw new SimError("invalid_request", `Message batch ${b.id} is still ${b.status}; results are available once it has ended.`);
      sendText(ctx.res, 200, b.results, "application/x-jsonl");
    },
  },
  {
    method: "DELETE",
    path: /^\/v1\/messages\/batches\/(?<id>[^/]+)$/,
    name: "DELETE /v1/messages/batches/:id",
    dialect: "anthropic",
    handler(ctx) {
      requireHeaders(ctx);
      const bs = batchStateOf(ctx.state);
      const b = getBatch(bs, batchId(ctx));
      advanceAnthropic(bs, b);
      if (b.status !== "ended") throw new SimError("invalid_request", `Message batch ${b.id} is still ${b.status}; cancel it and wait until it has ended before deleting it.`);
      bs.anthropicBatches.delete(b.id);
      sendJson(ctx.res, 200, { id: b.id, type: "message_batch_deleted" });
    },
  },
];
