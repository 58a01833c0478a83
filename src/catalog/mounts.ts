/** backend_mounts: adding, reading and changing mounts. Mounts are configuration, not file mutations. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { and, asc, eq, sql } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { backendMounts, type MountOptions, type MountRow } from '../../db/schema';
import { InvalidRequestError, MountExistsError, UnknownMountError } from '../errors';
import type { MountSpec, S3Location } from '../executors/executor';
import { readMountMarker, writeMountMarker } from './mount-marker';
import { s3LocationsOverlap, s3UrlOf, validateS3Location, type S3LocationInput } from './s3-location';

export const MOUNT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export interface AddLocalMount {
  id: string;
  rootPath: string;
  readOnly?: boolean;
  watch?: boolean;
  /**
   * Let mutations keep or set setuid, setgid and sticky bits (an explicit `mode` with them, a
   * copied or overwritten file that had them). Off, Filestore never creates such files — a root
   * worker would otherwise hand out setuid-root binaries. @defaultValue false
   */
  allowSpecialModes?: boolean;
  /** Create the root directory if it is missing. @defaultValue false */
  createRoot?: boolean;
}

/**
 * An S3 mount: a bucket (and key prefix) on AWS or an S3-compatible server. bucket, prefix,
 * endpoint and region go in their columns, the write settings in `options`. No credentials:
 * workers take them from the AWS provider chain (environment, shared config — `profile` names a
 * profile there —, container or instance role).
 */
export interface AddS3Mount extends S3LocationInput {
  id: string;
  readOnly?: boolean;
  /** Scan the mount periodically for changes made behind Filestore (drift by listing). */
  watch?: boolean;
  /**
   * Checked after validation and before anything is written — the CLI passes `probeS3Mount`
   * (HeadBucket) so a typo'd bucket or bad credentials fail `mount add` with nothing registered.
   */
  probe?: (spec: MountSpec) => Promise<void>;
}

/** What an S3 mount keeps in `backend_mounts.options` (beside readOnly / watch). */
export interface S3MountOptions {
  pathStyle?: boolean;
  profile?: string;
  storageClass?: string;
  acl?: string;
  sse?: 'AES256' | 'aws:kms';
  kmsKeyId?: string;
}

// One S3 mount registration at a time: the overlap check and the insert must see each other.
const S3_MOUNTS_LOCK = sql`SELECT pg_advisory_xact_lock(hashtextextended('filestore:s3-mounts', 0))`;

export function assertMountId(id: unknown): string {
  if (typeof id !== 'string' || !MOUNT_ID_PATTERN.test(id)) {
    throw new InvalidRequestError(`mount id ${JSON.stringify(id)} must match ${MOUNT_ID_PATTERN} (lower-case slug)`);
  }
  return id;
}

/**
 * Registers a local mount after checking its root is an existing directory on this host, then
 * writes the mount's identity marker into the root (see mount-marker.ts): workers serve the mount
 * only where that marker is. If the marker cannot be written the registration is undone.
 *
 * @throws InvalidRequestError when the root already carries the marker of another registered mount.
 */
export async function addLocalMount(db: Db, input: AddLocalMount): Promise<MountRow> {
  assertMountId(input.id);
  if (!path.isAbsolute(input.rootPath)) throw new InvalidRequestError(`mount root must be an absolute path, got ${JSON.stringify(input.rootPath)}`);
  if (input.createRoot) await fs.mkdir(input.rootPath, { recursive: true });
  const st = await fs.stat(input.rootPath).catch(() => null);
  if (!st?.isDirectory()) throw new InvalidRequestError(`mount root ${input.rootPath} is not an existing directory`);
  const rootPath = await fs.realpath(input.rootPath);
  await assertRootNotClaimed(db, rootPath, input.id);
  const options: MountOptions = { readOnly: input.readOnly ?? false, watch: input.watch ?? false, allowSpecialModes: input.allowSpecialModes ?? false };
  const rows = await db
    .insert(backendMounts)
    .values({ id: input.id, kind: 'local', rootPath, options })
    .onConflictDoNothing()
    .returning();
  if (rows.length === 0) throw new MountExistsError(input.id);
  try {
    await writeMountMarker(rootPath, { mountId: rows[0].id, instanceId: rows[0].instanceId });
  } catch (err) {
    // No marker → no worker would ever serve the mount: do not leave a row that looks usable.
    await db.delete(backendMounts).where(and(eq(backendMounts.id, rows[0].id), eq(backendMounts.instanceId, rows[0].instanceId)));
    throw new InvalidRequestError(`cannot write the mount identity marker into ${rootPath}: ${(err as Error).message}`, { mountId: input.id });
  }
  await notifyMountsChanged(db);
  return rows[0];
}

/**
 * Registers an S3 mount after validating its location and settings (bucket naming rules,
 * canonical prefix, storage class, canned ACL, SSE / KMS key) and, when given, running `probe`.
 *
 * @throws InvalidRequestError for a bad value or a location that overlaps another S3 mount (same
 *   bucket on the same server, one prefix inside the other: one object would be two mounts'
 *   nodes); MountExistsError; whatever `probe` throws (BUCKET_NOT_FOUND, INVALID_CREDENTIALS, …).
 */
export async function addS3Mount(db: Db, input: AddS3Mount): Promise<MountRow> {
  assertMountId(input.id);
  const loc = validateS3Location(input);
  const options: MountOptions & S3MountOptions = { readOnly: input.readOnly ?? false, watch: input.watch ?? false };
  // Absent keeps the client's default (path style for a custom endpoint, virtual-hosted for AWS).
  if (loc.pathStyle !== undefined) options.pathStyle = loc.pathStyle;
  if (loc.profile) options.profile = loc.profile;
  if (loc.storageClass) options.storageClass = loc.storageClass;
  if (loc.acl) options.acl = loc.acl;
  if (loc.sse) options.sse = loc.sse;
  if (loc.kmsKeyId) options.kmsKeyId = loc.kmsKeyId;
  const values = { id: input.id, kind: 's3' as const, bucket: loc.bucket, prefix: loc.prefix, endpoint: loc.endpoint, region: loc.region, options };
  // Refusals that need no network first: a probe should not be the reason a duplicate id fails late.
  if ((await db.select({ id: backendMounts.id }).from(backendMounts).where(eq(backendMounts.id, input.id))).length > 0) throw new MountExistsError(input.id);
  await assertNoS3Overlap(db, input.id, loc);
  if (input.probe) await input.probe({ id: input.id, kind: 's3', rootPath: null, s3: loc, readOnly: options.readOnly ?? false });
  const row = await db.transaction(async (tx) => {
    await tx.execute(S3_MOUNTS_LOCK);
    await assertNoS3Overlap(tx, input.id, loc);
    const rows = await tx.insert(backendMounts).values(values).onConflictDoNothing().returning();
    if (rows.length === 0) throw new MountExistsError(input.id);
    return rows[0];
  });
  await notifyMountsChanged(db);
  return row;
}

async function assertNoS3Overlap(db: Pick<Db, 'select'>, id: string, loc: S3Location): Promise<void> {
  const others = await db
    .select({ id: backendMounts.id, bucket: backendMounts.bucket, prefix: backendMounts.prefix, endpoint: backendMounts.endpoint })
    .from(backendMounts)
    .where(and(eq(backendMounts.kind, 's3'), eq(backendMounts.bucket, loc.bucket)));
  for (const o of others) {
    const other = { bucket: o.bucket!, prefix: o.prefix ?? '', endpoint: o.endpoint };
    if (!s3LocationsOverlap(loc, other)) continue;
    throw new InvalidRequestError(
      `${s3UrlOf(loc)} overlaps mount ${JSON.stringify(o.id)} (${s3UrlOf(other)}${o.endpoint ? ` at ${o.endpoint}` : ''}); one object cannot belong to two mounts`,
      { mountId: id, overlaps: o.id },
    );
  }
}

/**
 * (Re)writes the identity marker of an existing local mount into its root — for a mount
 * registered before markers existed, or a disk restored from elsewhere. Run it only on the host
 * whose disk IS the mount: the marker is what tells workers that this directory is that mount.
 *
 * @throws UnknownMountError, InvalidRequestError (not local, root missing, or the root carries
 *   another registered mount's marker).
 */
export async function markLocalMount(db: Db, id: string): Promise<MountRow> {
  const row = await getMount(db, id);
  if (row.kind !== 'local' || !row.rootPath) throw new InvalidRequestError(`mount ${JSON.stringify(id)} is not a local mount; only local mounts carry a marker`);
  const st = await fs.stat(row.rootPath).catch(() => null);
  if (!st?.isDirectory()) throw new InvalidRequestError(`mount root ${row.rootPath} is not an existing directory on this host`);
  await assertRootNotClaimed(db, row.rootPath, id);
  await writeMountMarker(row.rootPath, { mountId: row.id, instanceId: row.instanceId });
  // Workers re-check markers on every refresh; tell them now.
  await notifyMountsChanged(db);
  return row;
}

/** Refuses a root whose marker names another mount that is still registered with that identity. */
async function assertRootNotClaimed(db: Db, rootPath: string, id: string): Promise<void> {
  const marker = await readMountMarker(rootPath).catch((err: Error) => {
    throw new InvalidRequestError(`mount root ${rootPath}: ${err.message}; remove it if it is stale`);
  });
  if (!marker || marker.mountId === id) return;
  const owner = await db
    .select({ id: backendMounts.id })
    .from(backendMounts)
    .where(and(eq(backendMounts.id, marker.mountId), eq(backendMounts.instanceId, marker.instanceId)));
  if (owner.length > 0) {
    throw new InvalidRequestError(`${rootPath} is already the root of mount ${JSON.stringify(marker.mountId)} (its identity marker is there); one directory cannot be two mounts`, {
      mountId: id,
      claimedBy: marker.mountId,
    });
  }
}

/** Merges options into a mount (e.g. readOnly, watch, allowSpecialModes). */
export async function setMountOptions(db: Db, id: string, patch: Partial<MountOptions>): Promise<MountRow> {
  const rows = await db
    .update(backendMounts)
    .set({ options: sql`${backendMounts.options} || ${JSON.stringify(patch)}::jsonb`, updatedAt: new Date() })
    .where(eq(backendMounts.id, id))
    .returning();
  if (rows.length === 0) throw new UnknownMountError(id);
  await notifyMountsChanged(db);
  return rows[0];
}

export async function getMount(db: Db, id: string): Promise<MountRow> {
  const rows = await db.select().from(backendMounts).where(eq(backendMounts.id, id));
  if (rows.length === 0) throw new UnknownMountError(id);
  return rows[0];
}

export async function listMounts(db: Db): Promise<MountRow[]> {
  return db.select().from(backendMounts).orderBy(asc(backendMounts.id));
}

/** Ids of the S3 mounts (every worker serves them: their activities run on the general queue). */
export async function s3MountIds(db: Db): Promise<Set<string>> {
  return new Set((await db.select({ id: backendMounts.id }).from(backendMounts).where(eq(backendMounts.kind, 's3'))).map((r) => r.id));
}

export function mountSpecOf(row: MountRow): MountSpec {
  const spec: MountSpec = { id: row.id, kind: row.kind, rootPath: row.rootPath, readOnly: !!row.options.readOnly };
  if (row.kind === 's3') spec.s3 = s3LocationOf(row);
  return spec;
}

/** The S3 location of an S3 mount's row (columns + options). */
export function s3LocationOf(row: MountRow): S3Location {
  const o = row.options as MountOptions & S3MountOptions;
  return {
    bucket: row.bucket ?? '',
    prefix: row.prefix ?? '',
    endpoint: row.endpoint,
    region: row.region,
    pathStyle: typeof o.pathStyle === 'boolean' ? o.pathStyle : undefined,
    profile: o.profile ?? null,
    storageClass: o.storageClass ?? null,
    acl: o.acl ?? null,
    sse: o.sse ?? null,
    kmsKeyId: o.kmsKeyId ?? null,
  };
}

/** Channel workers LISTEN on to pick up mount changes at once (they also poll as a fallback). */
export const MOUNTS_CHANNEL = 'filestore_mounts';

async function notifyMountsChanged(db: Db): Promise<void> {
  await db.execute(sql`SELECT pg_notify(${MOUNTS_CHANNEL}, '')`);
}
