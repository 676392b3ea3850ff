import { index, jsonb, pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";
import { jobs } from "./core.js";

/**
 * `Idempotency-Key` of POST /v1/jobs and POST /v1/bulk, per tenant (README, "Idempotency-Key").
 * The row is written in the transaction that creates the job, so a key names at most one job; the
 * primary key makes two concurrent requests with one key create exactly one job.
 */
export const idempotencyKeys = pgTable(
  "idempotency_keys",
  {
    tenantId: text("tenant_id").notNull(),
    key: text("key").notNull(),
    /** jobs | bulk */
    route: text("route").notNull(),
    /** SHA-256 of the request (canonical JSON body; bulk: every body byte). Null while a bulk upload is still arriving. */
    requestHash: text("request_hash"),
    jobId: text("job_id")
      .notNull()
      .references(() => jobs.id, { onDelete: "cascade" }),
    /** Bulk: the first answer's body, replayed as it was. */
    response: jsonb("response"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.key] }), index("idempotency_keys_created_idx").on(t.createdAt), index("idempotency_keys_job_idx").on(t.jobId)],
);
