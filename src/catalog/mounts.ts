/** backend_mounts: adding, reading and changing mounts. Mounts are configuration, not file mutations. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { asc, eq, sql } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { backendMounts, type MountOptions, type MountRow } from '../../db/schema';
import { InvalidRequestError, MountExistsError, UnknownMountError } from '../errors';
import type { MountSpec } from '../executors/executor';

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

export function assertMountId(id: unknown): string {
  if (typeof id !== 'string' || !MOUNT_ID_PATTERN.test(id)) {
    throw new InvalidRequestError(`mount id ${JSON.stringify(id)} must match ${MOUNT_ID_PATTERN} (lower-case slug)`);
  }
  return id;
}

/** Registers a local mount after checking its root is an existing directory on this host. */
export async function addLocalMount(db: Db, input: AddLocalMount): Promise<MountRow> {
  assertMountId(input.id);
  if (!path.isAbsolute(input.rootPath)) throw new InvalidRequestError(`mount root must be an absolute path, got ${JSON.stringify(input.rootPath)}`);
  if (input.createRoot) await fs.mkdir(input.rootPath, { recursive: true });
  const st = await fs.stat(input.rootPath).catch(() => null);
  if (!st?.isDirectory()) throw new InvalidRequestError(`mount root ${input.rootPath} is not an existing directory`);
  const rootPath = await fs.realpath(input.rootPath);
  const options: MountOptions = { readOnly: input.readOnly ?? false, watch: input.watch ?? false, allowSpecialModes: input.allowSpecialModes ?? false };
  const rows = await db
    .insert(backendMounts)
    .values({ id: input.id, kind: 'local', rootPath, options })
    .onConflictDoNothing()
    .returning();
  if (rows.length === 0) throw new MountExistsError(input.id);
  await notifyMountsChanged(db);
  return rows[0];
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

export function mountSpecOf(row: MountRow): MountSpec {
  return { id: row.id, kind: row.kind, rootPath: row.rootPath, readOnly: !!row.options.readOnly };
}

/** Channel workers LISTEN on to pick up mount changes at once (they also poll as a fallback). */
export const MOUNTS_CHANNEL = 'filestore_mounts';

async function notifyMountsChanged(db: Db): Promise<void> {
  await db.execute(sql`SELECT pg_notify(${MOUNTS_CHANNEL}, '')`);
}
