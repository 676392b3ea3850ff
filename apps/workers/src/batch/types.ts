/**
 * One interface for a provider's batch API (OpenAI Files + Batches, Anthropic Message Batches),
 * used by the packer, the submitter and the poller. Request bodies and result lines go through the
 * PURE transforms of providers/<name>/batch.ts, so a batch request is byte-identical to the
 * realtime call for the same items.
 */
import type { ProviderName } from "@sieve/shared";
import type { ProviderBatchRow } from "@sieve/shared/db/ops/batchLane";
import type { BatchLimits, BatchLineResult, BatchRequestSpec } from "../providers/batch-types.js";

export type BatchProviderName = Extract<ProviderName, "openai" | "anthropic">;

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
  upload?(row: ProviderBatchRow, lines: () => AsyncIterable<string>, signal?: AbortSignal): Promise<{ fileId: string; bytes: number }>;
  /** Creates the batch; returns the provider's batch id. */
  create(row: ProviderBatchRow, requests: () => AsyncIterable<string>, signal?: AbortSignal): Promise<string>;
  /**
   * After a crash during create: the provider batch this row created, if any. `known` holds ids
   * already recorded (never adopt one of those).
   */
  findCreated(row: ProviderBatchRow, known: (ids: string[]) => Promise<Set<string>>): Promise<string | undefined>;
  retrieve(providerBatchId: string): Promise<BatchStatus>;
  cancel(providerBatchId: string): Promise<void>;
  /** Every result line of an ended batch (OpenAI: output AND error file; Anthropic: the results), streamed, in provider order. */
  results(row: ProviderBatchRow): AsyncIterable<BatchLineResult>;
}

/** Errors of a create that mean "wait and try later", not "this batch is wrong". */
export function isCapacityError(status: number | undefined, message: string): boolean {
  return status === 429 || /token_limit_exceeded|enqueued token|too many (open|active) batches/i.test(message);
}

/** Lines of a web stream (a fetch Response body), decoded as UTF-8; never holds more than one line plus one chunk. */
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
