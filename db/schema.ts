/**
 * The catalog: what Filestore did, as the source of truth. camelCase keys map to snake_case
 * columns; states are pgEnums; row types come from `$inferSelect`.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  bigserial,
  check,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

export const mountKind = pgEnum('mount_kind', ['local', 's3']);
export const nodeKind = pgEnum('node_kind', ['file', 'directory']);
export const nodeState = pgEnum('node_state', ['ACTIVE', 'INCONSISTENT', 'DELETED']);
export const journalStatus = pgEnum('journal_status', ['PENDING', 'COMMITTED', 'ROLLED_BACK', 'FAILED']);
export const driftKind = pgEnum('drift_kind', ['added', 'modified', 'removed', 'unreadable']);
export const mutationOp = pgEnum('mutation_op', ['write', 'mkdir', 'move', 'copy', 'delete', 'reconcile']);

/** Options of a mount; unknown keys are kept so later features can add their own. */
export interface MountOptions {
  readOnly?: boolean;
  watch?: boolean;
  [key: string]: unknown;
}

export const backendMounts = pgTable(
  'backend_mounts',
  {
    /** Readable slug, e.g. `docs`. */
    id: text('id').primaryKey(),
    kind: mountKind('kind').notNull(),
    /** Local mounts: absolute directory on the host that serves the mount. */
    rootPath: text('root_path'),
    /** S3 mounts (later): bucket, key prefix, endpoint, region. */
    bucket: text('bucket'),
    prefix: text('prefix'),
    endpoint: text('endpoint'),
    region: text('region'),
    options: jsonb('options').$type<MountOptions>().notNull().default({}),
    /**
     * Identity of this mount: `mount add` writes it into a marker file at a local root, and a
     * worker serves the mount only where the marker matches, so an empty mount point (a disk that
     * failed to mount) or another host with the same path never serves it.
     */
    instanceId: uuid('instance_id').notNull().defaultRandom(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check('backend_mounts_id_slug', sql`${t.id} ~ '^[a-z0-9][a-z0-9_-]{0,62}$'`),
    check('backend_mounts_local_root', sql`${t.kind} <> 'local' OR ${t.rootPath} IS NOT NULL`),
    check('backend_mounts_s3_bucket', sql`${t.kind} <> 's3' OR ${t.bucket} IS NOT NULL`),
  ],
);

export const journal = pgTable(
  'journal',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    idempotencyKey: text('idempotency_key').notNull(),
    workflowId: text('workflow_id').notNull(),
    runId: text('run_id'),
    op: mutationOp('op').notNull(),
    mountId: text('mount_id')
      .notNull()
      .references(() => backendMounts.id),
    path: text('path').notNull(),
    targetMountId: text('target_mount_id').references(() => backendMounts.id),
    targetPath: text('target_path'),
    /**
     * Real in-mount locations of path / targetPath (symlinked parents resolved) once the mount's
     * host has resolved them; the lock compares these too, so two spellings of one place conflict.
     */
    realPath: text('real_path'),
    realTargetPath: text('real_target_path'),
    status: journalStatus('status').notNull().default('PENDING'),
    error: jsonb('error').$type<Record<string, unknown>>(),
    request: jsonb('request').$type<Record<string, unknown>>().notNull(),
    result: jsonb('result').$type<Record<string, unknown>>(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    completedAt: timestamp('completed_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('journal_idempotency_key_uq').on(t.idempotencyKey),
    // A PENDING entry is the lock on its path(s): a second pending mutation of the same path cannot exist.
    uniqueIndex('journal_pending_path_uq').on(t.mountId, t.path).where(sql`${t.status} = 'PENDING'`),
    uniqueIndex('journal_pending_target_uq').on(t.targetMountId, t.targetPath).where(sql`${t.status} = 'PENDING'`),
    index('journal_mount_path_idx').on(t.mountId, t.path),
    index('journal_created_at_idx').on(t.createdAt),
    index('journal_status_idx').on(t.status).where(sql`${t.status} = 'PENDING'`),
  ],
);

export const nodes = pgTable(
  'nodes',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    mountId: text('mount_id')
      .notNull()
      .references(() => backendMounts.id),
    path: text('path').notNull(),
    /** Canonical parent path ('' for top-level nodes): direct children are one indexed query. */
    parent: text('parent')
      .notNull()
      .generatedAlwaysAs(sql`CASE WHEN strpos(path, '/') = 0 THEN '' ELSE regexp_replace(path, '/[^/]*$', '') END`),
    kind: nodeKind('kind').notNull(),
    size: bigint('size', { mode: 'number' }).notNull().default(0),
    sha256: text('sha256'),
    etag: text('etag'),
    storageClass: text('storage_class'),
    /** S3: version id of the object this row describes (versioned buckets); null for local mounts. */
    versionId: text('version_id'),
    mode: integer('mode'),
    uid: integer('uid'),
    gid: integer('gid'),
    mtime: timestamp('mtime', { withTimezone: true, mode: 'string' }),
    state: nodeState('state').notNull().default('ACTIVE'),
    version: integer('version').notNull().default(1),
    lastJournalId: uuid('last_journal_id').references(() => journal.id),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    // One row per (mount, path); a deleted path keeps its row in state DELETED and is revived on re-create.
    uniqueIndex('nodes_mount_path_uq').on(t.mountId, t.path),
    index('nodes_mount_path_prefix_idx').on(t.mountId, sql`${t.path} text_pattern_ops`),
    index('nodes_state_idx').on(t.state).where(sql`${t.state} = 'INCONSISTENT'`),
    index('nodes_mount_parent_path_idx').on(t.mountId, t.parent, t.path),
  ],
);

/** Append-only: one row per committed node version. */
export const snapshots = pgTable(
  'snapshots',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    nodeId: bigint('node_id', { mode: 'number' })
      .notNull()
      .references(() => nodes.id),
    journalId: uuid('journal_id')
      .notNull()
      .references(() => journal.id),
    mountId: text('mount_id').notNull(),
    path: text('path').notNull(),
    version: integer('version').notNull(),
    kind: nodeKind('kind').notNull(),
    state: nodeState('state').notNull(),
    size: bigint('size', { mode: 'number' }).notNull().default(0),
    sha256: text('sha256'),
    etag: text('etag'),
    storageClass: text('storage_class'),
    versionId: text('version_id'),
    mode: integer('mode'),
    uid: integer('uid'),
    gid: integer('gid'),
    mtime: timestamp('mtime', { withTimezone: true, mode: 'string' }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('snapshots_node_version_uq').on(t.nodeId, t.version),
    index('snapshots_journal_idx').on(t.journalId),
  ],
);

/** What the drift processor saw on the backend (or null fields when the path is gone). */
export interface ObservedMeta {
  kind: 'file' | 'directory' | null;
  size: number | null;
  mtime: string | null;
  mode: number | null;
  sha256?: string | null;
}

/** One detection of a change made behind Filestore's back. Open until `resolvedAt` is set (reconciliation). */
export const driftEvents = pgTable(
  'drift_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    mountId: text('mount_id')
      .notNull()
      .references(() => backendMounts.id),
    path: text('path').notNull(),
    kind: driftKind('kind').notNull(),
    observed: jsonb('observed').$type<ObservedMeta>().notNull(),
    /** The catalog's view at detection time (null for a path it did not know). */
    catalog: jsonb('catalog').$type<Record<string, unknown>>(),
    detectedAt: timestamp('detected_at', { withTimezone: true }).notNull().defaultNow(),
    jobId: text('job_id'),
    resolvedAt: timestamp('resolved_at', { withTimezone: true }),
  },
  (t) => [
    index('drift_events_open_idx').on(t.mountId, t.path).where(sql`${t.resolvedAt} IS NULL`),
    index('drift_events_detected_at_idx').on(t.detectedAt),
  ],
);

/**
 * The undo plan of a transaction on one mount, keyed by its journal id and the mount: a
 * cross-mount copy or move has one plan per side (the target's write, a move's source delete),
 * both under the one journal id. It lives here, not on the backend, so users who can write a
 * mount cannot forge what undo executes.
 */
export const txPlans = pgTable(
  'tx_plans',
  {
    journalId: uuid('journal_id')
      .notNull()
      .references(() => journal.id),
    mountId: text('mount_id')
      .notNull()
      .references(() => backendMounts.id),
    plan: jsonb('plan').$type<Record<string, unknown>>().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.journalId, t.mountId] })],
);

/**
 * Per-node outcome of a transaction too large for a workflow payload (a tree copy): execute
 * writes it here, verify updates it, commit reads it. Payloads carry only a reference and a count.
 */
export const outcomeNodes = pgTable(
  'outcome_nodes',
  {
    journalId: uuid('journal_id')
      .notNull()
      .references(() => journal.id),
    path: text('path').notNull(),
    meta: jsonb('meta').$type<Record<string, unknown>>().notNull(),
  },
  (t) => [uniqueIndex('outcome_nodes_journal_path_uq').on(t.journalId, t.path)],
);

/**
 * Bearer tokens of the HTTP API. Only the sha256 of a token is stored: the token itself is shown
 * once, at creation. Tokens are 256 random bits, so a fast hash is enough (nothing to brute-force).
 * Scope: `admin`, or one mount, read-only or read-write.
 */
export const apiTokens = pgTable(
  'api_tokens',
  {
    /** Public id (`tok_…`), safe to log and to name in `token revoke`. */
    id: text('id').primaryKey(),
    /** Hex sha256 of the whole token. */
    tokenSha256: text('token_sha256').notNull(),
    name: text('name'),
    admin: boolean('admin').notNull().default(false),
    mountId: text('mount_id').references(() => backendMounts.id),
    readOnly: boolean('read_only').notNull().default(false),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('api_tokens_sha256_uq').on(t.tokenSha256),
    check('api_tokens_scope', sql`${t.admin} OR ${t.mountId} IS NOT NULL`),
  ],
);

export type ApiTokenRow = typeof apiTokens.$inferSelect;
export type DriftEventRow = typeof driftEvents.$inferSelect;
export type MountRow = typeof backendMounts.$inferSelect;
export type NewMountRow = typeof backendMounts.$inferInsert;
export type JournalRow = typeof journal.$inferSelect;
export type NodeRow = typeof nodes.$inferSelect;
export type SnapshotRow = typeof snapshots.$inferSelect;
export type TxPlanRow = typeof txPlans.$inferSelect;
