/**
 * The production vector store: Qdrant over REST with `@qdrant/js-client-rest` (pinned to 1.18.x:
 * 1.19 needs Node >= 22).
 *
 * One collection (`vectors: { size, distance: "Cosine" }`) with a payload index on every scope
 * field (tenant_id as a tenant index) and integer indexes on the times. Every query carries a
 * `filter.must` with one `match.value` per scope field plus `expires_at > now`. Qdrant scores in
 * float32; Sieve re-scores the returned vectors exactly (VectorHit.score), so thresholds mean the
 * same as in PgVectorStore.
 *
 * Point ids must be unsigned integers or UUIDs in Qdrant: an entry's id is mapped to a UUID
 * derived from its SHA-256 and kept verbatim in the payload (`entry_id`).
 */
import { createHash } from "node:crypto";
import { QdrantClient, type Schemas } from "@qdrant/js-client-rest";
import { ConfigError } from "@sieve/shared/errors";
import { BACKEND_SCORE_SLACK, SCOPE_STORAGE_KEY, assertFullScope, rescore, scopeEntries, toStoredVector, validateQueryOptions } from "./scope.js";
import { SCOPE_FIELDS, type CacheScope, type QueryOptions, type ScopeField, type VectorEntry, type VectorHit, type VectorStore } from "./types.js";

export interface QdrantStoreOptions {
  /** e.g. "http://127.0.0.1:6333". Ignored when `client` is given. */
  url?: string | undefined;
  apiKey?: string | undefined;
  /** An existing client (its options win). */
  client?: QdrantClient | undefined;
  /** Vector length of the collection. */
  dimensions: number;
  /** @defaultValue "sieve_semantic_cache" */
  collection?: string | undefined;
  /** Points per upsert request. @defaultValue 256 */
  writeBatch?: number | undefined;
  /** Timeout of one request, in ms. @defaultValue 30000 */
  timeoutMs?: number | undefined;
  /** Ask the server's version on construction and warn on a mismatch (the client's own check). @defaultValue true */
  checkCompatibility?: boolean | undefined;
}

type Filter = Schemas["Filter"];
type Condition = Schemas["Condition"];

const PAYLOAD_KEY = SCOPE_STORAGE_KEY;

/**
 * Stored as `expires_at` for entries that never expire, so that a single `range` condition
 * (`expires_at > now`) selects live entries: the latest time a JS Date can hold (year 275760).
 */
const NEVER = 8_640_000_000_000_000;

interface Payload {
  entry_id: string;
  tenant_id: string;
  task: string;
  prompt_version: string;
  schema_version: string;
  provider: string;
  model: string;
  params_hash: string;
  embedder_id: string;
  namespace: string;
  text: string;
  output: unknown;
  source_item_id: number | null;
  created_at: number;
  expires_at: number;
  last_used_at: number;
}

/** The Qdrant point id (a UUID) of an entry id. */
export function pointId(entryId: string): string {
  const h = createHash("sha256").update(entryId).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export class QdrantStore implements VectorStore {
  readonly dimensions: number;
  readonly collection: string;
  private readonly client: QdrantClient;
  private readonly writeBatch: number;
  private ready: Promise<void> | undefined;

  constructor(opts: QdrantStoreOptions) {
    if (!Number.isInteger(opts.dimensions) || opts.dimensions < 1) throw new RangeError("dimensions must be a positive integer");
    this.dimensions = opts.dimensions;
    this.collection = opts.collection ?? "sieve_semantic_cache";
    this.writeBatch = opts.writeBatch ?? 256;
    if (opts.client) this.client = opts.client;
    else {
      if (!opts.url) throw new ConfigError("QdrantStore needs a url (e.g. QDRANT_URL=http://127.0.0.1:6333)");
      this.client = new QdrantClient({
        url: opts.url,
        ...(opts.apiKey ? { apiKey: opts.apiKey } : {}),
        timeout: opts.timeoutMs ?? 30_000,
        checkCompatibility: opts.checkCompatibility ?? true,
      });
    }
  }

  init(): Promise<void> {
    this.ready ??= this.doInit().catch((e: unknown) => {
      this.ready = undefined;
      throw e;
    });
    return this.ready;
  }

  private async doInit(): Promise<void> {
    const name = this.collection;
    const { exists } = await this.client.collectionExists(name);
    if (!exists) {
      try {
        await this.client.createCollection(name, { vectors: { size: this.dimensions, distance: "Cosine" } });
      } catch (e) {
        // Another process may have created it between our check and create: fine if it now exists.
        if (!(await this.client.collectionExists(name)).exists) throw e;
      }
    }
    const info = await this.client.getCollection(name);
    const vectors = info.config.params.vectors as Schemas["VectorParams"] | undefined;
    if (!vectors || typeof vectors.size !== "number") {
      throw new ConfigError(`Qdrant collection "${name}" uses named vectors; Sieve expects a single unnamed vector`);
    }
    if (vectors.size !== this.dimensions || vectors.distance !== "Cosine") {
      throw new ConfigError(
        `Qdrant collection "${name}" has ${vectors.size}-d ${vectors.distance} vectors, the embedder makes ${this.dimensions}-d ones (Cosine): use another collection`,
      );
    }
    // Creating an index that exists is a no-op in Qdrant, so this runs on every start-up.
    for (const f of SCOPE_FIELDS) {
      const key = PAYLOAD_KEY[f];
      await this.client.createPayloadIndex(name, {
        field_name: key,
        // Qdrant's multitenancy guide: mark the tenant field so storage is organised per tenant.
        field_schema: f === "tenantId" ? { type: "keyword", is_tenant: true } : "keyword",
        wait: true,
      });
    }
    for (const key of ["expires_at", "last_used_at", "created_at"]) {
      // `range: true` is what scroll's `order_by` (LRU eviction) and the expiry filter need.
      await this.client.createPayloadIndex(name, { field_name: key, field_schema: { type: "integer", lookup: false, range: true }, wait: true });
    }
  }

  async upsert(entries: VectorEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await this.init();
    const byId = new Map<string, VectorEntry>();
    for (const e of entries) byId.set(e.id, e);
    const points = [...byId.values()].map((e) => this.toPoint(e));
    for (let i = 0; i < points.length; i += this.writeBatch) {
      await this.client.upsert(this.collection, { wait: true, points: points.slice(i, i + this.writeBatch) });
    }
  }

  private toPoint(e: VectorEntry): Schemas["PointStruct"] {
    assertFullScope(e.scope);
    if (typeof e.id !== "string" || e.id.length === 0) throw new TypeError("entry id must be a non-empty string");
    const payload: Payload = {
      entry_id: e.id,
      tenant_id: e.scope.tenantId,
      task: e.scope.task,
      prompt_version: e.scope.promptVersion,
      schema_version: e.scope.schemaVersion,
      provider: e.scope.provider,
      model: e.scope.model,
      params_hash: e.scope.paramsHash,
      embedder_id: e.scope.embedderId,
      namespace: e.scope.namespace,
      text: e.text,
      output: e.output ?? null,
      source_item_id: e.sourceItemId,
      created_at: Math.trunc(e.createdAt),
      expires_at: e.expiresAt === null ? NEVER : Math.trunc(e.expiresAt),
      last_used_at: Math.trunc(e.createdAt),
    };
    return { id: pointId(e.id), vector: toStoredVector(e.vector, this.dimensions), payload: payload as unknown as Schemas["Payload"] };
  }

  async query(vector: number[], scope: CacheScope, opts: QueryOptions): Promise<VectorHit[]> {
    const [hits] = await this.queryMany([vector], scope, opts);
    return hits ?? [];
  }

  async queryMany(vectors: number[][], scope: CacheScope, opts: QueryOptions): Promise<VectorHit[][]> {
    assertFullScope(scope);
    validateQueryOptions(opts);
    if (vectors.length === 0) return [];
    await this.init();
    const now = Math.trunc(opts.now ?? Date.now());
    const filter: Filter = { must: [...scopeConditions(scope), { key: "expires_at", range: { gt: now } }] };
    const queries = vectors.map((v) => toStoredVector(v, this.dimensions));
    const responses = await this.client.queryBatch(this.collection, {
      searches: queries.map((q) => ({
        query: q,
        filter,
        limit: Math.trunc(opts.limit),
        // Qdrant's float32 score may sit a hair below ours: fetch with slack, decide exactly below.
        score_threshold: opts.minScore - BACKEND_SCORE_SLACK,
        with_payload: true,
        with_vector: true,
      })),
    });
    return queries.map((q, i) => {
      const points = responses[i]?.points ?? [];
      return rescore(q, points.map(pointToEntry), opts);
    });
  }

  async touch(ids: string[], at: number): Promise<void> {
    if (ids.length === 0) return;
    await this.init();
    const t = Math.trunc(at);
    // By filter, not by point list: a point list with an unknown id is an error in Qdrant, and an
    // entry may have been evicted since it was returned. `last_used_at < t` keeps LRU monotonic.
    await this.client.setPayload(this.collection, {
      payload: { last_used_at: t },
      filter: { must: [{ has_id: [...new Set(ids)].map(pointId) }, { key: "last_used_at", range: { lt: t } }] },
      wait: true,
    });
  }

  async count(scope?: Partial<CacheScope>): Promise<number> {
    await this.init();
    const must = scopeConditions(scope);
    const res = await this.client.count(this.collection, { exact: true, ...(must.length > 0 ? { filter: { must } } : {}) });
    return res.count;
  }

  async evict(opts: { maxEntries: number; scope?: Partial<CacheScope> }): Promise<number> {
    if (!Number.isInteger(opts.maxEntries) || opts.maxEntries < 0) throw new RangeError("maxEntries must be a non-negative integer");
    let excess = (await this.count(opts.scope)) - opts.maxEntries;
    const must = scopeConditions(opts.scope);
    let deleted = 0;
    while (excess > 0) {
      const page = await this.client.scroll(this.collection, {
        ...(must.length > 0 ? { filter: { must } } : {}),
        limit: Math.min(excess, 1000),
        order_by: { key: "last_used_at", direction: "asc" },
        with_payload: false,
        with_vector: false,
      });
      const ids = page.points.map((p) => p.id);
      if (ids.length === 0) break;
      await this.client.delete(this.collection, { wait: true, points: ids });
      deleted += ids.length;
      excess -= ids.length;
    }
    return deleted;
  }

  async deleteExpired(now: number): Promise<number> {
    return this.deleteByFilter({ must: [{ key: "expires_at", range: { lte: Math.trunc(now) } }] });
  }

  async deleteScope(scope: Partial<CacheScope>): Promise<number> {
    const must = scopeConditions(scope);
    if (must.length === 0) throw new RangeError("deleteScope needs at least one scope field");
    return this.deleteByFilter({ must });
  }

  /** Qdrant's delete answers no count: count first (exact, but not atomic with the delete). */
  private async deleteByFilter(filter: Filter): Promise<number> {
    await this.init();
    const { count } = await this.client.count(this.collection, { filter, exact: true });
    if (count > 0) await this.client.delete(this.collection, { wait: true, filter });
    return count;
  }

  /** The REST client keeps no resources that need closing (idle keep-alive sockets are unref'd). */
  async close(): Promise<void> {
    this.ready = undefined;
  }

  /** Drops the collection (tests, and deliberate resets). */
  async dropCollection(): Promise<void> {
    this.ready = undefined;
    await this.client.deleteCollection(this.collection);
  }
}

function scopeConditions(scope: Partial<CacheScope> | undefined): Condition[] {
  return scopeEntries(scope).map(([f, v]) => ({ key: PAYLOAD_KEY[f], match: { value: v } }));
}

function pointToEntry(p: Schemas["ScoredPoint"]): VectorEntry {
  const pl = (p.payload ?? {}) as unknown as Payload;
  const vector = p.vector;
  if (!Array.isArray(vector) || typeof vector[0] !== "number") throw new Error("Qdrant returned a point without its (unnamed) vector");
  return {
    id: pl.entry_id,
    // Qdrant prints float32 values as shortest decimals: fround restores the stored value.
    vector: (vector as number[]).map(Math.fround),
    scope: {
      tenantId: pl.tenant_id,
      task: pl.task,
      promptVersion: pl.prompt_version,
      schemaVersion: pl.schema_version,
      provider: pl.provider,
      model: pl.model,
      paramsHash: pl.params_hash,
      embedderId: pl.embedder_id,
      namespace: pl.namespace,
    },
    text: pl.text,
    output: pl.output,
    sourceItemId: pl.source_item_id ?? null,
    createdAt: pl.created_at,
    expiresAt: pl.expires_at >= NEVER ? null : pl.expires_at,
  };
}
