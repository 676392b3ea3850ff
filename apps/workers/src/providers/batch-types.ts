/**
 * What every provider's Batch API module (openai/batch.ts, anthropic/batch.ts) shares: the client
 * interface the batch lane drives (BatchApi) and the plain batch reference it is given (BatchRef),
 * what one batch request is, what one parsed output line is, how requests are split under each
 * provider's limits, and the reconciliation of a batch's output by custom_id (NEVER by order:
 * both providers return results shuffled: docs/providers.md).
 */
import type { PromptItem, ProviderName, TaskParams } from "@sieve/shared";
import type { StructuredCallResult } from "./types.js";

/** Providers with a Batch API. */
export type BatchProviderName = Extract<ProviderName, "openai" | "anthropic">;

/**
 * The `custom_id` Sieve writes for BOTH providers: Anthropic's rule (1-64 characters of
 * letters, digits, `_` and `-`), which OpenAI accepts too, so one id scheme serves both.
 */
export const CUSTOM_ID_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;

export interface BatchLimits {
  /** Most requests in one input file (OpenAI) or one batch (Anthropic). */
  maxRequests: number;
  /**
   * Most bytes of one input file (OpenAI: the JSONL file) or one create body (Anthropic: the
   * `{"requests":[...]}` JSON). Decimal megabytes: the smaller reading of "200 MB" / "256 MB".
   */
  maxBytes: number;
  /** OpenAI: every request of a file must name the same model. */
  oneModelPerFile: boolean;
  customId: RegExp;
}

/** OpenAI Batch API: 50,000 requests and 200 MB per input file, one model per file. */
export const OPENAI_BATCH_LIMITS: BatchLimits = Object.freeze({
  maxRequests: 50_000,
  maxBytes: 200_000_000,
  oneModelPerFile: true,
  customId: CUSTOM_ID_PATTERN,
});

/** Anthropic Message Batches: 100,000 requests or 256 MB per batch, custom_id 1-64 [a-zA-Z0-9_-]. */
export const ANTHROPIC_BATCH_LIMITS: BatchLimits = Object.freeze({
  maxRequests: 100_000,
  maxBytes: 256_000_000,
  oneModelPerFile: false,
  customId: CUSTOM_ID_PATTERN,
});

/** Both providers' limits, by provider name. */
export const BatchLimits = Object.freeze({ openai: OPENAI_BATCH_LIMITS, anthropic: ANTHROPIC_BATCH_LIMITS });

/** One request of a provider batch: one multi-item call, as the realtime lane would send it. */
export interface BatchRequestSpec {
  /** Matches the result back to this request. Must match CUSTOM_ID_PATTERN. */
  customId: string;
  model: string;
  params: TaskParams;
  /** Items of this request with short ids ("i1".."iN"), as for a realtime call. */
  items: PromptItem[];
}

/** Thrown by the transforms for input that can never be sent (a bad custom_id, a request over the size limit). */
export class BatchRequestError extends Error {
  readonly customId: string | undefined;
  constructor(message: string, customId?: string) {
    super(message);
    this.name = "BatchRequestError";
    this.customId = customId;
  }
}

export function assertCustomId(customId: string, limits: Pick<BatchLimits, "customId"> = { customId: CUSTOM_ID_PATTERN }): void {
  if (!limits.customId.test(customId)) {
    throw new BatchRequestError(`custom_id ${JSON.stringify(customId.slice(0, 80))} must match ${limits.customId.source}`, customId);
  }
}

/** A request that ran and answered: the same shape as a realtime call's result, minus latency. */
export type BatchOk = Omit<StructuredCallResult, "latencyMs">;

/** Why a request of a batch has no answer. */
export type BatchErrorReason =
  /** The batch expired before this request ran (OpenAI `batch_expired`, Anthropic `expired`). */
  | "expired"
  /** The batch was cancelled before this request ran (Anthropic `canceled`). */
  | "cancelled"
  /** The request ran and failed (an HTTP error in OpenAI's error file, Anthropic `errored`). */
  | "request_error";

export interface BatchItemError {
  reason: BatchErrorReason;
  /** Provider code: OpenAI `error.code` / `body.error.code` / `type`, Anthropic error type, or "expired" / "canceled". */
  code: string;
  message: string;
  /** Resubmitting may succeed (expired, cancelled, 429, 5xx, overloaded); false: the request itself is wrong. */
  retryable: boolean;
  /** HTTP status of a request that ran and failed. */
  status?: number;
}

/** One parsed line of an output, error or results file. */
export type BatchLineResult =
  | { kind: "ok"; customId: string; ok: BatchOk }
  | { kind: "error"; customId: string; error: BatchItemError }
  /** Not valid JSON or not a result line: its custom_id is unknown, so reconcile treats its request as missing. */
  | { kind: "malformed"; malformed: string; reason: string };

/** The lines of a JSONL text, without empty lines (a trailing newline, CRLF endings). */
export function jsonlLines(text: string): string[] {
  return text.split("\n").flatMap((l) => {
    const t = l.endsWith("\r") ? l.slice(0, -1) : l;
    return t.trim() === "" ? [] : [t];
  });
}

/** A malformed-line result, the line cut to a loggable size. */
export function malformedLine(line: string, reason: string): BatchLineResult {
  return { kind: "malformed", malformed: line.length > 500 ? `${line.slice(0, 500)}…` : line, reason };
}

export interface Reconciled {
  ok: Map<string, BatchOk>;
  errors: Map<string, BatchItemError>;
  /** Expected custom_ids with no usable line at all (in neither file, or only on a malformed line): resubmit them. */
  missing: string[];
  /** Lines whose custom_id was not expected (ignored). */
  unknown: number;
  malformed: number;
  /** custom_ids seen on more than one line (the first successful answer wins). */
  duplicates: number;
}

/**
 * Matches parsed lines (from every file of one batch) to the custom_ids that were sent, by
 * custom_id only. An answer beats an error for the same id (OpenAI can list an id in both files
 * only through a provider bug, but an answer is never thrown away).
 */
export function reconcileBatch(expected: Iterable<string>, lines: Iterable<BatchLineResult>): Reconciled {
  const want = new Set(expected);
  const out: Reconciled = { ok: new Map(), errors: new Map(), missing: [], unknown: 0, malformed: 0, duplicates: 0 };
  for (const l of lines) {
    if (l.kind === "malformed") {
      out.malformed++;
      continue;
    }
    if (!want.has(l.customId)) {
      out.unknown++;
      continue;
    }
    if (out.ok.has(l.customId) || out.errors.has(l.customId)) out.duplicates++;
    if (l.kind === "ok") {
      if (!out.ok.has(l.customId)) out.ok.set(l.customId, l.ok);
      out.errors.delete(l.customId);
    } else if (!out.ok.has(l.customId) && !out.errors.has(l.customId)) {
      out.errors.set(l.customId, l.error);
    }
  }
  for (const id of want) if (!out.ok.has(id) && !out.errors.has(id)) out.missing.push(id);
  return out;
}

/**
 * Greedy packing of entries into chunks under a count and a byte limit, in input order. `bytes`
 * of an entry includes its separator; `envelope` is the fixed overhead of one chunk. Throws when
 * one entry alone does not fit.
 */
export function packBySize<T>(
  entries: Iterable<T>,
  opts: { maxCount: number; maxBytes: number; envelope: number; bytes: (e: T) => number; id?: (e: T) => string | undefined },
): Array<{ entries: T[]; bytes: number }> {
  const chunks: Array<{ entries: T[]; bytes: number }> = [];
  let cur: { entries: T[]; bytes: number } | undefined;
  for (const e of entries) {
    const size = opts.bytes(e);
    if (opts.envelope + size > opts.maxBytes) {
      const id = opts.id?.(e);
      throw new BatchRequestError(`a batch request of ${size} bytes${id ? ` (${id})` : ""} exceeds the ${opts.maxBytes}-byte limit on its own`, id);
    }
    if (!cur || cur.entries.length >= opts.maxCount || cur.bytes + size > opts.maxBytes) {
      cur = { entries: [], bytes: opts.envelope };
      chunks.push(cur);
    }
    cur.entries.push(e);
    cur.bytes += size;
  }
  return chunks;
}

/** The lines of a web stream (a fetch Response body), decoded as UTF-8; never holds more than one line plus one chunk. */
export async function* streamLines(body: ReadableStream<Uint8Array> | null): AsyncGenerator<string> {
  if (!body) return;
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let start = 0;
    let nl: number;
    while ((nl = buf.indexOf("\n", start)) !== -1) {
      const line = buf.slice(start, nl).replace(/\r$/, "");
      start = nl + 1;
      if (line.trim() !== "") yield line;
    }
    buf = buf.slice(start);
  }
  buf += decoder.decode();
  if (buf.trim() !== "") yield buf.replace(/\r$/, "");
}

// ---------------------------------------------------------------------------------------------
// The client interface the batch lane drives (apps/workers/src/batch/)
// ---------------------------------------------------------------------------------------------

/** How a provider batch ended. */
export type BatchEnd = "completed" | "expired" | "cancelled" | "failed";

export interface BatchStatus {
  /** The provider's own status string. */
  status: string;
  /** Set once the provider will not change the batch any more. */
  end?: BatchEnd;
  /** Request counts as the provider names them. */
  counts: Record<string, number>;
  outputFileId?: string;
  errorFileId?: string;
  /** Batch-level errors (OpenAI `errors.data`, e.g. token_limit_exceeded on a failed batch). */
  errors: Array<{ code: string; message: string }>;
  /** True while the provider is cancelling (no need to ask again). */
  cancelling: boolean;
}

/** What the input of one batch looks like on the wire, for size accounting while packing. */
export interface RenderedRequest {
  /** The serialized request (OpenAI: the JSONL line; Anthropic: the JSON of `{custom_id, params}`). */
  text: string;
  /** Bytes it adds to the upload (with its separator). */
  bytes: number;
}

/**
 * One Sieve batch as a Batch API client sees it: only what the clients read, so they know nothing
 * of how the lane stores its batches (the lane maps its database row to this).
 */
export interface BatchRef {
  /** Sieve's id of the batch (names the upload; OpenAI batch metadata). */
  id: number;
  /** Requests in the batch (Anthropic: how a create whose answer was lost is recognised). */
  requestCount: number;
  /** When a create may first have been sent (the lane's "submitting" time, else the batch's creation): a lost create is looked for from shortly before. */
  createStartedAt: Date;
  /** OpenAI: the uploaded input file. */
  inputFileId?: string | undefined;
  /** The provider's id of the batch, once created. */
  providerBatchId?: string | undefined;
  /** OpenAI: the output and error files of an ended batch. */
  outputFileId?: string | undefined;
  errorFileId?: string | undefined;
}

/**
 * One interface for a provider's Batch API (OpenAI Files + Batches, Anthropic Message Batches),
 * used by the packer, the submitter and the poller. Request bodies and result lines go through the
 * PURE transforms of <provider>/batch.ts, so a batch request is byte-identical to the realtime call
 * for the same items.
 */
export interface BatchApi {
  readonly provider: BatchProviderName;
  readonly limits: BatchLimits;
  /** Fixed bytes of one upload besides its requests. */
  readonly envelopeBytes: number;
  render(spec: BatchRequestSpec): RenderedRequest;
  /**
   * OpenAI only: uploads the input file (lines streamed from the database) and returns its id.
   * Providers without files take the requests in `create`.
   */
  upload?(batch: BatchRef, lines: () => AsyncIterable<string>, signal?: AbortSignal): Promise<{ fileId: string; bytes: number }>;
  /** Creates the batch; returns the provider's batch id. */
  create(batch: BatchRef, requests: () => AsyncIterable<string>, signal?: AbortSignal): Promise<string>;
  /**
   * After a crash during create: the provider batch this one created, if any. `known` holds ids
   * already recorded (never adopt one of those).
   */
  findCreated(batch: BatchRef, known: (ids: string[]) => Promise<Set<string>>): Promise<string | undefined>;
  retrieve(providerBatchId: string): Promise<BatchStatus>;
  cancel(providerBatchId: string): Promise<void>;
  /** Every result line of an ended batch (OpenAI: output AND error file; Anthropic: the results), streamed, in provider order. */
  results(batch: BatchRef): AsyncIterable<BatchLineResult>;
}

/** Errors of a create that mean "wait and try later", not "this batch is wrong". */
export function isCapacityError(status: number | undefined, message: string): boolean {
  return status === 429 || /token_limit_exceeded|enqueued token|too many (open|active) batches/i.test(message);
}
