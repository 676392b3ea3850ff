CREATE TABLE "idempotency_keys" (
	"tenant_id" text NOT NULL,
	"key" text NOT NULL,
	"route" text NOT NULL,
	"request_hash" text,
	"job_id" text NOT NULL,
	"response" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "idempotency_keys_tenant_id_key_pk" PRIMARY KEY("tenant_id","key")
);
--> statement-breakpoint
ALTER TABLE "idempotency_keys" ADD CONSTRAINT "idempotency_keys_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "idempotency_keys_created_idx" ON "idempotency_keys" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "idempotency_keys_job_idx" ON "idempotency_keys" USING btree ("job_id");
--> statement-breakpoint
ALTER TABLE "llm_calls" ADD COLUMN "state" text DEFAULT 'ok' NOT NULL;--> statement-breakpoint
ALTER TABLE "llm_calls" ADD COLUMN "est_input_tokens" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "llm_calls" ADD COLUMN "est_cost_usd" numeric(14, 8) DEFAULT '0' NOT NULL;--> statement-breakpoint
ALTER TABLE "llm_calls" ADD COLUMN "completed_at" timestamp with time zone;--> statement-breakpoint
UPDATE "llm_calls" SET "state" = 'error' WHERE "outcome" IN ('rate_limited', 'server_error', 'timeout', 'client_error');--> statement-breakpoint
CREATE INDEX "llm_calls_sent_idx" ON "llm_calls" USING btree ("created_at") WHERE "llm_calls"."state" = 'sent';
