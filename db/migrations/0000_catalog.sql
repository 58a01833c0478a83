CREATE TYPE "public"."journal_status" AS ENUM('PENDING', 'COMMITTED', 'ROLLED_BACK', 'FAILED');--> statement-breakpoint
CREATE TYPE "public"."mount_kind" AS ENUM('local', 's3');--> statement-breakpoint
CREATE TYPE "public"."mutation_op" AS ENUM('write', 'mkdir', 'move', 'copy', 'delete');--> statement-breakpoint
CREATE TYPE "public"."node_kind" AS ENUM('file', 'directory');--> statement-breakpoint
CREATE TYPE "public"."node_state" AS ENUM('ACTIVE', 'INCONSISTENT', 'DELETED');--> statement-breakpoint
CREATE TABLE "backend_mounts" (
	"id" text PRIMARY KEY NOT NULL,
	"kind" "mount_kind" NOT NULL,
	"root_path" text,
	"bucket" text,
	"prefix" text,
	"endpoint" text,
	"region" text,
	"options" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "backend_mounts_id_slug" CHECK ("backend_mounts"."id" ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
	CONSTRAINT "backend_mounts_local_root" CHECK ("backend_mounts"."kind" <> 'local' OR "backend_mounts"."root_path" IS NOT NULL),
	CONSTRAINT "backend_mounts_s3_bucket" CHECK ("backend_mounts"."kind" <> 's3' OR "backend_mounts"."bucket" IS NOT NULL)
);
--> statement-breakpoint
CREATE TABLE "journal" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"idempotency_key" text NOT NULL,
	"workflow_id" text NOT NULL,
	"run_id" text,
	"op" "mutation_op" NOT NULL,
	"mount_id" text NOT NULL,
	"path" text NOT NULL,
	"target_mount_id" text,
	"target_path" text,
	"status" "journal_status" DEFAULT 'PENDING' NOT NULL,
	"error" jsonb,
	"request" jsonb NOT NULL,
	"result" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "nodes" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"mount_id" text NOT NULL,
	"path" text NOT NULL,
	"kind" "node_kind" NOT NULL,
	"size" bigint DEFAULT 0 NOT NULL,
	"sha256" text,
	"etag" text,
	"storage_class" text,
	"mode" integer,
	"uid" integer,
	"gid" integer,
	"mtime" timestamp with time zone,
	"state" "node_state" DEFAULT 'ACTIVE' NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"last_journal_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "snapshots" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"node_id" bigint NOT NULL,
	"journal_id" uuid NOT NULL,
	"mount_id" text NOT NULL,
	"path" text NOT NULL,
	"version" integer NOT NULL,
	"kind" "node_kind" NOT NULL,
	"state" "node_state" NOT NULL,
	"size" bigint DEFAULT 0 NOT NULL,
	"sha256" text,
	"etag" text,
	"mode" integer,
	"uid" integer,
	"gid" integer,
	"mtime" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "journal" ADD CONSTRAINT "journal_mount_id_backend_mounts_id_fk" FOREIGN KEY ("mount_id") REFERENCES "public"."backend_mounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "journal" ADD CONSTRAINT "journal_target_mount_id_backend_mounts_id_fk" FOREIGN KEY ("target_mount_id") REFERENCES "public"."backend_mounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "nodes" ADD CONSTRAINT "nodes_mount_id_backend_mounts_id_fk" FOREIGN KEY ("mount_id") REFERENCES "public"."backend_mounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "nodes" ADD CONSTRAINT "nodes_last_journal_id_journal_id_fk" FOREIGN KEY ("last_journal_id") REFERENCES "public"."journal"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "snapshots" ADD CONSTRAINT "snapshots_node_id_nodes_id_fk" FOREIGN KEY ("node_id") REFERENCES "public"."nodes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "snapshots" ADD CONSTRAINT "snapshots_journal_id_journal_id_fk" FOREIGN KEY ("journal_id") REFERENCES "public"."journal"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "journal_idempotency_key_uq" ON "journal" USING btree ("idempotency_key");--> statement-breakpoint
CREATE UNIQUE INDEX "journal_pending_path_uq" ON "journal" USING btree ("mount_id","path") WHERE "journal"."status" = 'PENDING';--> statement-breakpoint
CREATE UNIQUE INDEX "journal_pending_target_uq" ON "journal" USING btree ("target_mount_id","target_path") WHERE "journal"."status" = 'PENDING';--> statement-breakpoint
CREATE INDEX "journal_mount_path_idx" ON "journal" USING btree ("mount_id","path");--> statement-breakpoint
CREATE INDEX "journal_created_at_idx" ON "journal" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "journal_status_idx" ON "journal" USING btree ("status") WHERE "journal"."status" = 'PENDING';--> statement-breakpoint
CREATE UNIQUE INDEX "nodes_mount_path_uq" ON "nodes" USING btree ("mount_id","path");--> statement-breakpoint
CREATE INDEX "nodes_mount_path_prefix_idx" ON "nodes" USING btree ("mount_id","path" text_pattern_ops);--> statement-breakpoint
CREATE INDEX "nodes_state_idx" ON "nodes" USING btree ("state") WHERE "nodes"."state" = 'INCONSISTENT';--> statement-breakpoint
CREATE UNIQUE INDEX "snapshots_node_version_uq" ON "snapshots" USING btree ("node_id","version");--> statement-breakpoint
CREATE INDEX "snapshots_journal_idx" ON "snapshots" USING btree ("journal_id");