CREATE TABLE "quality_checks" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"item_id" bigint NOT NULL,
	"job_id" text NOT NULL,
	"tenant_id" text NOT NULL,
	"batch_key" text NOT NULL,
	"task" text NOT NULL,
	"provider" text NOT NULL,
	"model" text NOT NULL,
	"items_per_call" integer NOT NULL,
	"packed_output" jsonb NOT NULL,
	"single_output" jsonb,
	"agree" boolean,
	"llm_call_id" bigint,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "batch_limits" (
	"batch_key" text PRIMARY KEY NOT NULL,
	"task" text NOT NULL,
	"model" text NOT NULL,
	"max_items" integer NOT NULL,
	"state" jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "cache_audits" ADD COLUMN "kind" text DEFAULT 'semantic' NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "quality_checks_item_uq" ON "quality_checks" USING btree ("item_id");--> statement-breakpoint
CREATE INDEX "quality_checks_job_idx" ON "quality_checks" USING btree ("job_id");--> statement-breakpoint
CREATE INDEX "quality_checks_key_idx" ON "quality_checks" USING btree ("task","model","items_per_call","created_at");--> statement-breakpoint
CREATE INDEX "cache_audits_kind_idx" ON "cache_audits" USING btree ("kind","task","created_at");--> statement-breakpoint
CREATE INDEX "cache_audits_item_idx" ON "cache_audits" USING btree ("item_id");
