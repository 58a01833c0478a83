/**
 * Low-level file system helpers for the local executor: errno → typed errors, stat and fsync
 * wrappers, node metadata, directory listing and write-source validation. Streaming, copying,
 * tree walking and the cross-device move build on these in local-transfer.ts. Nothing here knows
 * about plans or transactions.
 */
import type { BigIntStats, Dir, Dirent } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  AccessDeniedError,
  AlreadyExistsError,
  BackendFaultError,
  BackendIoError,
  BackendLimitError,
  CrossDeviceError,
  DirectoryNotEmptyError,
  FilestoreError,
  InternalError,
  InvalidPathError,
  InvalidRequestError,
  IsADirectoryError,
  NotADirectoryError,
  NotFoundError,
  PayloadTooLargeError,
  UnsupportedError,
} from '../../errors';
import { STAGING_DIR, isMountMarkerName, joinPath, resolveInsideRoot } from '../../paths';
import type { NodeMeta, WriteSource } from '../executor';
import { isFilestoreScratchName } from './scratch-names';
import { openWriteSource } from './local-source';


/** The errno code of a Node.js system error, if any. */
export function errnoOf(err: unknown): string | undefined {
  return err && typeof err === 'object' && 'code' in err && typeof (err as NodeJS.ErrnoException).code === 'string'
    ? (err as NodeJS.ErrnoException).code
    : undefined;
}

type ErrorDetails = Record<string, unknown>;
/** Builds the typed error for one errno; `what` is mount-relative, `errno` names the cause for the message. */
type FsErrorFactory = (what: string, errno: string, details: ErrorDetails) => FilestoreError;

function errnoGroup(codes: string[], make: FsErrorFactory): Array<[string, FsErrorFactory]> {
  return codes.map((code) => [code, make]);
}

/**
 * Every errno that can reach an executor, and the typed error it becomes — ONE table, so a new
 * errno is classified in one place. Permanent classes are non-retryable (NON_RETRYABLE in
 * errors.ts): retrying them only holds the path's lock while the same call fails again. Only the
 * BackendIoError group is retried. Anything not listed stays a raw error, which the activity
 * wrapper retries a bounded number of times (FILESTORE_MAX_UNKNOWN_ERROR_ATTEMPTS).
 */
const FS_ERROR_TABLE: ReadonlyMap<string, FsErrorFactory> = new Map([
  // The path names nothing, something of the wrong kind, or something that is already there:
  // the request must change (or the caller must pass overwrite / recursive), not the timing.
  ...errnoGroup(['ENOENT'], (w, _e, d) => new NotFoundError(w, d)),
  ...errnoGroup(['EEXIST'], (w, _e, d) => new AlreadyExistsError(w, d)),
  ...errnoGroup(['ENOTDIR'], (w, _e, d) => new NotADirectoryError(w, d)),
  ...errnoGroup(['EISDIR'], (w, _e, d) => new IsADirectoryError(w, d)),
  ...errnoGroup(['ENOTEMPTY'], (w, _e, d) => new DirectoryNotEmptyError(w, d)),
  // Permissions and read-only file systems do not change by themselves; an operator must act.
  ...errnoGroup(['EACCES', 'EPERM', 'EROFS'], (w, _e, d) => new AccessDeniedError(w, d)),
  // The path cannot exist on this file system as spelled: too long once joined to the root,
  // a symlink loop, or a name the file system's encoding refuses.
  ...errnoGroup(['ENAMETOOLONG', 'ELOOP', 'EILSEQ'], (w, e, d) => new InvalidPathError(`${w} cannot be used on this file system (${e})`, d)),
  // The kernel refuses the request itself, e.g. renaming a directory into its own subtree
  // reached through an alias. Same request, same answer.
  ...errnoGroup(['EINVAL'], (w, e, d) => new InvalidRequestError(`${w}: the file system refused the request as invalid (${e})`, d)),
  // A nested file system inside the mount: rename() cannot cross it. Whatever the executor does
  // not handle itself (moveAcrossHeld, local-xdev.ts) is permanent — the target stays on the other device.
  ...errnoGroup(['EXDEV'], (w, _e, d) => new CrossDeviceError(w, d)),
  // Hard limits of the file system that a retry cannot lift: links per inode / entries per
  // directory, largest file, values that do not fit.
  ...errnoGroup(['EMLINK', 'EFBIG', 'EOVERFLOW', 'E2BIG', 'ERANGE', 'ERR_FS_FILE_TOO_LARGE'], (w, e, d) =>
    new BackendLimitError(`${w}: a limit of the file system was reached (${e})`, d),
  ),
  // The file system (or the node: a device, FIFO or socket) does not offer this operation.
  ...errnoGroup(['ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'ENOTTY', 'ENXIO', 'ENODEV', 'ESPIPE', 'ENOTBLK'], (w, e, d) =>
    new UnsupportedError(`${w}: the file system does not support this operation (${e})`, d),
  ),
  // The file system is damaged; only a repair (fsck) helps, and retrying would just hold the lock.
  ...errnoGroup(['EUCLEAN', 'EBADMSG', 'ENOTRECOVERABLE'], (w, e, d) => new BackendFaultError(`${w}: the file system reports damage (${e}); it needs repair`, d)),
  // A descriptor Filestore itself mismanaged: a bug, which the same code would hit again.
  ...errnoGroup(['EBADF', 'EFAULT'], (w, e, d) => new InternalError(`${w}: internal error (${e})`, d)),
  // Transient: space or quota that can be freed, descriptors or memory that can come back, a
  // busy or locked node, an interrupted call, and the connection / stale-handle failures of
  // network file systems (NFS, SMB). Retried with backoff until they clear.
  ...errnoGroup(
    [
      'EIO',
      'ENOSPC',
      'EDQUOT',
      'EAGAIN',
      'EWOULDBLOCK',
      'EBUSY',
      'ETXTBSY',
      'EMFILE',
      'ENFILE',
      'ENOMEM',
      'ENOBUFS',
      'EINTR',
      'ECANCELED',
      'EDEADLK',
      'ENOLCK',
      'ETIMEDOUT',
      'ESTALE',
      'EREMOTEIO',
      'ENOMEDIUM',
      'ENOLINK',
      'ECOMM',
      'EPROTO',
      'EPIPE',
      'ECONNRESET',
      'ECONNREFUSED',
      'ECONNABORTED',
      'ENOTCONN',
      'ENETDOWN',
      'ENETUNREACH',
      'ENETRESET',
      'EHOSTDOWN',
      'EHOSTUNREACH',
    ],
    (w, e, d) => new BackendIoError(`${w}: transient file system error (${e}); retrying`, d),
  ),
]);

/** True when `errno` is a transient condition (the BackendIoError group of the table): worth retrying without bound. */
export function isTransientErrno(errno: string | undefined): boolean {
  if (!errno) return false;
  const make = FS_ERROR_TABLE.get(errno);
  return !!make && make('', errno, {}).retryable;
}

/**
 * Maps a Node.js file system error to Filestore's typed error by {@link FS_ERROR_TABLE}; typed
 * errors pass through unchanged, and so does anything without a known errno (cancellation's
 * AbortError, a bug's TypeError): the activity wrapper bounds the retries of those.
 *
 * @param what - a mount-relative description for the message; never a host path (Node's own
 *   messages carry one, so they are never reused).
 */
export function mapFsError(err: unknown, what: string, details: ErrorDetails = {}): unknown {
  if (err instanceof FilestoreError) return err;
  const errno = errnoOf(err);
  const make = errno === undefined ? undefined : FS_ERROR_TABLE.get(errno);
  if (!make) return err;
  const syscall = (err as NodeJS.ErrnoException).syscall;
  return make(what, errno!, { ...details, errno, ...(syscall ? { syscall } : {}) });
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

/** Options of {@link iterateEntries}. */
/**
 * What a symlink inside a mount is listed as: its target's metadata under the link's own path when
 * the target resolves inside the mount, null when it leads out (never followed) or is dangling. Any
 * other resolution failure (EACCES, ELOOP, …) is thrown for the caller to type. Shared by every
 * listing and by the drift scan's sorted walk, so all of them draw the mount's edge in one place.
 */
export async function linkTargetMeta(rootReal: string, childAbs: string, childRel: string): Promise<NodeMeta | null> {
  const resolved = await resolveInsideRoot(rootReal, childRel).then(
    () => null,
    (err: unknown) => err,
  );
  // A link that leads out of the mount is not part of it: skipped, never followed.
  if (resolved && (resolved as { code?: string }).code === 'SYMLINK_ESCAPE') return null;
  if (resolved) throw resolved;
  const target = await statOrNull(childAbs);
  return target ? nodeMetaFromStats(childRel, target) : null;
}

export interface ListEntriesOptions {
  /**
   * Receives each entry below the listed directory that cannot be read (a subdirectory whose
   * contents are refused, an entry whose metadata cannot be had, a symlink that cannot be
   * resolved) with its typed error, and the walk goes on without it. Without this, such an entry
   * fails the whole listing. The listed directory itself failing always throws.
   */
  onUnreadable?: (path: string, err: unknown) => void;
  /** Entries the kernel is asked for per read of a directory (fs.opendir's bufferSize). @defaultValue 32 */
  batchSize?: number;
}

/**
 * Depth down to which a recursive walk keeps each directory open while it descends, so entries
 * stream out in one pass. Deeper, a directory's subdirectories are noted and visited once it is
 * closed: open descriptors stay bounded on a pathologically deep tree, at the cost of holding
 * those names (never their metadata) in memory.
 */
const MAX_OPEN_DEPTH = 32;

/**
 * Metadata of the children of the directory `abs` (mount path `rel`), or of its whole subtree,
 * yielded as directories are read (fs.opendir), so memory stays bounded by one read buffer per
 * open directory whatever the size of the tree. Order is the file system's within a directory,
 * a directory's subtree right after its entry (depth first); callers sort if they need to.
 *
 * The staging folder, the mount identity marker and the cross-device move's scratch names are
 * skipped: they are Filestore's own, not the user's. Symlinks are reported as what they point to
 * when that stays inside the mount, and never descended into (no cycles, no metadata from
 * outside).
 */
export async function* iterateEntries(rootReal: string, abs: string, rel: string, recursive: boolean, opts: ListEntriesOptions = {}): AsyncGenerator<NodeMeta> {
  const { onUnreadable } = opts;
  const bufferSize = opts.batchSize ?? 32;
  /** An entry that cannot be read: reported and skipped when the caller asked for that, else fatal. */
  const unreadable = (childRel: string, err: unknown): void => {
    const typed = mapFsError(err, JSON.stringify(childRel));
    if (!onUnreadable) throw typed;
    onUnreadable(childRel, typed);
  };

  /** Metadata of one entry (null: skip it), following a symlink only to a target inside the mount. */
  const entryMeta = async (childAbs: string, childRel: string, direntIsLink: boolean): Promise<{ meta: NodeMeta; descend: boolean } | null> => {
    let isLink = direntIsLink;
    try {
      if (!isLink) {
        const st = await lstatOrNull(childAbs);
        if (!st) return null;
        // A file system without d_type reports every entry as unknown: lstat tells.
        if (!st.isSymbolicLink()) return { meta: nodeMetaFromStats(childRel, st), descend: st.isDirectory() };
        isLink = true;
      }
      const meta = await linkTargetMeta(rootReal, childAbs, childRel);
      return meta ? { meta, descend: false } : null;
    } catch (err) {
      // Listing for a user: a symlink that cannot be resolved is skipped as it always was.
      if (!onUnreadable && isLink) return null;
      unreadable(childRel, err);
      return null;
    }
  };

  async function* walk(dirAbs: string, dirRel: string, depth: number): AsyncGenerator<NodeMeta> {
    let dir: Dir;
    try {
      dir = await fs.opendir(dirAbs, { bufferSize });
    } catch (err) {
      if (depth === 0) throw err;
      // Gone since its parent was read: nothing to list, and its absence is what the caller sees.
      if (errnoOf(err) === 'ENOENT') return;
      return unreadable(dirRel, err);
    }
    const later: Array<[string, string]> = [];
    try {
      for (;;) {
        let d: Dirent | null;
        try {
          d = await dir.read();
        } catch (err) {
          // Reading the directory failed part-way (EIO; removed under us on some file systems).
          if (depth === 0) throw err;
          if (errnoOf(err) !== 'ENOENT') unreadable(dirRel, err);
          return;
        }
        if (d === null) break;
        const childRel = joinPath(dirRel, d.name);
        // Filestore's own entries: the staging folder and identity marker at the root, move scratch anywhere.
        if (childRel === STAGING_DIR || (dirRel === '' && isMountMarkerName(d.name)) || isFilestoreScratchName(d.name)) continue;
        const childAbs = path.join(dirAbs, d.name);
        const found = await entryMeta(childAbs, childRel, d.isSymbolicLink());
        if (!found) continue;
        yield found.meta;
        if (!recursive || !found.descend) continue;
        if (depth < MAX_OPEN_DEPTH) yield* walk(childAbs, childRel, depth + 1);
        else later.push([childAbs, childRel]);
      }
    } finally {
      // Also when the consumer stops early (its loop breaks): the generator returns through here.
      await dir.close().catch(() => undefined);
    }
    for (const [childAbs, childRel] of later) yield* walk(childAbs, childRel, depth + 1);
  }

  yield* walk(abs, rel, 0);
}

/**
 * Validates a write source up front (allowed, a regular file, within maxBytes), before any plan is
 * written, so a refused source is an immediate typed error with nothing on the mount touched. A
 * file source is opened and closed here under the same rules the streaming later applies again
 * (see local-source.ts); absent or empty `sourceRoots` refuses every file source.
 */
export async function assertSourceUsable(source: WriteSource, opts: { maxBytes?: number; sourceRoots?: readonly string[] }): Promise<void> {
  const { maxBytes } = opts;
  if (source.kind === 'file') {
    const opened = await openWriteSource(source.path, { roots: opts.sourceRoots ?? [], maxBytes });
    await opened.close();
    return;
  }
  if (source.kind === 'inline' && maxBytes !== undefined && source.data.byteLength > maxBytes) {
    const size = source.data.byteLength;
    throw new PayloadTooLargeError(`content is ${size} bytes, more than the limit of ${maxBytes}`, { maxBytes, size });
  }
}
