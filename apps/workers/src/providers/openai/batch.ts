/**
 * The OpenAI Batch API (also usable with any OpenAI-compatible batch server): the pure transforms,
 * requests as JSONL lines whose `body` is EXACTLY the realtime chat.completions body
 * (buildChatRequest), files split under the API's limits, and output/error-file lines parsed with
 * the realtime response parser (parseChatResponse); then the client the batch lane drives
 * (OpenAIBatchApi: Files + Batches through the openai SDK).
 *
 * Wire format (platform docs, "Batch API"): input line `{custom_id, method: "POST", url, body}`;
 * output line `{id, custom_id, response: {status_code, request_id, body}, error: null}`. The error
 * file holds requests that failed (`response.status_code` >= 400 with `body.error`, `error` null)
 * and requests that never ran (`response` null, `error: {code: "batch_expired", message}`).
 * Lines are in no particular order; requests of a cancelled batch that never ran appear in
 * NEITHER file: reconcile by custom_id (batch-types.ts reconcileBatch) and resubmit the missing.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { once } from "node:events";
import { tmpdir } from "node:os";
import path from "node:path";
import type OpenAI from "openai";
import type { ProviderEndpoint } from "@sieve/shared";
import { RETRYABLE_STATUSES } from "@sieve/shared/errors";
import {
  assertCustomId,
  BatchRequestError,
  jsonlLines,
  malformedLine,
  OPENAI_BATCH_LIMITS,
  packBySize,
  streamLines,
  type BatchApi,
  type BatchEnd,
  type BatchErrorReason,
  type BatchLimits,
  type BatchLineResult,
  type BatchRef,
  type BatchRequestSpec,
  type BatchStatus,
  type RenderedRequest,
} from "../batch-types.js";
import { createOpenAIClient } from "./api.js";
import { buildChatRequest, parseChatResponse, type ChatRequestBody } from "./chat.js";

/** The endpoint every Sieve batch runs (`batches.create({ endpoint })` and each line's `url`). */
export const BATCH_ENDPOINT = "/v1/chat/completions";
/** `batches.create({ completion_window })`: the only value the API accepts. */
export const COMPLETION_WINDOW = "24h";

/** One line of an input file. */
export interface OpenAIBatchInputLine {
  custom_id: string;
  method: "POST";
  url: typeof BATCH_ENDPOINT;
  body: ChatRequestBody;
}

/** The input line for one request, as an object (its `body` is buildChatRequest's, unchanged). */
export function toBatchLineObject(spec: BatchRequestSpec): OpenAIBatchInputLine {
  assertCustomId(spec.customId, OPENAI_BATCH_LIMITS);
  return { custom_id: spec.customId, method: "POST", url: BATCH_ENDPOINT, body: buildChatRequest(spec) };
}

/** The JSONL line (no trailing newline) for one request. */
export function toBatchLine(spec: BatchRequestSpec): string {
  return JSON.stringify(toBatchLineObject(spec));
}

/** One input file: lines of a single model, under the count and byte limits. */
export interface OpenAIBatchFile {
  model: string;
  /** JSONL lines, without newlines. */
  lines: string[];
  /** custom_ids of `lines`, in the same order. */
  customIds: string[];
  /** Size of `fileContent(file)` in bytes. */
  bytes: number;
}

/** The bytes to upload for a file: one line each, newline-terminated. */
export function fileContent(file: Pick<OpenAIBatchFile, "lines">): string {
  return file.lines.length === 0 ? "" : file.lines.join("\n") + "\n";
}

/**
 * Splits input lines into files: at most `limits.maxRequests` lines and `limits.maxBytes` bytes
 * each and, with `oneModelPerFile`, one model per file. Input order is kept within a model.
 * Throws BatchRequestError for a line that is not a batch input line or is too big on its own.
 */
export function splitIntoFiles(lines: Iterable<string>, limits: BatchLimits = OPENAI_BATCH_LIMITS): OpenAIBatchFile[] {
  const byModel = new Map<string, Array<{ line: string; customId: string }>>();
  for (const line of lines) {
    let parsed: { custom_id?: unknown; body?: { model?: unknown } };
    try {
      parsed = JSON.parse(line) as typeof parsed;
    } catch {
      throw new BatchRequestError(`not a JSON batch input line: ${line.slice(0, 120)}`);
    }
    const customId = typeof parsed.custom_id === "string" ? parsed.custom_id : undefined;
    const model = parsed.body?.model;
    if (customId === undefined || typeof model !== "string") throw new BatchRequestError(`a batch input line needs custom_id and body.model: ${line.slice(0, 120)}`);
    const key = limits.oneModelPerFile ? model : "";
    let group = byModel.get(key);
    if (!group) byModel.set(key, (group = []));
    group.push({ line, customId });
  }
  const files: OpenAIBatchFile[] = [];
  for (const [model, group] of byModel) {
    const chunks = packBySize(group, {
      maxCount: limits.maxRequests,
      maxBytes: limits.maxBytes,
      envelope: 0,
      bytes: (e) => Buffer.byteLength(e.line) + 1,
      id: (e) => e.customId,
    });
    for (const c of chunks) {
      files.push({ model, lines: c.entries.map((e) => e.line), customIds: c.entries.map((e) => e.customId), bytes: c.bytes });
    }
  }
  return files;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

function reasonOf(code: string): BatchErrorReason {
  if (code === "batch_expired") return "expired";
  if (code === "batch_cancelled" || code === "batch_canceled") return "cancelled";
  return "request_error";
}

/**
 * Parses one line of an output OR error file. Never throws: a line that is not JSON, or not a
 * result line, is `{ kind: "malformed" }`.
 */
export function parseOutputLine(line: string): BatchLineResult {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return malformedLine(line, "not valid JSON");
  }
  if (!isRecord(v) || typeof v.custom_id !== "string") return malformedLine(line, "no custom_id");
  const customId = v.custom_id;
  const response = v.response;
  if (isRecord(response) && typeof response.status_code === "number") {
    const status = response.status_code;
    const requestId = str(response.request_id);
    if (status >= 200 && status < 300) {
      if (!isRecord(response.body)) {
        return { kind: "error", customId, error: { reason: "request_error", code: "invalid_body", message: "a 2xx response without a JSON body", retryable: true, status } };
      }
      const parsed = parseChatResponse(response.body as unknown as OpenAI.Chat.Completions.ChatCompletion);
      return { kind: "ok", customId, ok: { ...parsed, ...(requestId ? { requestId } : {}) } };
    }
    const err = isRecord(response.body) && isRecord(response.body.error) ? response.body.error : {};
    return {
      kind: "error",
      customId,
      error: {
        reason: "request_error",
        code: str(err.code) ?? str(err.type) ?? `http_${status}`,
        message: str(err.message) ?? `HTTP ${status}`,
        retryable: RETRYABLE_STATUSES.has(status),
        status,
      },
    };
  }
  if (isRecord(v.error)) {
    const code = str(v.error.code) ?? "unknown_error";
    // Errors without a response are conditions of the batch (expired, cancelled), not of the
    // request: resubmitting is the remedy. The lane's retry limit bounds anything unexpected.
    return { kind: "error", customId, error: { reason: reasonOf(code), code, message: str(v.error.message) ?? code, retryable: true } };
  }
  return malformedLine(line, "neither a response nor an error");
}

/** Every line of an output or error file's text, parsed. */
export function parseOutputFile(text: string): BatchLineResult[] {
  return jsonlLines(text).map(parseOutputLine);
}

// ---------------------------------------------------------------------------------------------
// The client: Files + Batches through the openai SDK
// ---------------------------------------------------------------------------------------------

const ENDS: Record<string, BatchEnd | undefined> = { completed: "completed", expired: "expired", cancelled: "cancelled", failed: "failed" };

/**
 * OpenAI Files + Batches through the openai SDK (docs/providers.md#openai, platform docs "Batch API"):
 * upload a JSONL file (purpose "batch"), `batches.create` with `completion_window: "24h"`, poll
 * `batches.retrieve`, read BOTH `output_file_id` and `error_file_id` (`files.content` returns a
 * Response: its body is streamed line by line).
 */
export class OpenAIBatchApi implements BatchApi {
  readonly provider = "openai" as const;
  readonly limits = OPENAI_BATCH_LIMITS;
  readonly envelopeBytes = 0;
  readonly #client: OpenAI;

  constructor(endpoint: ProviderEndpoint, opts: { timeoutMs?: number } = {}) {
    // Uploads of up to 200 MB: a longer client timeout than realtime calls.
    this.#client = createOpenAIClient(endpoint, { timeoutMs: opts.timeoutMs ?? 600_000 });
  }

  render(spec: BatchRequestSpec): RenderedRequest {
    const text = toBatchLine(spec);
    return { text, bytes: Buffer.byteLength(text) + 1 };
  }

  async upload(batch: BatchRef, lines: () => AsyncIterable<string>, signal?: AbortSignal): Promise<{ fileId: string; bytes: number }> {
    // Written to a temporary file first, so memory stays flat and the SDK streams a real file.
    const dir = await mkdtemp(path.join(tmpdir(), "sieve-batch-"));
    const file = path.join(dir, `sieve-batch-${batch.id}.jsonl`);
    try {
      const out = createWriteStream(file);
      let bytes = 0;
      for await (const l of lines()) {
        const s = `${l}\n`;
        bytes += Buffer.byteLength(s);
        if (!out.write(s)) await once(out, "drain");
      }
      out.end();
      await once(out, "finish");
      const f = await this.#client.files.create({ file: createReadStream(file), purpose: "batch" }, { ...(signal ? { signal } : {}) });
      return { fileId: f.id, bytes };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async create(batch: BatchRef): Promise<string> {
    if (!batch.inputFileId) throw new Error(`batch ${batch.id}: no input file to create a batch from`);
    const b = await this.#client.batches.create({
      input_file_id: batch.inputFileId,
      endpoint: BATCH_ENDPOINT,
      completion_window: COMPLETION_WINDOW,
      metadata: { sieve_batch_id: String(batch.id) },
    });
    return b.id;
  }

  /** The input file id is unique to this batch: a batch created from it is this one's. */
  async findCreated(batch: BatchRef): Promise<string | undefined> {
    if (!batch.inputFileId) return undefined;
    const since = batch.createStartedAt.getTime() - 10 * 60_000;
    for await (const b of this.#client.batches.list({ limit: 100 })) {
      if (b.input_file_id === batch.inputFileId) return b.id;
      if (b.created_at * 1000 < since) break;
    }
    return undefined;
  }

  async retrieve(id: string): Promise<BatchStatus> {
    const b = await this.#client.batches.retrieve(id);
    const end = ENDS[b.status];
    const counts: Record<string, number> = { ...(b.request_counts ?? {}) };
    return {
      status: b.status,
      ...(end ? { end } : {}),
      counts,
      ...(b.output_file_id ? { outputFileId: b.output_file_id } : {}),
      ...(b.error_file_id ? { errorFileId: b.error_file_id } : {}),
      errors: (b.errors?.data ?? []).map((e) => ({ code: e.code ?? "unknown", message: e.message ?? "" })),
      cancelling: b.status === "cancelling",
    };
  }

  async cancel(id: string): Promise<void> {
    await this.#client.batches.cancel(id);
  }

  async *results(batch: BatchRef): AsyncIterable<BatchLineResult> {
    // Completed requests are in the output file, failed/expired ones in the error file: read both.
    for (const fileId of [batch.outputFileId, batch.errorFileId]) {
      if (!fileId) continue;
      const res = await this.#client.files.content(fileId);
      for await (const line of streamLines(res.body)) yield parseOutputLine(line);
    }
  }
}
