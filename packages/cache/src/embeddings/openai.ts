/**
 * Embeddings over the OpenAI `/v1/embeddings` wire format: OpenAI itself, or any compatible server
 * (vLLM, Hugging Face TEI) serving an embedding model. Plain fetch, batched, retried on the shared
 * retryable statuses with `Retry-After` honoured.
 */
import { ProviderError, RETRYABLE_STATUSES, coerceError } from "@sieve/shared/errors";
import type { ProviderName } from "@sieve/shared/providerNames";
import { chunk, normalise, type Embedder } from "./types.js";

/** Native sizes of OpenAI's embedding models (used when `dimensions` is not given). */
const KNOWN_DIMENSIONS: Record<string, number> = {
  "text-embedding-3-small": 1536,
  "text-embedding-3-large": 3072,
  "text-embedding-ada-002": 1536,
};

export interface OpenAIEmbedderOptions {
  /** Base URL including `/v1`. @defaultValue "https://api.openai.com/v1" */
  baseURL?: string | undefined;
  /** Sent as `Authorization: Bearer`. Local servers usually accept any value. @defaultValue "EMPTY" */
  apiKey?: string | undefined;
  /** The embedding model name, e.g. "text-embedding-3-small" or what the server lists in /v1/models. */
  model: string;
  /** Vector length. Required unless the model is one of OpenAI's known embedding models. */
  dimensions?: number | undefined;
  /**
   * Send `dimensions` in the request (shortened embeddings). Only text-embedding-3-* supports it;
   * vLLM and TEI may reject the field. @defaultValue true for text-embedding-3-*, else false
   */
  requestDimensions?: boolean | undefined;
  /** Texts per request. OpenAI accepts up to 2048 inputs per request. @defaultValue 256 */
  batchSize?: number | undefined;
  /** Timeout of one request, in ms. @defaultValue 60000 */
  timeoutMs?: number | undefined;
  /** Attempts per batch for retryable failures (429, 5xx, timeouts). @defaultValue 4 */
  maxAttempts?: number | undefined;
  /** First retry delay, in ms (doubles per attempt) when the server sends no Retry-After. @defaultValue 500 */
  retryBaseMs?: number | undefined;
  /** Which provider errors are attributed to. @defaultValue "openai" */
  provider?: ProviderName | undefined;
  /** For tests: a fetch implementation. @defaultValue globalThis.fetch */
  fetch?: typeof fetch | undefined;
}

interface EmbeddingsResponse {
  data?: Array<{ index?: number; embedding?: unknown }>;
}

export class OpenAIEmbedder implements Embedder {
  readonly id: string;
  readonly dimensions: number;
  private readonly url: string;
  private readonly apiKey: string;
  private readonly model: string;
  private readonly requestDimensions: boolean;
  private readonly batchSize: number;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly retryBaseMs: number;
  private readonly provider: ProviderName;
  private readonly fetchImpl: typeof fetch;

  constructor(opts: OpenAIEmbedderOptions) {
    const dims = opts.dimensions ?? KNOWN_DIMENSIONS[opts.model];
    if (!dims || !Number.isInteger(dims) || dims < 1) {
      throw new RangeError(`OpenAIEmbedder: set "dimensions" for model "${opts.model}" (its vector length is not known)`);
    }
    this.dimensions = dims;
    this.model = opts.model;
    this.url = `${(opts.baseURL ?? "https://api.openai.com/v1").replace(/\/+$/, "")}/embeddings`;
    this.apiKey = opts.apiKey ?? "EMPTY";
    this.requestDimensions = opts.requestDimensions ?? opts.model.startsWith("text-embedding-3");
    this.batchSize = opts.batchSize ?? 256;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.maxAttempts = opts.maxAttempts ?? 4;
    this.retryBaseMs = opts.retryBaseMs ?? 500;
    this.provider = opts.provider ?? "openai";
    this.fetchImpl = opts.fetch ?? globalThis.fetch;
    // The base URL is part of the id: two servers may serve different weights under one model name.
    const host = new URL(this.url).host;
    this.id = `openai-compat:${host}:${this.model}:${this.dimensions}`;
  }

  async embed(texts: string[]): Promise<number[][]> {
    const out: number[][] = [];
    for (const batch of chunk(texts, this.batchSize)) out.push(...(await this.embedBatch(batch)));
    return out;
  }

  private async embedBatch(texts: string[]): Promise<number[][]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.request(texts);
      } catch (e) {
        const err = e instanceof ProviderError ? e : this.timeoutOrNetwork(e);
        if (!err.retryable || attempt >= this.maxAttempts) throw err;
        const delay = err.retryAfterMs ?? this.retryBaseMs * 2 ** (attempt - 1);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private async request(texts: string[]): Promise<number[][]> {
    const body: Record<string, unknown> = { model: this.model, input: texts, encoding_format: "float" };
    if (this.requestDimensions) body.dimensions = this.dimensions;
    const res = await this.fetchImpl(this.url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${this.apiKey}` },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!res.ok) {
      const text = await res.text().catch(() => "");
      let message = text.slice(0, 500);
      try {
        const parsed = JSON.parse(text) as { error?: { message?: string } | string };
        message = typeof parsed.error === "string" ? parsed.error : (parsed.error?.message ?? message);
      } catch {
        // Not JSON: keep the raw (truncated) text.
      }
      throw new ProviderError({
        provider: this.provider,
        kind: res.status === 429 ? "rate_limited" : RETRYABLE_STATUSES.has(res.status) ? "server" : "client",
        status: res.status,
        message: `embeddings request failed (${res.status}): ${message}`,
        ...retryAfter(res.headers),
      });
    }
    const json = (await res.json()) as EmbeddingsResponse;
    const data = json.data;
    if (!Array.isArray(data) || data.length !== texts.length) {
      throw new ProviderError({
        provider: this.provider,
        kind: "invalid_output",
        message: `embeddings response has ${Array.isArray(data) ? data.length : "no"} vectors for ${texts.length} inputs`,
      });
    }
    const out = new Array<number[]>(texts.length);
    data.forEach((d, pos) => {
      // Order by `index` (the spec's contract), falling back to position.
      const i = typeof d.index === "number" ? d.index : pos;
      const v = d.embedding;
      if (!Array.isArray(v) || v.length !== this.dimensions || i < 0 || i >= texts.length) {
        throw new ProviderError({
          provider: this.provider,
          kind: "invalid_output",
          message: `embedding ${i} has length ${Array.isArray(v) ? v.length : "?"}, expected ${this.dimensions} (is encoding_format "float" supported?)`,
        });
      }
      out[i] = normalise(v as number[]);
    });
    for (let i = 0; i < out.length; i++) {
      if (!out[i]) throw new ProviderError({ provider: this.provider, kind: "invalid_output", message: `embeddings response lacks index ${i}` });
    }
    return out;
  }

  /** Timeouts and connection failures are retryable; anything else (a body that is not JSON) is not. */
  private timeoutOrNetwork(e: unknown): ProviderError {
    const err = coerceError(e);
    const transient = err.name === "TimeoutError" || err.name === "AbortError" || (err.name === "TypeError" && /fetch failed/i.test(err.message));
    return new ProviderError({
      provider: this.provider,
      kind: transient ? "timeout" : "invalid_output",
      message: `embeddings request failed: ${err.message}`,
      cause: err,
    });
  }
}

function retryAfter(headers: Headers): { retryAfterMs?: number } {
  const ms = Number(headers.get("retry-after-ms"));
  if (Number.isFinite(ms) && ms > 0) return { retryAfterMs: ms };
  const s = headers.get("retry-after");
  if (s) {
    const secs = Number(s);
    if (Number.isFinite(secs)) return { retryAfterMs: Math.max(0, secs * 1000) };
    const date = Date.parse(s);
    if (Number.isFinite(date)) return { retryAfterMs: Math.max(0, date - Date.now()) };
  }
  return {};
}
