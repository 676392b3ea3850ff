ALTER TABLE "rollup_minute" ADD COLUMN "hits_learned" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "rollup_minute" ADD COLUMN "saved_learned_usd" numeric(18, 8) DEFAULT '0' NOT NULL;
