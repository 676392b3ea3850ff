/**
 * Anthropic Message Batches: `POST /v1/messages/batches`, `GET /v1/messages/batches`,
 * `GET /v1/messages/batches/:id`, `POST /v1/messages/batches/:id/cancel`,
 * `GET /v1/messages/batches/:id/results`, `DELETE /v1/messages/batches/:id`. The batch itself is
 * validated at create (400, open-batch and enqueued-token limits: 429); it then runs through its
 * lifecycle (anthropicLifecycle.ts) whenever it is looked at.
 */
import { header, isRecord, readBody, sendJson, sendText, SimError } from "../http.js";
import { requireAnthropicKey } from "../anthropic/messages.js";
import type { Route, RouteContext } from "../types.js";
import { newBatchId, originOf } from "./common.js";
import { advanceAnthropic, anthropicEnqueuedTokens, dueCount, messageBatchObject, openBatches, refresh, tokensByModel } from "./anthropicLifecycle.js";
import type { AnthropicBatchRecord, AnthropicRequest } from "./records.js";
import { batchStateOf, BATCH_DEFAULTS, type BatchState } from "./state.js";

/** Anthropic: "custom_id ... 1 to 64 characters, letters, digits, underscores and hyphens". */
export const ANTHROPIC_CUSTOM_ID = /^[a-zA-Z0-9_-]{1,64}$/;

function requireHeaders(ctx: RouteContext): void {
  requireAnthropicKey(ctx);
  if (!header(ctx.req, "anthropic-version")) throw new SimError("invalid_request", "anthropic-version: header is required");
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
