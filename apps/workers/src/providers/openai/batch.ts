/**
 * Pure transforms for the OpenAI Batch API (also usable with any OpenAI-compatible batch server):
 * requests as JSONL lines whose `body` is EXACTLY the realtime chat.completions body
 * (buildChatRequest), files split under the API's limits, and output/error-file lines parsed with
 * the realtime response parser (parseChatResponse).
 *
 * Wire format (platform docs, "Batch API"): input line `{custom_id, method: "POST", url, body}`;
 * output line `{id, custom_id, response: {status_code, request_id, body}, error: null}`. The error
 * file holds requests that failed (`response.status_code` >= 400 with `body.error`, `error` null)
 * and requests that never ran (`response` null, `error: {code: "batch_expired", message}`).
 * Lines are in no particular order; requests of a cancelled batch that never ran appear in
 * NEITHER file: reconcile by custom_id (batch-types.ts reconcileBatch) and resubmit the missing.
 */
import type OpenAI from "openai";
import { RETRYABLE_STATUSES } from "@sieve/shared/errors";
import {
  assertCustomId,
  BatchRequestError,
  jsonlLines,
  malformedLine,
  OPENAI_BATCH_LIMITS,
  packBySize,
  type BatchErrorReason,
  type BatchLimits,
  type BatchLineResult,
  type BatchRequestSpec,
} from "../batch-types.js";
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
