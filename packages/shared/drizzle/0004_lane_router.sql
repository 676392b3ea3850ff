ALTER TABLE "jobs" ADD COLUMN "deadline_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "items" ADD COLUMN "lane" text;--> statement-breakpoint
ALTER TABLE "items" ADD COLUMN "lane_reason" text;--> statement-breakpoint
ALTER TABLE "items" ADD COLUMN "route" text;
