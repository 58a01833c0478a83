/**
 * Low-level file system helpers for the local executor: errno → typed errors, stat and fsync
 * wrappers, node metadata, directory listing and write-source validation. Streaming, copying,
 * tree walking and the cross-device move build on these in local-transfer.ts. Nothing here knows
 * about plans or transactions.
 */
import type { BigIntStats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  AccessDeniedError,
  AlreadyExistsError,
  DirectoryNotEmptyError,
  FilestoreError,
  IsADirectoryError,
  NotADirectoryError,
  NotFoundError,
  PayloadTooLargeError,
} from '../errors';
import { STAGING_DIR, joinPath, resolveInsideRoot } from '../paths';
import type { NodeMeta, WriteSource } from './executor';


/** The errno code of a Node.js system error, if any. */
export function errnoOf(err: unknown): string | undefined {
  return err && typeof err === 'object' && 'code' in err && typeof (err as NodeJS.ErrnoException).code === 'string'
    ? (err as NodeJS.ErrnoException).code
    : undefined;
}

/**
 * Maps a Node.js file system error to Filestore's typed error; other errors (including already
 * typed ones) pass through unchanged, so transient failures (EIO, ENOSPC, …) stay retryable.
 *
 * @param what - a mount-relative description for the message; never a host path.
 */
export function mapFsError(err: unknown, what: string, details: Record<string, unknown> = {}): unknown {
  if (err instanceof FilestoreError) return err;
  const ctx = { ...details, errno: errnoOf(err) };
  switch (errnoOf(err)) {
    case 'ENOENT':
      return new NotFoundError(what, ctx);
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new AccessDeniedError(what, ctx);
    case 'ENOTDIR':
      return new NotADirectoryError(what, ctx);
    case 'EISDIR':
      return new IsADirectoryError(what, ctx);
    case 'ENOTEMPTY':
      return new DirectoryNotEmptyError(what, ctx);
    case 'EEXIST':
      return new AlreadyExistsError(what, ctx);
    default:
      return err;
  }
}

/** stat() that returns null when nothing is there (or a parent is not a directory). */
export async function statOrNull(abs: string): Promise<BigIntStats | null> {
  try {
    return await fs.stat(abs, { bigint: true });
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return null;
    throw err;
  }
}

/** lstat() that returns null when nothing is there. */
export async function lstatOrNull(abs: string): Promise<BigIntStats | null> {
  try {
    return await fs.lstat(abs, { bigint: true });
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return null;
    throw err;
  }
}

/** True when a directory entry (of any kind, dangling symlinks included) exists at `abs`. */
export async function entryExists(abs: string): Promise<boolean> {
  return (await lstatOrNull(abs)) !== null;
}

/** True when both paths are the same inode (e.g. a hard-link backup of the file it guards). */
export async function sameInode(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([lstatOrNull(a), lstatOrNull(b)]);
  return !!sa && !!sb && sa.dev === sb.dev && sa.ino === sb.ino;
}

/** Flushes a file's data and metadata to disk. */
export async function fsyncFile(abs: string): Promise<void> {
  const fh = await fs.open(abs, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Flushes a directory, making renames / creations / unlinks inside it durable. Some file systems
 * refuse fsync on directories (EINVAL); there it is a no-op, as it is for the kernel.
 */
export async function fsyncDir(abs: string): Promise<void> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(abs, 'r');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return;
    throw err;
  }
  try {
    await fh.sync();
  } catch (err) {
    if (!['EINVAL', 'EBADF', 'EISDIR', 'EPERM', 'ENOTSUP'].includes(errnoOf(err) ?? '')) throw err;
  } finally {
    await fh.close();
  }
}

/**
 * ISO mtime rounded to the millisecond the way Node's plain `fs.stat().mtime` rounds it (bigint
 * stats truncate instead), so the catalog agrees with other components that stat the same file.
 */
export function mtimeIso(st: BigIntStats): string {
  const ms = st.mtimeNs / 1_000_000n + (st.mtimeNs % 1_000_000n >= 500_000n ? 1n : 0n);
  return new Date(Number(ms)).toISOString();
}

/** Metadata of a node from its (bigint) stats; `sha256` only when it was computed while writing. */
export function nodeMetaFromStats(rel: string, st: BigIntStats, sha256: string | null = null): NodeMeta {
  const isDir = st.isDirectory();
  return {
    path: rel,
    kind: isDir ? 'directory' : 'file',
    size: isDir ? 0 : Number(st.size),
    sha256: isDir ? null : sha256,
    mode: Number(st.mode) & 0o7777,
    uid: Number(st.uid),
    gid: Number(st.gid),
    mtime: mtimeIso(st),
    identity: `${st.dev}:${st.ino}`,
    ctime: new Date(Number(st.ctimeNs / 1_000_000n)).toISOString(),
  };
}

/** chown to the owner in `st`; only root may, so EPERM/EINVAL are expected and ignored. */
export async function chownQuietly(abs: string, st: BigIntStats): Promise<void> {
  try {
    await fs.lchown(abs, Number(st.uid), Number(st.gid));
  } catch (err) {
    if (!['EPERM', 'EINVAL', 'ENOTSUP'].includes(errnoOf(err) ?? '')) throw err;
  }
}

/** rmdir that only removes an empty directory; true when it removed one. */
export async function removeDirIfEmpty(abs: string): Promise<boolean> {
  try {
    await fs.rmdir(abs);
    return true;
  } catch (err) {
    if (['ENOENT', 'ENOTEMPTY', 'EEXIST', 'ENOTDIR'].includes(errnoOf(err) ?? '')) return false;
    throw err;
  }
}

/**
 * Metadata of the children of the directory `abs` (mount path `rel`), or of its whole subtree,
 * unsorted. The staging folder is skipped. Symlinks are reported as what they point to when that
 * stays inside the mount, and never descended into (no cycles, no metadata from outside).
 */
export async function listEntries(rootReal: string, abs: string, rel: string, recursive: boolean): Promise<NodeMeta[]> {
  const out: NodeMeta[] = [];
  const walk = async (dirAbs: string, dirRel: string): Promise<void> => {
    for (const d of await fs.readdir(dirAbs, { withFileTypes: true })) {
      const childRel = joinPath(dirRel, d.name);
      if (childRel === STAGING_DIR) continue;
      const childAbs = path.join(dirAbs, d.name);
      if (d.isSymbolicLink()) {
        const inside = await resolveInsideRoot(rootReal, childRel).then(
          () => true,
          () => false,
        );
        const target = inside ? await statOrNull(childAbs) : null;
        if (target) out.push(nodeMetaFromStats(childRel, target));
        continue;
      }
      const st = await lstatOrNull(childAbs);
      if (!st) continue;
      out.push(nodeMetaFromStats(childRel, st));
      if (recursive && st.isDirectory()) await walk(childAbs, childRel);
    }
  };
  await walk(abs, rel);
  return out;
}

/** Validates a write source up front (exists, is a file, within maxBytes), before any plan is written. */
export async function assertSourceUsable(source: WriteSource, maxBytes: number | undefined): Promise<void> {
  let size: number | null = null;
  if (source.kind === 'inline') size = source.data.byteLength;
  if (source.kind === 'file') {
    const st = await statOrNull(source.path);
    if (!st) throw new NotFoundError('source file');
    if (st.isDirectory()) throw new IsADirectoryError('source file');
    size = Number(st.size);
  }
  if (maxBytes !== undefined && size !== null && size > maxBytes) {
    throw new PayloadTooLargeError(`content is ${size} bytes, more than the limit of ${maxBytes}`, { maxBytes, size });
  }
}
