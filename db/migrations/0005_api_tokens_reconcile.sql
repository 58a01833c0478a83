ALTER TYPE "public"."mutation_op" ADD VALUE 'reconcile';--> statement-breakpoint
CREATE TABLE "api_tokens" (
	"id" text PRIMARY KEY NOT NULL,
	"token_sha256" text NOT NULL,
	"name" text,
	"admin" boolean DEFAULT false NOT NULL,
	"mount_id" text,
	"read_only" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "api_tokens_scope" CHECK ("api_tokens"."admin" OR "api_tokens"."mount_id" IS NOT NULL)
);
--> statement-breakpoint
ALTER TABLE "api_tokens" ADD CONSTRAINT "api_tokens_mount_id_backend_mounts_id_fk" FOREIGN KEY ("mount_id") REFERENCES "public"."backend_mounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "api_tokens_sha256_uq" ON "api_tokens" USING btree ("token_sha256");