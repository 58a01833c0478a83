CREATE TYPE "public"."drift_kind" AS ENUM('added', 'modified', 'removed');--> statement-breakpoint
CREATE TABLE "drift_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"mount_id" text NOT NULL,
	"path" text NOT NULL,
	"kind" "drift_kind" NOT NULL,
	"observed" jsonb NOT NULL,
	"catalog" jsonb,
	"detected_at" timestamp with time zone DEFAULT now() NOT NULL,
	"job_id" text,
	"resolved_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "drift_events" ADD CONSTRAINT "drift_events_mount_id_backend_mounts_id_fk" FOREIGN KEY ("mount_id") REFERENCES "public"."backend_mounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "drift_events_open_idx" ON "drift_events" USING btree ("mount_id","path") WHERE "drift_events"."resolved_at" IS NULL;--> statement-breakpoint
CREATE INDEX "drift_events_detected_at_idx" ON "drift_events" USING btree ("detected_at");