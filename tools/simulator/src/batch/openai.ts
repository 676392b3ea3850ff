/**
 * OpenAI Batch API: `POST /v1/batches`, `GET /v1/batches`, `GET /v1/batches/:id`,
 * `POST /v1/batches/:id/cancel`, over input files uploaded with `POST /v1/files`. A create is
 * validated (input file, endpoint, window, metadata, open-batch and enqueued-token limits) and
 * the batch then runs through its lifecycle (openaiLifecycle.ts) whenever it is looked at.
 */
import { isRecord, readJsonObject, sendJson, SimError } from "../http.js";
import { requireBearer } from "../openai/chat.js";
import type { Route, RouteContext } from "../types.js";
import { listLimit, newBatchId } from "./common.js";
import { parseInputFile } from "./openaiInput.js";
import { advanceOpenAI, batchObject, CHAT_ENDPOINT, dueCount, openaiEnqueuedTokens, openBatches, refresh, requestTokens, TERMINAL } from "./openaiLifecycle.js";
import type { OpenAIBatchRecord } from "./records.js";
import { batchStateOf, BATCH_DEFAULTS, type BatchState } from "./state.js";

async function create(ctx: RouteContext): Promise<void> {
  requireBearer(ctx);
  const bs = batchStateOf(ctx.state);
  const body = await readJsonObject(ctx.req);
  const reject = (message: string, param: string, code = "invalid_value", kind: "invalid_request" | "not_found" = "invalid_request"): never => {
    bs.stats.openai.rejected++;
    throw new SimError(kind, message, { param, code });
  };
  if (typeof body.input_file_id !== "string") reject("Missing required parameter: 'input_file_id'.", "input_file_id", "missing_required_parameter");
  if (body.endpoint !== CHAT_ENDPOINT) {
    reject(`Invalid value for 'endpoint': ${JSON.stringify(body.endpoint)}. The Sieve simulator runs batches on ${CHAT_ENDPOINT} only.`, "endpoint");
  }
  if (body.completion_window !== "24h") reject(`Invalid value for 'completion_window': ${JSON.stringify(body.completion_window)}. Supported values are: '24h'.`, "completion_window");
  const metadata = body.metadata ?? null;
  if (metadata !== null) {
    const ok = isRecord(metadata) && Object.keys(metadata).length <= 16 && Object.entries(metadata).every(([k, v]) => k.length <= 64 && typeof v === "string" && v.length <= 512);
    if (!ok) reject("Invalid 'metadata': at most 16 string values, keys up to 64 and values up to 512 characters.", "metadata");
  }
  const file = bs.files.get(body.input_file_id as string);
  if (!file) reject(`Cannot find file ${String(body.input_file_id)}, or project does not have access to it.`, "input_file_id", "invalid_value");
  if (file!.purpose !== "batch") reject(`File ${file!.id} has purpose '${file!.purpose}'; batch input files must be uploaded with purpose 'batch'.`, "input_file_id");

  const open = openBatches(bs);
  const maxOpen = bs.knobs.maxOpenBatches;
  if (maxOpen !== undefined && open.length >= maxOpen) {
    bs.stats.openai.rejected++;
    throw new SimError("rate_limited", `Too many open batches: ${open.length} of at most ${maxOpen} are not finished yet (simulated by the Sieve simulator).`, {
      code: "batch_limit_exceeded",
      headers: { "retry-after": String(Math.max(1, Math.ceil(bs.phaseMs / 1000))) },
    });
  }

  const parsed = parseInputFile(file!.content, CHAT_ENDPOINT, {
    maxRequests: bs.knobs.openaiMaxRequests ?? BATCH_DEFAULTS.openaiMaxRequests,
    maxBytes: bs.knobs.openaiMaxFileBytes ?? BATCH_DEFAULTS.openaiMaxFileBytes,
  });
  const now = bs.now();
  const { outcome, doneFraction } = bs.drawOutcome();
  const b: OpenAIBatchRecord = {
    id: newBatchId("batch_"),
    inputFileId: file!.id,
    endpoint: CHAT_ENDPOINT,
    completionWindow: "24h",
    metadata: metadata as Record<string, string> | null,
    model: parsed.model,
    createdAt: now,
    status: "validating",
    phaseStartedAt: now,
    ts: {},
    requests: parsed.errors.length > 0 ? [] : parsed.requests,
    total: parsed.errors.length > 0 ? 0 : parsed.requests.length,
    errors: parsed.errors,
    outcome,
    doneFraction,
    cancelDone: undefined,
    tokens: undefined,
    order: undefined,
    next: 0,
    out: [],
    err: [],
    failed: 0,
    usage: { input: 0, cached: 0, output: 0 },
    files: undefined,
    work: Promise.resolve(),
  };
  const limit = parsed.model === undefined ? undefined : bs.tokenLimitFor(parsed.model);
  if (limit !== undefined && b.errors.length === 0) {
    const enqueued = openaiEnqueuedTokens(bs)[parsed.model!] ?? 0;
    const mine = requestTokens(b);
    if (enqueued + mine > limit) {
      // Wording of api.openai.com's BatchError (openai/openai-python#2084).
      const message = `Enqueued token limit reached for ${parsed.model} in organization org-sieve-simulator. Limit: ${limit.toLocaleString("en-US")} enqueued tokens. Please try again once some in_progress batches have been completed.`;
      if ((bs.knobs.tokenLimitMode ?? "reject") === "reject") {
        bs.stats.openai.rejected++;
        throw new SimError("invalid_request", message, { code: "token_limit_exceeded" });
      }
      b.errors.push({ code: "token_limit_exceeded", message, param: null, line: null });
      b.requests = [];
      b.total = 0;
    }
  }
  bs.openaiBatches.set(b.id, b);
  bs.stats.openai.created++;
  await refresh(ctx, bs, b);
  sendJson(ctx.res, 200, batchObject(b));
}

function getBatch(bs: BatchState, id: string): OpenAIBatchRecord {
  const b = bs.openaiBatches.get(id);
  if (!b) throw new SimError("not_found", `No batch found with id '${id}'.`, { param: "batch_id" });
  return b;
}

const batchId = (ctx: RouteContext) => decodeURIComponent(ctx.params.id ?? "");

export const openaiBatchRoutes: Route[] = [
  { method: "POST", path: "/v1/batches", dialect: "openai", handler: create },
  {
    method: "GET",
    path: "/v1/batches",
    dialect: "openai",
    async handler(ctx) {
      requireBearer(ctx);
      const bs = batchStateOf(ctx.state);
      const all = [...bs.openaiBatches.values()].reverse();
      const after = ctx.url.searchParams.get("after");
      const start = after === null ? 0 : all.findIndex((b) => b.id === after) + 1;
      const limit = listLimit(ctx.url);
      const page = all.slice(start, start + limit);
      for (const b of page) await refresh(ctx, bs, b);
      sendJson(ctx.res, 200, {
        object: "list",
        data: page.map((b) => batchObject(b)),
        first_id: page[0]?.id ?? null,
        last_id: page[page.length - 1]?.id ?? null,
        has_more: start + limit < all.length,
      });
    },
  },
  {
    method: "GET",
    path: /^\/v1\/batches\/(?<id>[^/]+)$/,
    name: "GET /v1/batches/:id",
    dialect: "openai",
    async handler(ctx) {
      requireBearer(ctx);
      const bs = batchStateOf(ctx.state);
      const b = getBatch(bs, batchId(ctx));
      await refresh(ctx, bs, b);
      sendJson(ctx.res, 200, batchObject(b));
    },
  },
  {
    method: "POST",
    path: /^\/v1\/batches\/(?<id>[^/]+)\/cancel$/,
    name: "POST /v1/batches/:id/cancel",
    dialect: "openai",
    async handler(ctx) {
      requireBearer(ctx);
      const bs = batchStateOf(ctx.state);
      const b = getBatch(bs, batchId(ctx));
      advanceOpenAI(bs, b);
      if (TERMINAL.has(b.status)) {
        throw new SimError("invalid_request", `Cannot cancel a batch with status '${b.status}'.`, { status: 409, param: "batch_id" });
      }
      if (b.status !== "cancelling") {
        // Whatever is due by now runs (partial output); nothing after it.
        b.cancelDone = Math.max(b.next, dueCount(bs, b));
        b.status = "cancelling";
        b.ts.cancelling_at = bs.now();
        b.phaseStartedAt = bs.now();
      }
      await refresh(ctx, bs, b);
      sendJson(ctx.res, 200, batchObject(b));
    },
  },
];
