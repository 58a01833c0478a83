-- A cross-mount copy or move keeps one undo plan per mount under its one journal id.
ALTER TABLE "tx_plans" DROP CONSTRAINT "tx_plans_pkey";--> statement-breakpoint
ALTER TABLE "tx_plans" ADD CONSTRAINT "tx_plans_journal_id_mount_id_pk" PRIMARY KEY("journal_id","mount_id");
