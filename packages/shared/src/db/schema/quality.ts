/**
 * Answer quality (docs/quality.md).
 * - `quality_checks`: items answered in a multi-item call and asked again alone (the re-check):
 *   the agreement per task x model x items-per-call, and per job.
 * - `batch_limits`: the maxItems the controller set for a batch key, with its state.
 */
import { bigint, bigserial, boolean, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";

export const qualityChecks = pgTable(
  "quality_checks",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    itemId: bigint("item_id", { mode: "number" }).notNull(),
    jobId: text("job_id").notNull(),
    tenantId: text("tenant_id").notNull(),
    batchKey: text("batch_key").notNull(),
    task: text("task").notNull(),
    provider: text("provider").notNull(),
    model: text("model").notNull(),
    /** Items in the packed call that gave the answer being checked. */
    itemsPerCall: integer("items_per_call").notNull(),
    packedOutput: jsonb("packed_output").notNull(),
    /** The answer of the single-item call; null when it gave no valid answer. */
    singleOutput: jsonb("single_output"),
    /** null when the single-item call gave no valid answer (inconclusive). */
    agree: boolean("agree"),
    llmCallId: bigint("llm_call_id", { mode: "number" }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    // One re-check per item: a retried queue job cannot count twice.
    uniqueIndex("quality_checks_item_uq").on(t.itemId),
    index("quality_checks_job_idx").on(t.jobId),
    index("quality_checks_key_idx").on(t.task, t.model, t.itemsPerCall, t.createdAt),
  ],
);

export const batchLimits = pgTable("batch_limits", {
  batchKey: text("batch_key").primaryKey(),
  task: text("task").notNull(),
  model: text("model").notNull(),
  /** The limit in force (never above the task's configured maxItems). */
  maxItems: integer("max_items").notNull(),
  /** The controller's state (apps/workers/src/quality/controller.ts ControllerState). */
  state: jsonb("state").notNull(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});
