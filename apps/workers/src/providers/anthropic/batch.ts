/**
 * Anthropic Message Batches: the pure transforms, one `{custom_id, params}` per request whose
 * `params` is EXACTLY the realtime Messages body (buildMessagesRequest: forced tool,
 * cache_control on the system block), batches split under the API's limits, and results lines
 * parsed with the realtime response parser (parseMessagesResponse); then the client the batch lane
 * drives (AnthropicBatchApi, through @anthropic-ai/sdk).
 *
 * Results (API reference, "Retrieve Message Batch results"): one line per request, in no
 * particular order, `{custom_id, result}` with result `succeeded` (message), `errored`
 * (`error: {type: "error", error: {type, message}}`), `canceled` or `expired`.
 *
 * The SDK's `messages.batches.results()` JSON-parses every line and throws on a malformed one; to
 * keep the good lines of a damaged file, read the raw text (the batch's `results_url`) and feed
 * each line to parseResultLine.
 */
import type Anthropic from "@anthropic-ai/sdk";
import type { ProviderEndpoint } from "@sieve/shared";
import { RETRYABLE_STATUSES } from "@sieve/shared/errors";
import {
  ANTHROPIC_BATCH_LIMITS,
  assertCustomId,
  jsonlLines,
  malformedLine,
  packBySize,
  streamLines,
  type BatchApi,
  type BatchLimits,
  type BatchLineResult,
  type BatchRef,
  type BatchRequestSpec,
  type BatchStatus,
  type RenderedRequest,
} from "../batch-types.js";
import { createAnthropicClient } from "./api.js";
import { buildMessagesRequest, parseMessagesResponse } from "./chat.js";

export type AnthropicBatchRequest = Anthropic.Messages.Batches.BatchCreateParams.Request;

/** One request of a batch: params are the realtime Messages body, unchanged. */
export function toBatchRequest(spec: BatchRequestSpec): AnthropicBatchRequest {
  assertCustomId(spec.customId, ANTHROPIC_BATCH_LIMITS);
  return { custom_id: spec.customId, params: buildMessagesRequest(spec) };
}

/** Bytes of `{"requests":[]}` around the requests of one create body. */
const ENVELOPE_BYTES = Buffer.byteLength('{"requests":[]}');

/** Bytes one request adds to a create body (its JSON plus a separating comma). */
export function requestBytes(req: AnthropicBatchRequest): number {
  return Buffer.byteLength(JSON.stringify(req)) + 1;
}

export interface AnthropicBatchChunk {
  requests: AnthropicBatchRequest[];
  /** Upper bound of the create body's size in bytes. */
  bytes: number;
}

/**
 * Splits requests into batches of at most `limits.maxRequests` requests and `limits.maxBytes`
 * bytes of create body, in input order (models may mix: Anthropic allows it). Throws
 * BatchRequestError for a request too big on its own or with a bad custom_id.
 */
export function splitIntoBatches(requests: Iterable<AnthropicBatchRequest>, limits: BatchLimits = ANTHROPIC_BATCH_LIMITS): AnthropicBatchChunk[] {
  const sized: Array<{ req: AnthropicBatchRequest; bytes: number }> = [];
  for (const req of requests) {
    assertCustomId(req.custom_id, limits);
    sized.push({ req, bytes: requestBytes(req) });
  }
  return packBySize(sized, {
    maxCount: limits.maxRequests,
    maxBytes: limits.maxBytes,
    envelope: ENVELOPE_BYTES,
    bytes: (e) => e.bytes,
    id: (e) => e.req.custom_id,
  }).map((c) => ({ requests: c.entries.map((e) => e.req), bytes: c.bytes }));
}

/** HTTP status of each Anthropic error type (API reference, "Errors"). */
const STATUS_OF_TYPE: Record<string, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529,
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses one line of a results file. Never throws: an unreadable line is `{ kind: "malformed" }`. */
export function parseResultLine(line: string): BatchLineResult {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return malformedLine(line, "not valid JSON");
  }
  if (!isRecord(v) || typeof v.custom_id !== "string" || !isRecord(v.result)) return malformedLine(line, "no custom_id or result");
  const customId = v.custom_id;
  const result = v.result;
  switch (result.type) {
    case "succeeded": {
      if (!isRecord(result.message)) return malformedLine(line, "succeeded without a message");
      const parsed = parseMessagesResponse(result.message as unknown as Anthropic.Messages.Message);
      return { kind: "ok", customId, ok: parsed };
    }
    case "errored": {
      // `error` is an ErrorResponse `{type: "error", error: {type, message}}`; accept the bare object too.
      const outer = isRecord(result.error) ? result.error : {};
      const inner = isRecord(outer.error) ? outer.error : outer;
      const type = typeof inner.type === "string" && inner.type !== "error" ? inner.type : "api_error";
      const status = STATUS_OF_TYPE[type] ?? 500;
      const message = typeof inner.message === "string" ? inner.message : type;
      return { kind: "error", customId, error: { reason: "request_error", code: type, message, retryable: RETRYABLE_STATUSES.has(status), status } };
    }
    case "canceled":
      return { kind: "error", customId, error: { reason: "cancelled", code: "canceled", message: "the batch was canceled before this request ran", retryable: true } };
    case "expired":
      return { kind: "error", customId, error: { reason: "expired", code: "expired", message: "the batch expired before this request ran", retryable: true } };
    default:
      return malformedLine(line, `unknown result type ${JSON.stringify(result.type)}`);
  }
}

/** Every line of a results file's text, parsed. */
export function parseResults(text: string): BatchLineResult[] {
  return jsonlLines(text).map(parseResultLine);
}

// ---------------------------------------------------------------------------------------------
// The client: Message Batches through @anthropic-ai/sdk
// ---------------------------------------------------------------------------------------------

/**
 * Anthropic Message Batches through @anthropic-ai/sdk: `messages.batches.create({ requests })`,
 * `retrieve`, `cancel`, and the results file read RAW from `results_url` (the SDK's decoder throws
 * on a malformed line; parseResultLine keeps the good lines of a damaged file).
 *
 * Message batches carry no metadata, so a create whose answer was lost (crash) is found again by
 * time and size: created after the batch went "submitting", same request count, not recorded for
 * another batch. A wrong adoption could not mix answers up: custom_ids embed Sieve's batch id and
 * are reconciled by id, so a foreign batch's lines would be ignored and the items resubmitted.
 */
export class AnthropicBatchApi implements BatchApi {
  readonly provider = "anthropic" as const;
  readonly limits = ANTHROPIC_BATCH_LIMITS;
  readonly envelopeBytes = ENVELOPE_BYTES;
  readonly #client: Anthropic;

  constructor(endpoint: ProviderEndpoint, opts: { timeoutMs?: number } = {}) {
    this.#client = createAnthropicClient(endpoint, { timeoutMs: opts.timeoutMs ?? 600_000 });
  }

  render(spec: BatchRequestSpec): RenderedRequest {
    const text = JSON.stringify(toBatchRequest(spec));
    return { text, bytes: Buffer.byteLength(text) + 1 };
  }

  async create(_batch: BatchRef, requests: () => AsyncIterable<string>, signal?: AbortSignal): Promise<string> {
    const all: AnthropicBatchRequest[] = [];
    for await (const t of requests()) all.push(JSON.parse(t) as AnthropicBatchRequest);
    const b = await this.#client.messages.batches.create({ requests: all }, { ...(signal ? { signal } : {}) });
    return b.id;
  }

  async findCreated(batch: BatchRef, known: (ids: string[]) => Promise<Set<string>>): Promise<string | undefined> {
    const since = batch.createStartedAt.getTime() - 60_000;
    const candidates: Array<{ id: string; at: number }> = [];
    for await (const b of this.#client.messages.batches.list({ limit: 100 })) {
      const at = Date.parse(b.created_at);
      if (at < since) break;
      const c = b.request_counts;
      const total = c.processing + c.succeeded + c.errored + c.canceled + c.expired;
      if (total === batch.requestCount) candidates.push({ id: b.id, at });
    }
    if (candidates.length === 0) return undefined;
    const taken = await known(candidates.map((c) => c.id));
    const free = candidates.filter((c) => !taken.has(c.id)).sort((a, b) => a.at - b.at);
    return free[0]?.id;
  }

  async retrieve(id: string): Promise<BatchStatus> {
    const b = await this.#client.messages.batches.retrieve(id);
    const c = b.request_counts;
    const counts: Record<string, number> = { processing: c.processing, succeeded: c.succeeded, errored: c.errored, canceled: c.canceled, expired: c.expired };
    const ended = b.processing_status === "ended";
    const end = !ended ? undefined : c.expired > 0 ? "expired" : b.cancel_initiated_at || c.canceled > 0 ? "cancelled" : "completed";
    return { status: b.processing_status, ...(end ? { end } : {}), counts, errors: [], cancelling: b.processing_status === "canceling" };
  }

  async cancel(id: string): Promise<void> {
    await this.#client.messages.batches.cancel(id);
  }

  async *results(batch: BatchRef): AsyncIterable<BatchLineResult> {
    if (!batch.providerBatchId) return;
    const b = await this.#client.messages.batches.retrieve(batch.providerBatchId);
    if (!b.results_url) return;
    const res = await this.#client.get(b.results_url, { headers: { Accept: "application/binary" }, __binaryResponse: true } as Parameters<Anthropic["get"]>[1]).asResponse();
    for await (const line of streamLines(res.body)) yield parseResultLine(line);
  }
}
