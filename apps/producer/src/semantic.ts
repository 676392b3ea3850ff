/**
 * The semantic cache in the API process: it owns the embedder and the vector store (pgvector in
 * the embedded PGlite, or Qdrant), answers lookups at submit time and queues a sample of semantic
 * hits for audit (`cache-audit` queue). What fills the store from the `cache-fill` queue and
 * answers the audits is worker code (apps/workers/src/dedup/), started beside the store through
 * the `consumers` hook the composition root hands in.
 *
 * With the embedded pgvector store only one API process may run (PGlite is single-process);
 * several API processes share a Qdrant.
 */
import { Queue } from "bullmq";
import type { PGlite } from "@electric-sql/pglite";
import { AUDIT_JOB_OPTIONS, CACHE_AUDIT_QUEUE, createRedis, taskSettings, type DependencyMonitor, type Env, type Logger } from "@sieve/shared";
import { scopeFields, type CacheScopeInput } from "@sieve/shared/dedup/keys";
import { MemoEmbedder } from "@sieve/cache/embeddings/memo";
import { OpenAIEmbedder, PgVectorStore, QdrantStore, SemanticCache, UseLiteEmbedder, type Embedder, type VectorStore } from "@sieve/cache";
import type { DedupContext, SemanticLookup } from "./accept/dedupHook.js";

/** Consumers running beside a cache, stopped with it. */
export interface RunningConsumers {
  close(): Promise<void>;
}

export interface SemanticServiceOptions {
  env: Env;
  log: Logger;
  /** The embedded database, when there is one: the vector table lives in it. */
  pglite?: PGlite | undefined;
  /** Where a separate PGlite for vectors lives when the main database is a real Postgres. @defaultValue `${SIEVE_DATA_DIR}/vectors` */
  vectorDataDir?: string | undefined;
  /** Override the embedder (tests). */
  embedder?: Embedder;
  /** Where the connections' errors go (one log line per outage, docs/operations.md#outages). */
  monitor?: DependencyMonitor;
  /** Starts the store's fill and audit consumers (apps/workers/src/dedup/cacheConsumers.ts); without it nothing fills the store. */
  consumers?: ((cache: SemanticCache, monitor?: DependencyMonitor) => RunningConsumers) | undefined;
}

export interface SemanticService extends SemanticLookup {
  cache: SemanticCache;
  close(): Promise<void>;
}

function allowed(spec: string): { allowNegationMismatch: boolean; allowNumberMismatch: boolean } {
  const set = new Set(spec.split(",").map((s) => s.trim()));
  return { allowNegationMismatch: set.has("negation"), allowNumberMismatch: set.has("numbers") };
}

export function createEmbedder(env: Env): Embedder {
  if (env.SIEVE_EMBEDDINGS === "openai") {
    return new OpenAIEmbedder({
      baseURL: env.SIEVE_EMBEDDINGS_URL ?? env.OPENAI_BASE_URL,
      apiKey: env.SIEVE_EMBEDDINGS_API_KEY ?? env.OPENAI_API_KEY,
      model: env.SIEVE_EMBEDDINGS_MODEL,
    });
  }
  return new UseLiteEmbedder();
}

export async function createSemanticService(opts: SemanticServiceOptions): Promise<SemanticService> {
  const { env, log } = opts;
  // Memoized: a text embedded for its lookup is not embedded again when its answer is stored.
  const embedder = new MemoEmbedder(opts.embedder ?? createEmbedder(env));
  const store: VectorStore =
    env.SIEVE_SEMANTIC_CACHE === "qdrant"
      ? new QdrantStore({ url: env.QDRANT_URL, apiKey: env.QDRANT_API_KEY, collection: env.QDRANT_COLLECTION, dimensions: embedder.dimensions })
      : new PgVectorStore({ dimensions: embedder.dimensions, pglite: opts.pglite, dataDir: opts.pglite ? undefined : (opts.vectorDataDir ?? `${env.SIEVE_DATA_DIR}/vectors`) });
  const cache = new SemanticCache({ embedder, store });
  await cache.init();

  const prefix = env.SIEVE_QUEUE_PREFIX;
  const connection = createRedis(env.REDIS_URL, "worker");
  const auditQueue = new Queue(CACHE_AUDIT_QUEUE, { connection, prefix });
  if (opts.monitor) for (const [e, name] of [[connection, "cache redis"], [auditQueue, "cache-audit queue"]] as const) opts.monitor.watch(e, name);
  const consumers = opts.consumers?.(cache, opts.monitor);
  log.info({ store: env.SIEVE_SEMANTIC_CACHE, embedder: embedder.id }, "semantic cache ready");

  return {
    cache,
    async lookup(texts, scope, threshold) {
      const out = new Map<number, { output: unknown; score: number; sourceItemId: number | null; sourceText: string }>();
      const guards = allowed(taskSettings(env, scope.params.task).semanticAllowMismatch);
      const res = await cache.lookup(texts, scopeFields(scope), { threshold, ...guards });
      res.forEach((r, i) => {
        if (r) out.set(i, { output: r.hit.output, score: r.hit.score, sourceItemId: r.hit.sourceItemId, sourceText: r.hit.sourceText });
      });
      return out;
    },
    async audit(hits, ctx: DedupContext) {
      const sample = hits.filter(() => Math.random() < env.SIEVE_SEMANTIC_AUDIT_RATE);
      if (sample.length === 0) return;
      const scope = { tenantId: ctx.tenantId, namespace: ctx.policy.namespace, params: ctx.params, provider: ctx.route.provider, model: ctx.route.model };
      await auditQueue.add("audit", { scope, hits: sample }, AUDIT_JOB_OPTIONS);
    },
    async close() {
      await consumers?.close();
      await auditQueue.close().catch(() => {});
      await store.close().catch(() => {});
      await connection.quit().catch(() => {});
    },
  };
}

/**
 * The semantic service, started only when something can use it: at start-up when a task has it on
 * by default (SIEVE_SEMANTIC_TASKS) or cache-fill/audit work is waiting, otherwise on the first
 * request that asks for it (`cache.semantic: true`). Its vector store (a PGlite instance) and the
 * embedding model cost hundreds of MB that a deployment without semantic traffic should not pay.
 */
export class LazySemantic implements SemanticLookup {
  private service: Promise<SemanticService> | undefined;

  constructor(private readonly create: () => Promise<SemanticService>) {}

  /** Whether the service (vector store, embedder, cache workers) has been started. */
  get started(): boolean {
    return this.service !== undefined;
  }

  start(): Promise<SemanticService> {
    if (!this.service) {
      this.service = this.create();
      // A failed start is retried by the next request that needs it.
      this.service.catch(() => {
        this.service = undefined;
      });
    }
    return this.service;
  }

  async lookup(texts: string[], scope: CacheScopeInput, threshold: number) {
    return (await this.start()).lookup(texts, scope, threshold);
  }

  async audit(hits: Parameters<NonNullable<SemanticLookup["audit"]>>[0], ctx: DedupContext): Promise<void> {
    await (await this.start()).audit?.(hits, ctx);
  }

  async close(): Promise<void> {
    const s = this.service;
    this.service = undefined;
    if (s) await (await s.catch(() => undefined))?.close();
  }
}
