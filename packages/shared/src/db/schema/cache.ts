import { bigint, boolean, index, integer, jsonb, pgTable, real, text, timestamp, bigserial } from "drizzle-orm/pg-core";

/**
 * The exact cache's durable copy (Redis holds the hot copy with a TTL). The key is a hash of
 * tenant, namespace, task, prompt version, schema version, provider, model, params and the
 * normalised text, so a hit can never cross any of them.
 */
export const cacheEntries = pgTable(
  "cache_entries",
  {
    key: text("key").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    namespace: text("namespace").notNull().default("default"),
    task: text("task").notNull(),
    model: text("model").notNull(),
    output: jsonb("output").notNull(),
    /** Item whose LLM answer this is. */
    sourceItemId: bigint("source_item_id", { mode: "number" }),
    hits: integer("hits").notNull().default(0),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    lastHitAt: timestamp("last_hit_at", { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp("expires_at", { withTimezone: true }),
  },
  (t) => [index("cache_entries_lru_idx").on(t.lastHitAt), index("cache_entries_tenant_idx").on(t.tenantId)],
);

/** Semantic hits (and learned-cache answers, kind "learned") re-checked by the LLM: the live false-hit rate per task. */
export const cacheAudits = pgTable(
  "cache_audits",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    tenantId: text("tenant_id").notNull(),
    task: text("task").notNull(),
    itemId: bigint("item_id", { mode: "number" }).notNull(),
    sourceItemId: bigint("source_item_id", { mode: "number" }),
    score: real("score").notNull(),
    cachedOutput: jsonb("cached_output").notNull(),
    llmOutput: jsonb("llm_output"),
    /** null when the LLM gave no valid answer (then the audit is inconclusive). */
    agree: boolean("agree"),
    llmCallId: bigint("llm_call_id", { mode: "number" }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    /** semantic | learned (docs/quality.md); `score` holds the learned cache's confidence. */
    kind: text("kind").notNull().default("semantic"),
  },
  (t) => [index("cache_audits_task_idx").on(t.task, t.createdAt), index("cache_audits_kind_idx").on(t.kind, t.task, t.createdAt), index("cache_audits_item_idx").on(t.itemId)],
);
