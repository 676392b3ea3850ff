import { sql } from "drizzle-orm";
import {
  bigint,
  bigserial,
  boolean,
  index,
  integer,
  jsonb,
  numeric,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";

export const tenants = pgTable("tenants", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

/** API keys are stored as sha256 hashes; the clear key is shown once at creation. */
export const apiKeys = pgTable(
  "api_keys",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    keyHash: text("key_hash").notNull(),
    label: text("label"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
    /** Last request authenticated with this key (updated at most once a minute per process). */
    lastUsedAt: timestamp("last_used_at", { withTimezone: true }),
  },
  (t) => [uniqueIndex("api_keys_key_hash_uq").on(t.keyHash)],
);

/** One submission (POST /v1/jobs or /v1/bulk). */
export const jobs = pgTable(
  "jobs",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    task: text("task").notNull(),
    /** Validated task parameters (labels, targetLanguage, ...). */
    params: jsonb("params").notNull(),
    lane: text("lane").notNull().default("realtime"),
    provider: text("provider").notNull(),
    model: text("model").notNull(),
    promptVersion: text("prompt_version").notNull(),
    batchKey: text("batch_key").notNull(),
    /** pending | completed | partial | failed */
    status: text("status").notNull().default("pending"),
    itemCount: integer("item_count").notNull(),
    /** Items with a final result or error; only ever incremented by rows actually inserted. */
    doneCount: integer("done_count").notNull().default(0),
    errorCount: integer("error_count").notNull().default(0),
    /** True once every queue message for this job is in Redis (a sweeper re-enqueues jobs stuck at false). */
    enqueued: boolean("enqueued").notNull().default(false),
    /** Queue messages (parcels) the items were split into; the sweeper checks each still exists. */
    parcelCount: integer("parcel_count").notNull().default(0),
    /** Items answered from a cache at submit time. */
    cachedCount: integer("cached_count").notNull().default(0),
    /** Per-request cache options as given (mode, ttl, namespace). */
    cacheOptions: jsonb("cache_options"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    completedAt: timestamp("completed_at", { withTimezone: true }),
    /** When the caller needs the answers (request `deadline`), if it said. */
    deadlineAt: timestamp("deadline_at", { withTimezone: true }),
  },
  (t) => [
    index("jobs_tenant_created_idx").on(t.tenantId, t.createdAt),
    index("jobs_pending_idx").on(t.status, t.enqueued),
    index("jobs_status_created_idx").on(t.status, t.createdAt),
    index("jobs_created_idx").on(t.createdAt),
  ],
);

/** One item to classify or translate. `externalId` is the caller's id. */
export const items = pgTable(
  "items",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    jobId: text("job_id")
      .notNull()
      .references(() => jobs.id, { onDelete: "cascade" }),
    tenantId: text("tenant_id").notNull(),
    /** Position of the item in the submission (0-based). */
    seq: integer("seq").notNull(),
    externalId: text("external_id").notNull(),
    text: text("text").notNull(),
    /** Exact-cache key (hash of tenant, task, prompt, schema, model, params, normalised text). */
    cacheKey: text("cache_key"),
    /** The lane this item was sent down (cache, local, flex, realtime, batch); null on rows older than the lane router. */
    lane: text("lane"),
    /** Why the lane router chose it (or "requested" when the caller named the lane). */
    laneReason: text("lane_reason"),
    /** The item's route, "provider:model[:flex]" (the job's route unless the lane router split the job). */
    route: text("route"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("items_job_external_uq").on(t.jobId, t.externalId),
    index("items_job_seq_idx").on(t.jobId, t.seq),
  ],
);

/**
 * Exactly one row per item: its answer or its error. The primary key on item_id is what makes a
 * retried or duplicated LLM call unable to produce a second result (INSERT ... ON CONFLICT DO NOTHING).
 */
export const results = pgTable(
  "results",
  {
    itemId: bigint("item_id", { mode: "number" })
      .primaryKey()
      .references(() => items.id, { onDelete: "cascade" }),
    jobId: text("job_id").notNull(),
    tenantId: text("tenant_id").notNull(),
    /** ok | error */
    status: text("status").notNull(),
    output: jsonb("output"),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    llmCallId: bigint("llm_call_id", { mode: "number" }),
    provider: text("provider"),
    model: text("model"),
    /** exact | semantic | coalesced | learned | null (answered by an LLM call) */
    cache: text("cache"),
    /** For cache hits: where the answer came from (item id, similarity score). */
    cacheSource: jsonb("cache_source"),
    /** This item's share of its LLM call's cost. */
    costUsd: numeric("cost_usd", { precision: 14, scale: 8 }).notNull().default("0"),
    /** For cache hits: the estimated cost of the LLM call the hit avoided. */
    savedUsd: numeric("saved_usd", { precision: 14, scale: 8 }).notNull().default("0"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("results_job_idx").on(t.jobId, t.itemId),
    index("results_tenant_cache_idx").on(t.tenantId, t.cache),
    index("results_job_status_idx").on(t.jobId, t.status),
  ],
);

/** Every LLM request Sieve made, whatever its outcome. */
export const llmCalls = pgTable(
  "llm_calls",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    tenantId: text("tenant_id").notNull(),
    provider: text("provider").notNull(),
    model: text("model").notNull(),
    /** realtime | batch */
    lane: text("lane").notNull(),
    batchKey: text("batch_key").notNull(),
    itemCount: integer("item_count").notNull(),
    inputTokens: integer("input_tokens").notNull().default(0),
    outputTokens: integer("output_tokens").notNull().default(0),
    /** Prompt tokens read from the provider's prompt cache. */
    cachedInputTokens: integer("cached_input_tokens").notNull().default(0),
    /** Prompt tokens written to the provider's prompt cache (Anthropic). */
    cacheWriteTokens: integer("cache_write_tokens").notNull().default(0),
    latencyMs: integer("latency_ms").notNull().default(0),
    costUsd: numeric("cost_usd", { precision: 14, scale: 8 }).notNull().default("0"),
    /** ok | partial | invalid_output | rate_limited | server_error | timeout | client_error | sent | interrupted */
    outcome: text("outcome").notNull(),
    /** Items of the call answered validly. */
    validCount: integer("valid_count").notNull().default(0),
    error: text("error"),
    /** Provider batch id for the batch lane. */
    providerBatchId: text("provider_batch_id"),
    /** Provider request id (x-request-id / request-id header, or batch custom_id). */
    requestId: text("request_id"),
    /**
     * sent: recorded before the request left (realtime lane), no answer yet | ok: answered |
     * error: the provider refused or failed | interrupted: cut off (the worker died), its estimate stands.
     */
    state: text("state").notNull().default("ok"),
    /** Prompt tokens estimated before sending (o200k count of the rendered prompt). */
    estInputTokens: integer("est_input_tokens").notNull().default(0),
    /** Cost of the estimated prompt tokens at the price table, in USD. */
    estCostUsd: numeric("est_cost_usd", { precision: 14, scale: 8 }).notNull().default("0"),
    /** When the answer (or failure) was recorded; null while sent. createdAt is when it was sent. */
    completedAt: timestamp("completed_at", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("llm_calls_created_idx").on(t.createdAt),
    index("llm_calls_tenant_idx").on(t.tenantId),
    index("llm_calls_sent_idx").on(t.createdAt).where(sql`${t.state} = 'sent'`),
  ],
);

