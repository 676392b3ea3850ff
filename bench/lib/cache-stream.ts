/**
 * Replays a stream of items through an exact cache + the real SemanticCache (pgvector in PGlite)
 * the way the producer will: exact hit -> answered; else semantic lookup -> answered; else an
 * "LLM call", whose result (the item's gold label) then populates both caches.
 * Embeddings come from a table computed beforehand (same USE model), so the replay measures the
 * cache, not the embedder.
 */
import { normaliseText } from "@sieve/shared/batchKey";
import type { Embedder } from "../../packages/cache/src/embeddings/types.js";
import { SemanticCache, type SemanticScope } from "../../packages/cache/src/semantic/cache.js";
import { PgVectorStore } from "../../packages/cache/src/vector/pgvector.js";
import type { StreamItem } from "./cache-datasets.js";
import { latencySummary, round } from "./cache-sweep.js";

/** Answers embed() from precomputed vectors (keyed by normalised text). */
export class PrecomputedEmbedder implements Embedder {
  readonly id = "use-lite-512";
  readonly dimensions = 512;
  constructor(private readonly table: Map<string, Float32Array>) {}
  async embed(texts: string[]): Promise<number[][]> {
    return texts.map((t) => {
      const v = this.table.get(normaliseText(t));
      if (!v) throw new Error(`no precomputed embedding for ${JSON.stringify(t.slice(0, 60))}`);
      return Array.from(v);
    });
  }
}

export interface StreamResult {
  items: number;
  threshold: number;
  exactHits: number;
  semanticHits: number;
  llmCalls: number;
  answeredWithoutLlm: number;
  /** Semantic hits whose source item has the same label (a proxy for a correct hit). */
  semanticSameLabelShare: number | null;
  guardRejections: { negation: number; numbers: number };
  /** By how the item entered the stream (AG News with injected repeats). */
  byKind: Record<string, { items: number; exact: number; semantic: number }>;
  lookupLatencyMs: ReturnType<typeof latencySummary>;
}

const SCOPE: SemanticScope = {
  tenantId: "bench",
  task: "classify",
  promptVersion: "classify-v1",
  schemaVersion: "s1",
  provider: "openai",
  model: "gpt-4.1-mini",
  paramsHash: "labels",
  namespace: "default",
};

export async function replayStream(stream: StreamItem[], table: Map<string, Float32Array>, threshold: number): Promise<StreamResult> {
  const store = new PgVectorStore({ dimensions: 512 });
  const cache = new SemanticCache({ embedder: new PrecomputedEmbedder(table), store });
  await cache.init();
  try {
    const exact = new Map<string, string>();
    let exactHits = 0;
    let semanticHits = 0;
    let same = 0;
    const rejections = { negation: 0, numbers: 0 };
    const byKind: StreamResult["byKind"] = {};
    const ms: number[] = [];
    for (const [i, item] of stream.entries()) {
      const k = (byKind[item.kind] ??= { items: 0, exact: 0, semantic: 0 });
      k.items++;
      const key = normaliseText(item.text);
      if (exact.has(key)) {
        exactHits++;
        k.exact++;
        continue;
      }
      const t0 = performance.now();
      const [r] = await cache.lookup([item.text], SCOPE, { threshold, onGuardReject: (g) => rejections[g.reason]++ });
      ms.push(performance.now() - t0);
      if (r) {
        semanticHits++;
        k.semantic++;
        if ((r.hit.output as { label: string }).label === item.label) same++;
        continue;
      }
      exact.set(key, item.label);
      await cache.store([{ scope: SCOPE, text: item.text, output: { label: item.label }, sourceItemId: i }]);
    }
    return {
      items: stream.length,
      threshold,
      exactHits,
      semanticHits,
      llmCalls: stream.length - exactHits - semanticHits,
      answeredWithoutLlm: round((exactHits + semanticHits) / stream.length),
      semanticSameLabelShare: semanticHits === 0 ? null : round(same / semanticHits),
      guardRejections: rejections,
      byKind,
      lookupLatencyMs: latencySummary(ms),
    };
  } finally {
    await store.close();
  }
}
