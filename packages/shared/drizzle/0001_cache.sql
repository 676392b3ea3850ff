CREATE TABLE "cache_audits" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"task" text NOT NULL,
	"item_id" bigint NOT NULL,
	"source_item_id" bigint,
	"score" real NOT NULL,
	"cached_output" jsonb NOT NULL,
	"llm_output" jsonb,
	"agree" boolean,
	"llm_call_id" bigint,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "cache_entries" (
	"key" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"namespace" text DEFAULT 'default' NOT NULL,
	"task" text NOT NULL,
	"model" text NOT NULL,
	"output" jsonb NOT NULL,
	"source_item_id" bigint,
	"hits" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_hit_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "results" ADD COLUMN "saved_usd" numeric(14, 8) DEFAULT '0' NOT NULL;--> statement-breakpoint
CREATE INDEX "cache_audits_task_idx" ON "cache_audits" USING btree ("task","created_at");--> statement-breakpoint
CREATE INDEX "cache_entries_lru_idx" ON "cache_entries" USING btree ("last_hit_at");--> statement-breakpoint
CREATE INDEX "cache_entries_tenant_idx" ON "cache_entries" USING btree ("tenant_id");--> statement-breakpoint
CREATE INDEX "results_tenant_cache_idx" ON "results" USING btree ("tenant_id","cache");