/**
 * The provider Batch API lane. Everything the lane knows lives here, so that a restart
 * at any moment resumes from Postgres alone:
 *
 * - `batch_items`: items of batch-lane jobs waiting to be packed (state "waiting"), or packed
 *   into a provider request (state "packed"). A row is deleted once its item has a result. Items
 *   wait HERE, not as Redis jobs: Redis memory does not grow with waiting items.
 * - `provider_batches`: one provider batch (= one uploaded JSONL file for OpenAI), from
 *   "preparing" (recorded before anything is sent) to "settled".
 * - `batch_requests`: one line of that file: a multi-item request with its `custom_id` and the
 *   item ids it carries, in prompt order. `settled_at` is set in the same transaction that writes
 *   the request's llm_calls row and results, guarded by `WHERE settled_at IS NULL`: that is what
 *   records the cost of a request exactly once, however often the poller reads the output.
 */
import { sql } from "drizzle-orm";
import { bigint, bigserial, boolean, index, integer, jsonb, numeric, pgTable, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import { items, jobs } from "./core.js";

/** Lifecycle of a provider batch as Sieve sees it (the provider's own status is `providerStatus`). */
export const BATCH_STATES = [
  /** Row, requests and item claims committed; nothing sent yet. Rebuilt from the database after a crash. */
  "preparing",
  /** OpenAI: input file uploaded (`inputFileId`), the batch may or may not exist yet. */
  "uploaded",
  /** batches.create is in flight: on restart, look the batch up at the provider before creating it again. */
  "submitting",
  /** The provider has it (`providerBatchId`): the poller follows it. */
  "submitted",
  /** The provider says it ended (completed / expired / cancelled / failed): results are being settled. */
  "ended",
  /** Every request settled: results written, failed items put back or errored. Terminal. */
  "settled",
  /** Never reached the provider (cancelled before submit, or rejected at create); its items were released. Terminal. */
  "abandoned",
] as const;
export type BatchState = (typeof BATCH_STATES)[number];

export const batchItems = pgTable(
  "batch_items",
  {
    itemId: bigint("item_id", { mode: "number" })
      .primaryKey()
      .references(() => items.id, { onDelete: "cascade" }),
    jobId: text("job_id")
      .notNull()
      .references(() => jobs.id, { onDelete: "cascade" }),
    tenantId: text("tenant_id").notNull(),
    batchKey: text("batch_key").notNull(),
    provider: text("provider").notNull(),
    model: text("model").notNull(),
    /** waiting | packed */
    state: text("state").notNull().default("waiting"),
    /** Provider batches this item has been sent in (each counts as one attempt). */
    attempts: integer("attempts").notNull().default(0),
    /** The request carrying it while packed. */
    requestId: bigint("request_id", { mode: "number" }),
    /** Why the last attempt did not give it a result (for the final error after the last attempt). */
    lastError: text("last_error"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("batch_items_waiting_idx").on(t.provider, t.batchKey, t.attempts, t.itemId).where(sql`${t.state} = 'waiting'`),
    index("batch_items_request_idx").on(t.requestId),
    index("batch_items_job_idx").on(t.jobId),
  ],
);

export const providerBatches = pgTable(
  "provider_batches",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    provider: text("provider").notNull(),
    model: text("model").notNull(),
    batchKey: text("batch_key").notNull(),
    /** Task parameters of the batch key (validation of the answers needs them after every job is gone). */
    params: jsonb("params").notNull(),
    /** The one tenant whose items it holds, or "*" when SIEVE_MIX_TENANTS let tenants share it. */
    tenantId: text("tenant_id").notNull(),
    /** Every tenant with items in it (tenant scoping of GET /v1/batches). */
    tenantIds: text("tenant_ids").array().notNull(),
    /** See BATCH_STATES. */
    state: text("state").notNull().default("preparing"),
    /** The provider's status string (validating, in_progress, ..., ended), as last polled. */
    providerStatus: text("provider_status"),
    providerBatchId: text("provider_batch_id"),
    inputFileId: text("input_file_id"),
    outputFileId: text("output_file_id"),
    errorFileId: text("error_file_id"),
    requestCount: integer("request_count").notNull(),
    itemCount: integer("item_count").notNull(),
    /** Estimated prompt tokens (countTokens of every rendered request): admission's enqueued-token count. */
    estInputTokens: bigint("est_input_tokens", { mode: "number" }).notNull(),
    /** Bytes of the JSONL input. */
    inputBytes: bigint("input_bytes", { mode: "number" }).notNull().default(0),
    /** Provider request counts as last polled ({ total, completed, failed, ... } as the provider names them). */
    providerCounts: jsonb("provider_counts"),
    /** Filled while settling: requests settled, by outcome, items ok / retried / errored, tokens, cost. */
    settledRequests: integer("settled_requests").notNull().default(0),
    okItems: integer("ok_items").notNull().default(0),
    retriedItems: integer("retried_items").notNull().default(0),
    erroredItems: integer("errored_items").notNull().default(0),
    inputTokens: bigint("input_tokens", { mode: "number" }).notNull().default(0),
    outputTokens: bigint("output_tokens", { mode: "number" }).notNull().default(0),
    costUsd: numeric("cost_usd", { precision: 14, scale: 8 }).notNull().default("0"),
    cancelRequested: boolean("cancel_requested").notNull().default(false),
    /** Last submit/poll error (kept for operators; the lane retries). */
    lastError: text("last_error"),
    /** Exclusive lease of one process over this row (submitting or settling it). */
    leaseUntil: timestamp("lease_until", { withTimezone: true }),
    leaseOwner: text("lease_owner"),
    submittingAt: timestamp("submitting_at", { withTimezone: true }),
    submittedAt: timestamp("submitted_at", { withTimezone: true }),
    endedAt: timestamp("ended_at", { withTimezone: true }),
    settledAt: timestamp("settled_at", { withTimezone: true }),
    lastPolledAt: timestamp("last_polled_at", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("provider_batches_provider_id_uq").on(t.provider, t.providerBatchId),
    index("provider_batches_state_idx").on(t.state, t.provider),
    index("provider_batches_created_idx").on(t.createdAt),
  ],
);

export const batchRequests = pgTable(
  "batch_requests",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    batchId: bigint("batch_id", { mode: "number" })
      .notNull()
      .references(() => providerBatches.id, { onDelete: "cascade" }),
    /** `sv{batchId}-{seq}`: at most 64 characters of [a-zA-Z0-9_-] (Anthropic's rule, stricter than OpenAI's). */
    customId: text("custom_id").notNull(),
    /** Position in the file (0-based). */
    seq: integer("seq").notNull(),
    /** Items in prompt order: item k is asked as call-local id `i{k+1}`. */
    itemIds: bigint("item_ids", { mode: "number" }).array().notNull(),
    estInputTokens: integer("est_input_tokens").notNull(),
    /** ok | partial | invalid_output | errored | expired | cancelled | missing | malformed */
    outcome: text("outcome"),
    /** Set exactly once, in the transaction that records the request's llm_calls row and results. */
    settledAt: timestamp("settled_at", { withTimezone: true }),
    llmCallId: bigint("llm_call_id", { mode: "number" }),
  },
  (t) => [uniqueIndex("batch_requests_custom_id_uq").on(t.customId), uniqueIndex("batch_requests_batch_seq_uq").on(t.batchId, t.seq)],
);
