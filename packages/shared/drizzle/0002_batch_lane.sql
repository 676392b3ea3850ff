CREATE TABLE "batch_items" (
	"item_id" bigint PRIMARY KEY NOT NULL,
	"job_id" text NOT NULL,
	"tenant_id" text NOT NULL,
	"batch_key" text NOT NULL,
	"provider" text NOT NULL,
	"model" text NOT NULL,
	"state" text DEFAULT 'waiting' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"request_id" bigint,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "batch_requests" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"batch_id" bigint NOT NULL,
	"custom_id" text NOT NULL,
	"seq" integer NOT NULL,
	"item_ids" bigint[] NOT NULL,
	"est_input_tokens" integer NOT NULL,
	"outcome" text,
	"settled_at" timestamp with time zone,
	"llm_call_id" bigint
);
--> statement-breakpoint
CREATE TABLE "provider_batches" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"provider" text NOT NULL,
	"model" text NOT NULL,
	"batch_key" text NOT NULL,
	"params" jsonb NOT NULL,
	"tenant_id" text NOT NULL,
	"tenant_ids" text[] NOT NULL,
	"state" text DEFAULT 'preparing' NOT NULL,
	"provider_status" text,
	"provider_batch_id" text,
	"input_file_id" text,
	"output_file_id" text,
	"error_file_id" text,
	"request_count" integer NOT NULL,
	"item_count" integer NOT NULL,
	"est_input_tokens" bigint NOT NULL,
	"input_bytes" bigint DEFAULT 0 NOT NULL,
	"provider_counts" jsonb,
	"settled_requests" integer DEFAULT 0 NOT NULL,
	"ok_items" integer DEFAULT 0 NOT NULL,
	"retried_items" integer DEFAULT 0 NOT NULL,
	"errored_items" integer DEFAULT 0 NOT NULL,
	"input_tokens" bigint DEFAULT 0 NOT NULL,
	"output_tokens" bigint DEFAULT 0 NOT NULL,
	"cost_usd" numeric(14, 8) DEFAULT '0' NOT NULL,
	"cancel_requested" boolean DEFAULT false NOT NULL,
	"last_error" text,
	"lease_until" timestamp with time zone,
	"lease_owner" text,
	"submitting_at" timestamp with time zone,
	"submitted_at" timestamp with time zone,
	"ended_at" timestamp with time zone,
	"settled_at" timestamp with time zone,
	"last_polled_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "batch_items" ADD CONSTRAINT "batch_items_item_id_items_id_fk" FOREIGN KEY ("item_id") REFERENCES "public"."items"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "batch_items" ADD CONSTRAINT "batch_items_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "batch_requests" ADD CONSTRAINT "batch_requests_batch_id_provider_batches_id_fk" FOREIGN KEY ("batch_id") REFERENCES "public"."provider_batches"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "batch_items_waiting_idx" ON "batch_items" USING btree ("provider","batch_key","attempts","item_id") WHERE "batch_items"."state" = 'waiting';--> statement-breakpoint
CREATE INDEX "batch_items_request_idx" ON "batch_items" USING btree ("request_id");--> statement-breakpoint
CREATE INDEX "batch_items_job_idx" ON "batch_items" USING btree ("job_id");--> statement-breakpoint
CREATE UNIQUE INDEX "batch_requests_custom_id_uq" ON "batch_requests" USING btree ("custom_id");--> statement-breakpoint
CREATE UNIQUE INDEX "batch_requests_batch_seq_uq" ON "batch_requests" USING btree ("batch_id","seq");--> statement-breakpoint
CREATE UNIQUE INDEX "provider_batches_provider_id_uq" ON "provider_batches" USING btree ("provider","provider_batch_id");--> statement-breakpoint
CREATE INDEX "provider_batches_state_idx" ON "provider_batches" USING btree ("state","provider");--> statement-breakpoint
CREATE INDEX "provider_batches_created_idx" ON "provider_batches" USING btree ("created_at");