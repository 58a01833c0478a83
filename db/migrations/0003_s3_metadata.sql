ALTER TABLE "nodes" ADD COLUMN "version_id" text;--> statement-breakpoint
ALTER TABLE "snapshots" ADD COLUMN "storage_class" text;--> statement-breakpoint
ALTER TABLE "snapshots" ADD COLUMN "version_id" text;