ALTER TYPE "public"."drift_kind" ADD VALUE 'unreadable';--> statement-breakpoint
CREATE TABLE "outcome_nodes" (
	"journal_id" uuid NOT NULL,
	"path" text NOT NULL,
	"meta" jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "tx_plans" (
	"journal_id" uuid PRIMARY KEY NOT NULL,
	"mount_id" text NOT NULL,
	"plan" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "backend_mounts" ADD COLUMN "instance_id" uuid DEFAULT gen_random_uuid() NOT NULL;--> statement-breakpoint
ALTER TABLE "journal" ADD COLUMN "real_path" text;--> statement-breakpoint
ALTER TABLE "journal" ADD COLUMN "real_target_path" text;--> statement-breakpoint
ALTER TABLE "nodes" ADD COLUMN "parent" text GENERATED ALWAYS AS (CASE WHEN strpos(path, '/') = 0 THEN '' ELSE regexp_replace(path, '/[^/]*$', '') END) STORED NOT NULL;--> statement-breakpoint
ALTER TABLE "outcome_nodes" ADD CONSTRAINT "outcome_nodes_journal_id_journal_id_fk" FOREIGN KEY ("journal_id") REFERENCES "public"."journal"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tx_plans" ADD CONSTRAINT "tx_plans_journal_id_journal_id_fk" FOREIGN KEY ("journal_id") REFERENCES "public"."journal"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tx_plans" ADD CONSTRAINT "tx_plans_mount_id_backend_mounts_id_fk" FOREIGN KEY ("mount_id") REFERENCES "public"."backend_mounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "outcome_nodes_journal_path_uq" ON "outcome_nodes" USING btree ("journal_id","path");--> statement-breakpoint
CREATE INDEX "nodes_mount_parent_path_idx" ON "nodes" USING btree ("mount_id","parent","path");