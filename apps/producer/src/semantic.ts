/**
 * The semantic cache in the API process: it owns the embedder and the vector store (pgvector in
 * the embedded PGlite, or Qdrant), answers lookups at submit time, fills the store from the
 * `cache-fill` queue (workers put answered items there), and runs the hit audit: a sample of
 * semantic hits is also answered by the LLM (`cache-audit` queue) and the agreement recorded in
 * Postgres (cache_audits) and in metrics, which gives a live false-hit rate per task.
 *
 * With the embedded pgvector store only one API process may run (PGlite is single-process);
 * several API processes share a Qdrant.
 */
import { Queue, Worker } from "bullmq";
import type { PGlite } from "@electric-sql/pglite";
import { isDeepStrictEqual } from "node:util";
import {
  CACHE_AUDIT_QUEUE,
  CACHE_FILL_QUEUE,
  CacheAuditJob,
  CacheFillJob,
  coerceError,
  createRedis,
  loadPriceTable,
  metrics,
  observeLlmCall,
  validateResults,
  type DependencyMonitor,
  type Db,
  type Env,
  type Logger,
  type ProviderEndpoint,
  type ProviderName,
} from "@sieve/shared";
import { scopeFields, type CacheScopeInput } from "@sieve/shared/dedup/keys";
import { cacheAudits } from "@sieve/shared/db/schema/index";
import { MemoEmbedder } from "@sieve/cache/embeddings/memo";
import { OpenAIEmbedder, PgVectorStore, QdrantStore, SemanticCache, UseLiteEmbedder, type Embedder, type VectorStore } from "@sieve/cache";
import { createProviders } from "@sieve/workers/providers/index";
import { completeSideCall, sendSideCall } from "@sieve/workers/providers/sideCall";
import type { SemanticLookup } from "./dedup.js";
import type { DedupContext } from "./accept/dedupHook.js";

export interface SemanticServiceOptions {
  env: Env;
  db: Db;
  log: Logger;
  endpoints: Map<ProviderName, ProviderEndpoint>;
  /** The embedded database, when there is one: the vector table lives in it. */
  pglite?: PGlite | undefined;
  /** Where a separate PGlite for vectors lives when the main database is a real Postgres. @defaultValue `${SIEVE_DATA_DIR}/vectors` */
  vectorDataDir?: string | undefined;
  /** Override the embedder (tests). */
  embedder?: Embedder;
  /** Where the consumers' connection errors go (one log line per outage, docs/operations.md#outages). */
  monitor?: DependencyMonitor;
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
  const prices = loadPriceTable(env.SIEVE_PRICES);
  let fills = 0;

  const fillWorker = new Worker(
    CACHE_FILL_QUEUE,
    async (job) => {
      const data = CacheFillJob.parse(job.data);
      await cache.store(
        data.entries.map((e) => ({
          scope: scopeFields(e.scope as CacheScopeInput),
          text: e.text,
          output: e.output,
          sourceItemId: e.itemId,
          ttlMs: e.ttlSeconds * 1000,
        })),
      );
      // Eviction scans the store: do it every ~50 fills, not on every one.
      if (++fills % 50 === 0) await cache.evictIfNeeded(env.SIEVE_SEMANTIC_MAX_ENTRIES);
    },
    { connection, prefix, concurrency: 1 },
  );
  if (opts.monitor) {
    for (const [e, name] of [[connection, "cache redis"], [auditQueue, "cache-audit queue"], [fillWorker, "cache-fill worker"]] as const) opts.monitor.watch(e, name);
  } else fillWorker.on("error", (e) => log.warn({ err: coerceError(e).message }, "cache-fill worker error"));

  // SDK clients for audits, built once (not per audit job).
  const providers = createProviders(opts.endpoints);
  const auditWorker = new Worker(
    CACHE_AUDIT_QUEUE,
    async (job) => {
      const data = CacheAuditJob.parse(job.data);
      const provider = providers.get(data.scope.provider);
      if (!provider) return;
      const ids = data.hits.map((_, i) => `i${i + 1}`);
      const items = data.hits.map((h, i) => ({ id: ids[i]!, text: h.text }));
      const { res, call } = await sendSideCall(opts.db, prices, provider, {
        tenantId: data.scope.tenantId,
        provider: data.scope.provider,
        model: data.scope.model,
        lane: "audit",
        batchKey: "cache-audit",
        params: data.scope.params,
        items,
        timeoutMs: env.SIEVE_CALL_TIMEOUT_MS,
      });
      const v = res.answer === undefined ? undefined : validateResults(data.scope.params, ids, res.answer);
      const auditCall = await completeSideCall(opts.db, call, { outcome: v && v.failed.size === 0 ? "ok" : "partial", validCount: v?.ok.size ?? 0 });
      observeLlmCall(auditCall);
      const llmCallId = auditCall.id;
      await opts.db.insert(cacheAudits).values(
        data.hits.map((h, i) => {
          const llm = v?.ok.get(ids[i]!);
          const agree = llm === undefined ? null : isDeepStrictEqual(llm, h.cachedOutput);
          if (agree !== null) metrics.cacheAudits.inc({ task: data.scope.params.task, agree: String(agree) });
          return {
            tenantId: data.scope.tenantId,
            task: data.scope.params.task,
            itemId: h.itemId,
            sourceItemId: h.sourceItemId,
            score: h.score,
            cachedOutput: h.cachedOutput as object,
            llmOutput: (llm ?? null) as object | null,
            agree,
            llmCallId,
          };
        }),
      );
    },
    { connection, prefix, concurrency: 1 },
  );
  if (opts.monitor) opts.monitor.watch(auditWorker, "cache-audit worker");
  else auditWorker.on("error", (e) => log.warn({ err: coerceError(e).message }, "cache-audit worker error"));
  log.info({ store: env.SIEVE_SEMANTIC_CACHE, embedder: embedder.id }, "semantic cache ready");

  return {
    cache,
    async lookup(texts, scope, threshold) {
      const out = new Map<number, { output: unknown; score: number; sourceItemId: number | null; sourceText: string }>();
      const guards = allowed(scope.params.task === "classify" ? env.SIEVE_SEMANTIC_ALLOW_MISMATCH_CLASSIFY : env.SIEVE_SEMANTIC_ALLOW_MISMATCH_TRANSLATE);
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
      await auditQueue.add("audit", { scope, hits: sample }, { attempts: 3, backoff: { type: "exponential", delay: 2_000 }, removeOnComplete: { age: 3_600 }, removeOnFail: { age: 86_400 } });
    },
    async close() {
      await Promise.allSettled([fillWorker.close(), auditWorker.close()]);
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
