/**
 * OpenAI Files + Batches through the openai SDK (docs/providers.md#openai, platform docs "Batch API"):
 * upload a JSONL file (purpose "batch"), `batches.create` with `completion_window: "24h"`, poll
 * `batches.retrieve`, read BOTH `output_file_id` and `error_file_id` (`files.content` returns a
 * Response: its body is streamed line by line).
 */
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { once } from "node:events";
import { tmpdir } from "node:os";
import path from "node:path";
import type OpenAI from "openai";
import type { ProviderEndpoint } from "@sieve/shared";
import type { ProviderBatchRow } from "@sieve/shared/db/ops/batchLane";
import { createOpenAIClient } from "../providers/openai/api.js";
import { BATCH_ENDPOINT, COMPLETION_WINDOW, parseOutputLine, toBatchLine } from "../providers/openai/batch.js";
import { OPENAI_BATCH_LIMITS, type BatchLineResult, type BatchRequestSpec } from "../providers/batch-types.js";
import { streamLines, type BatchApi, type BatchEnd, type BatchStatus, type RenderedRequest } from "./types.js";

const ENDS: Record<string, BatchEnd | undefined> = { completed: "completed", expired: "expired", cancelled: "cancelled", failed: "failed" };

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

  async upload(row: ProviderBatchRow, lines: () => AsyncIterable<string>, signal?: AbortSignal): Promise<{ fileId: string; bytes: number }> {
    // Written to a temporary file first, so memory stays flat and the SDK streams a real file.
    const dir = await mkdtemp(path.join(tmpdir(), "sieve-batch-"));
    const file = path.join(dir, `sieve-batch-${row.id}.jsonl`);
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

  async create(row: ProviderBatchRow): Promise<string> {
    if (!row.inputFileId) throw new Error(`batch ${row.id}: no input file to create a batch from`);
    const b = await this.#client.batches.create({
      input_file_id: row.inputFileId,
      endpoint: BATCH_ENDPOINT,
      completion_window: COMPLETION_WINDOW,
      metadata: { sieve_batch_id: String(row.id) },
    });
    return b.id;
  }

  /** The input file id is unique to this row: a batch created from it is this row's. */
  async findCreated(row: ProviderBatchRow): Promise<string | undefined> {
    if (!row.inputFileId) return undefined;
    const since = (row.submittingAt ?? row.createdAt).getTime() - 10 * 60_000;
    for await (const b of this.#client.batches.list({ limit: 100 })) {
      if (b.input_file_id === row.inputFileId) return b.id;
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

  async *results(row: ProviderBatchRow): AsyncIterable<BatchLineResult> {
    // Completed requests are in the output file, failed/expired ones in the error file: read both.
    for (const fileId of [row.outputFileId, row.errorFileId]) {
      if (!fileId) continue;
      const res = await this.#client.files.content(fileId);
      for await (const line of streamLines(res.body)) yield parseOutputLine(line);
    }
  }
}
