/**
 * Anthropic Message Batches through @anthropic-ai/sdk: `messages.batches.create({ requests })`,
 * `retrieve`, `cancel`, and the results file read RAW from `results_url` (the SDK's decoder throws
 * on a malformed line; parseResultLine keeps the good lines of a damaged file).
 *
 * Message batches carry no metadata, so a create whose answer was lost (crash) is found again by
 * time and size: created after the row went "submitting", same request count, not recorded for
 * another row. A wrong adoption could not mix answers up: custom_ids embed the row id and are
 * reconciled by id, so a foreign batch's lines would be ignored and the items resubmitted.
 */
import type Anthropic from "@anthropic-ai/sdk";
import type { ProviderEndpoint } from "@sieve/shared";
import type { ProviderBatchRow } from "@sieve/shared/db/ops/batchLane";
import { createAnthropicClient } from "../providers/anthropic/api.js";
import { parseResultLine, toBatchRequest, type AnthropicBatchRequest } from "../providers/anthropic/batch.js";
import { ANTHROPIC_BATCH_LIMITS, type BatchLineResult, type BatchRequestSpec } from "../providers/batch-types.js";
import { streamLines, type BatchApi, type BatchStatus, type RenderedRequest } from "./types.js";

export class AnthropicBatchApi implements BatchApi {
  readonly provider = "anthropic" as const;
  readonly limits = ANTHROPIC_BATCH_LIMITS;
  readonly envelopeBytes = Buffer.byteLength('{"requests":[]}');
  readonly #client: Anthropic;

  constructor(endpoint: ProviderEndpoint, opts: { timeoutMs?: number } = {}) {
    this.#client = createAnthropicClient(endpoint, { timeoutMs: opts.timeoutMs ?? 600_000 });
  }

  render(spec: BatchRequestSpec): RenderedRequest {
    const text = JSON.stringify(toBatchRequest(spec));
    return { text, bytes: Buffer.byteLength(text) + 1 };
  }

  async create(_row: ProviderBatchRow, requests: () => AsyncIterable<string>, signal?: AbortSignal): Promise<string> {
    const all: AnthropicBatchRequest[] = [];
    for await (const t of requests()) all.push(JSON.parse(t) as AnthropicBatchRequest);
    const b = await this.#client.messages.batches.create({ requests: all }, { ...(signal ? { signal } : {}) });
    return b.id;
  }

  async findCreated(row: ProviderBatchRow, known: (ids: string[]) => Promise<Set<string>>): Promise<string | undefined> {
    const since = (row.submittingAt ?? row.createdAt).getTime() - 60_000;
    const candidates: Array<{ id: string; at: number }> = [];
    for await (const b of this.#client.messages.batches.list({ limit: 100 })) {
      const at = Date.parse(b.created_at);
      if (at < since) break;
      const c = b.request_counts;
      const total = c.processing + c.succeeded + c.errored + c.canceled + c.expired;
      if (total === row.requestCount) candidates.push({ id: b.id, at });
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

  async *results(row: ProviderBatchRow): AsyncIterable<BatchLineResult> {
    if (!row.providerBatchId) return;
    const b = await this.#client.messages.batches.retrieve(row.providerBatchId);
    if (!b.results_url) return;
    const res = await this.#client.get(b.results_url, { headers: { Accept: "application/binary" }, __binaryResponse: true } as Parameters<Anthropic["get"]>[1]).asResponse();
    for await (const line of streamLines(res.body)) yield parseResultLine(line);
  }
}
