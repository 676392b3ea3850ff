CREATE TABLE "rollup_minute" (
	"minute" timestamp with time zone NOT NULL,
	"tenant_id" text NOT NULL,
	"provider" text NOT NULL,
	"model" text NOT NULL,
	"lane" text NOT NULL,
	"items_ok" integer DEFAULT 0 NOT NULL,
	"items_failed" integer DEFAULT 0 NOT NULL,
	"hits_exact" integer DEFAULT 0 NOT NULL,
	"hits_semantic" integer DEFAULT 0 NOT NULL,
	"hits_coalesced" integer DEFAULT 0 NOT NULL,
	"saved_exact_usd" numeric(18, 8) DEFAULT '0' NOT NULL,
	"saved_semantic_usd" numeric(18, 8) DEFAULT '0' NOT NULL,
	"saved_coalesced_usd" numeric(18, 8) DEFAULT '0' NOT NULL,
	"calls" integer DEFAULT 0 NOT NULL,
	"calls_failed" integer DEFAULT 0 NOT NULL,
	"items_sent" integer DEFAULT 0 NOT NULL,
	"input_tokens" bigint DEFAULT 0 NOT NULL,
	"output_tokens" bigint DEFAULT 0 NOT NULL,
	"cached_input_tokens" bigint DEFAULT 0 NOT NULL,
	"cost_usd" numeric(18, 8) DEFAULT '0' NOT NULL,
	"packing_tokens" bigint DEFAULT 0 NOT NULL,
	"latency_ms_sum" bigint DEFAULT 0 NOT NULL,
	"lat_buckets" integer[] DEFAULT '{0,0,0,0,0,0,0,0,0,0,0,0}' NOT NULL,
	CONSTRAINT "rollup_minute_pk" PRIMARY KEY("minute","tenant_id","provider","model","lane")
);
--> statement-breakpoint
CREATE INDEX "rollup_minute_tenant_idx" ON "rollup_minute" USING btree ("tenant_id","minute");
--> statement-breakpoint
CREATE TABLE "rollup_errors" (
	"minute" timestamp with time zone NOT NULL,
	"tenant_id" text NOT NULL,
	"provider" text NOT NULL,
	"model" text NOT NULL,
	"lane" text NOT NULL,
	"code" text NOT NULL,
	"n" integer DEFAULT 0 NOT NULL,
	CONSTRAINT "rollup_errors_pk" PRIMARY KEY("minute","tenant_id","provider","model","lane","code")
);
--> statement-breakpoint
CREATE TABLE "provider_batch_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"batch_id" bigint NOT NULL,
	"state" text NOT NULL,
	"provider_status" text,
	"cancel_requested" boolean DEFAULT false NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "provider_batch_events_batch_idx" ON "provider_batch_events" USING btree ("batch_id","id");
--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "last_used_at" timestamp with time zone;
--> statement-breakpoint
CREATE INDEX "results_job_status_idx" ON "results" USING btree ("job_id","status");
--> statement-breakpoint
CREATE INDEX "jobs_status_created_idx" ON "jobs" USING btree ("status","created_at");
--> statement-breakpoint
CREATE INDEX "jobs_created_idx" ON "jobs" USING btree ("created_at");
--> statement-breakpoint
CREATE FUNCTION "sieve_provider_batch_event"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state OR NEW.provider_status IS DISTINCT FROM OLD.provider_status OR NEW.cancel_requested IS DISTINCT FROM OLD.cancel_requested THEN
		INSERT INTO provider_batch_events (batch_id, state, provider_status, cancel_requested) VALUES (NEW.id, NEW.state, NEW.provider_status, NEW.cancel_requested);
	END IF;
	RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER "provider_batch_events_trg" AFTER INSERT OR UPDATE ON "provider_batches" FOR EACH ROW EXECUTE FUNCTION "sieve_provider_batch_event"();
--> statement-breakpoint
INSERT INTO "rollup_minute" ("minute", "tenant_id", "provider", "model", "lane", "items_ok", "items_failed", "hits_exact", "hits_semantic", "hits_coalesced", "saved_exact_usd", "saved_semantic_usd", "saved_coalesced_usd")
SELECT date_trunc('minute', r.created_at), r.tenant_id, coalesce(r.provider, '-'), coalesce(r.model, '-'), coalesce(j.lane, 'realtime'),
	count(*) FILTER (WHERE r.status = 'ok'), count(*) FILTER (WHERE r.status <> 'ok'),
	count(*) FILTER (WHERE r.cache = 'exact'), count(*) FILTER (WHERE r.cache = 'semantic'), count(*) FILTER (WHERE r.cache = 'coalesced'),
	coalesce(sum(r.saved_usd) FILTER (WHERE r.cache = 'exact'), 0), coalesce(sum(r.saved_usd) FILTER (WHERE r.cache = 'semantic'), 0), coalesce(sum(r.saved_usd) FILTER (WHERE r.cache = 'coalesced'), 0)
FROM "results" r LEFT JOIN "jobs" j ON j.id = r.job_id
GROUP BY 1, 2, 3, 4, 5;
--> statement-breakpoint
INSERT INTO "rollup_minute" ("minute", "tenant_id", "provider", "model", "lane", "calls", "calls_failed", "items_sent", "input_tokens", "output_tokens", "cached_input_tokens", "cost_usd", "latency_ms_sum", "lat_buckets")
SELECT date_trunc('minute', created_at), tenant_id, provider, model, lane, count(*), count(*) FILTER (WHERE outcome NOT IN ('ok', 'partial')), sum(item_count),
	sum(input_tokens), sum(output_tokens), sum(cached_input_tokens), sum(cost_usd), sum(latency_ms),
	ARRAY[count(*) FILTER (WHERE latency_ms <= 100), count(*) FILTER (WHERE latency_ms > 100 AND latency_ms <= 250), count(*) FILTER (WHERE latency_ms > 250 AND latency_ms <= 500),
		count(*) FILTER (WHERE latency_ms > 500 AND latency_ms <= 1000), count(*) FILTER (WHERE latency_ms > 1000 AND latency_ms <= 2500), count(*) FILTER (WHERE latency_ms > 2500 AND latency_ms <= 5000),
		count(*) FILTER (WHERE latency_ms > 5000 AND latency_ms <= 10000), count(*) FILTER (WHERE latency_ms > 10000 AND latency_ms <= 30000), count(*) FILTER (WHERE latency_ms > 30000 AND latency_ms <= 60000),
		count(*) FILTER (WHERE latency_ms > 60000 AND latency_ms <= 300000), count(*) FILTER (WHERE latency_ms > 300000 AND latency_ms <= 3600000), count(*) FILTER (WHERE latency_ms > 3600000)]::int[]
FROM "llm_calls"
GROUP BY 1, 2, 3, 4, 5
ON CONFLICT ("minute", "tenant_id", "provider", "model", "lane") DO UPDATE SET "calls" = excluded."calls", "calls_failed" = excluded."calls_failed",
	"items_sent" = excluded."items_sent", "input_tokens" = excluded."input_tokens", "output_tokens" = excluded."output_tokens",
	"cached_input_tokens" = excluded."cached_input_tokens", "cost_usd" = excluded."cost_usd", "latency_ms_sum" = excluded."latency_ms_sum", "lat_buckets" = excluded."lat_buckets";
--> statement-breakpoint
INSERT INTO "rollup_errors" ("minute", "tenant_id", "provider", "model", "lane", "code", "n")
SELECT date_trunc('minute', r.created_at), r.tenant_id, coalesce(r.provider, '-'), coalesce(r.model, '-'), coalesce(j.lane, 'realtime'), coalesce(r.error_code, 'unknown'), count(*)
FROM "results" r LEFT JOIN "jobs" j ON j.id = r.job_id
WHERE r.status <> 'ok'
GROUP BY 1, 2, 3, 4, 5, 6;
