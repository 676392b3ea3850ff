/**
 * The operator console's rollups (docs/console.md). Figures on /admin come from these tables,
 * written in the same transaction as the results and LLM calls they count, never from scanning
 * `items` or `results` on page load.
 *
 * - `rollup_minute`: one row per minute x tenant x provider x model x lane.
 * - `rollup_errors`: failed items per minute x tenant x provider x model x lane x error code.
 * - `provider_batch_events`: every state / provider status change of a provider batch, written by
 *   a trigger on `provider_batches` (the batch lane's code does not know about it).
 */
import { sql } from "drizzle-orm";
import { bigint, bigserial, boolean, index, integer, numeric, pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";

/** Upper bounds (ms) of the latency buckets in `rollup_minute.lat_buckets`; the last bucket is open. */
export const LATENCY_BUCKETS_MS = [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 3_600_000] as const;

export const rollupMinute = pgTable(
  "rollup_minute",
  {
    minute: timestamp("minute", { withTimezone: true }).notNull(),
    tenantId: text("tenant_id").notNull(),
    provider: text("provider").notNull(),
    model: text("model").notNull(),
    /** realtime | batch | audit | any lane an LLM call row names */
    lane: text("lane").notNull(),
    /** Results inserted with status ok (cache hits included). */
    itemsOk: integer("items_ok").notNull().default(0),
    itemsFailed: integer("items_failed").notNull().default(0),
    hitsExact: integer("hits_exact").notNull().default(0),
    hitsSemantic: integer("hits_semantic").notNull().default(0),
    hitsCoalesced: integer("hits_coalesced").notNull().default(0),
    savedExactUsd: numeric("saved_exact_usd", { precision: 18, scale: 8 }).notNull().default("0"),
    savedSemanticUsd: numeric("saved_semantic_usd", { precision: 18, scale: 8 }).notNull().default("0"),
    savedCoalescedUsd: numeric("saved_coalesced_usd", { precision: 18, scale: 8 }).notNull().default("0"),
    /** Items the learned classification cache answered (docs/quality.md), and what they saved. */
    hitsLearned: integer("hits_learned").notNull().default(0),
    savedLearnedUsd: numeric("saved_learned_usd", { precision: 18, scale: 8 }).notNull().default("0"),
    /** LLM calls (llm_calls rows), whatever their outcome. */
    calls: integer("calls").notNull().default(0),
    /** Calls whose outcome was not ok / partial. */
    callsFailed: integer("calls_failed").notNull().default(0),
    /** Sum of llm_calls.item_count. */
    itemsSent: integer("items_sent").notNull().default(0),
    inputTokens: bigint("input_tokens", { mode: "number" }).notNull().default(0),
    outputTokens: bigint("output_tokens", { mode: "number" }).notNull().default(0),
    cachedInputTokens: bigint("cached_input_tokens", { mode: "number" }).notNull().default(0),
    costUsd: numeric("cost_usd", { precision: 18, scale: 8 }).notNull().default("0"),
    /** Prompt-prefix tokens that multi-item packing did not send again: (items - 1) x system-prompt tokens per call. */
    packingTokens: bigint("packing_tokens", { mode: "number" }).notNull().default(0),
    latencyMsSum: bigint("latency_ms_sum", { mode: "number" }).notNull().default(0),
    /** Calls per latency bucket (LATENCY_BUCKETS_MS, then one open bucket). */
    latBuckets: integer("lat_buckets").array().notNull().default(sql`'{0,0,0,0,0,0,0,0,0,0,0,0}'`),
  },
  (t) => [
    primaryKey({ name: "rollup_minute_pk", columns: [t.minute, t.tenantId, t.provider, t.model, t.lane] }),
    index("rollup_minute_tenant_idx").on(t.tenantId, t.minute),
  ],
);

export const rollupErrors = pgTable(
  "rollup_errors",
  {
    minute: timestamp("minute", { withTimezone: true }).notNull(),
    tenantId: text("tenant_id").notNull(),
    provider: text("provider").notNull(),
    model: text("model").notNull(),
    lane: text("lane").notNull(),
    code: text("code").notNull(),
    n: integer("n").notNull().default(0),
  },
  (t) => [primaryKey({ name: "rollup_errors_pk", columns: [t.minute, t.tenantId, t.provider, t.model, t.lane, t.code] })],
);

export const providerBatchEvents = pgTable(
  "provider_batch_events",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    batchId: bigint("batch_id", { mode: "number" }).notNull(),
    state: text("state").notNull(),
    providerStatus: text("provider_status"),
    cancelRequested: boolean("cancel_requested").notNull().default(false),
    at: timestamp("at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("provider_batch_events_batch_idx").on(t.batchId, t.id)],
);
