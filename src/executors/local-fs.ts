/**
 * Low-level file system helpers for the local executor: errno → typed errors, fsync, streaming
 * into a file while hashing, copy with reflink feature detection, tree walking and copying, and
 * the cross-device move fallback. Nothing here knows about plans or transactions.
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants, createReadStream, type BigIntStats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import {
  AccessDeniedError,
  AlreadyExistsError,
  DirectoryNotEmptyError,
  FilestoreError,
  IsADirectoryError,
  NotADirectoryError,
  NotFoundError,
  PayloadTooLargeError,
  TreeTooLargeError,
} from '../errors';
import { STAGING_DIR, joinPath, resolveInsideRoot } from '../paths';
import type { KnownContent, NodeMeta, WriteSource } from './executor';

/** Chunk size for streamed reads: large enough for throughput, small enough for constant memory. */
const CHUNK_BYTES = 4 * 1024 * 1024;
/** onProgress fires at most once per this many bytes (plus once at the end). */
const PROGRESS_STEP_BYTES = 4 * 1024 * 1024;

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

/** Hex sha256 of a file, streamed in CHUNK_BYTES pieces. */
export async function hashFile(abs: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(abs, { highWaterMark: CHUNK_BYTES })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Options for {@link streamIntoFile} and the copy helpers. */
export interface TransferOptions {
  /** Abort with PayloadTooLargeError once more than this many bytes arrived. */
  maxBytes?: number;
  /** Called with the running byte count (throttled). */
  onProgress?: (bytesDone: number) => void;
  signal?: AbortSignal;
}

/** Bytes and hex sha256 of what a transfer wrote. */
export interface TransferResult {
  bytes: number;
  sha256: string;
}

/** What {@link streamIntoFile} reads from. */
export type ByteSource = { kind: 'file'; path: string } | { kind: 'inline'; data: Buffer } | { kind: 'stream'; stream: Readable };

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? Object.assign(new Error('the operation was aborted'), { name: 'AbortError' });
}

/**
 * Streams `source` into a new file at `destAbs` (truncating any earlier attempt), hashing on the
 * fly so the content is read exactly once, with constant memory (each chunk is awaited onto disk
 * before the next is pulled). The file is fsynced before this resolves. On failure the partial
 * file is removed.
 */
export async function streamIntoFile(source: ByteSource, destAbs: string, opts: TransferOptions = {}): Promise<TransferResult> {
  const { signal, maxBytes, onProgress } = opts;
  signal?.throwIfAborted();
  const hash = createHash('sha256');
  let bytes = 0;
  let nextProgress = PROGRESS_STEP_BYTES;
  let readable: Readable | null = null;
  let inFlight: Promise<void> | null = null;
  const fh = await fs.open(destAbs, 'w', 0o666);
  try {
    let chunks: AsyncIterable<unknown> | Iterable<unknown>;
    if (source.kind === 'inline') {
      chunks = [source.data];
    } else {
      readable = source.kind === 'file' ? createReadStream(source.path, { highWaterMark: CHUNK_BYTES }) : source.stream;
      // A stalled producer must still notice cancellation: the signal destroys the stream.
      if (signal) addAbortSignal(signal, readable);
      chunks = readable;
    }
    for await (const raw of chunks) {
      if (signal?.aborted) throw abortReason(signal);
      const chunk = typeof raw === 'string' ? Buffer.from(raw) : (raw as Uint8Array);
      bytes += chunk.byteLength;
      if (maxBytes !== undefined && bytes > maxBytes) {
        throw new PayloadTooLargeError(`content is larger than the limit of ${maxBytes} bytes`, { maxBytes });
      }
      // Overlap: the write of this chunk runs on libuv's thread pool while this thread hashes it,
      // and the read stream fetches the next one. Serially the three took ~2× as long (1 GiB).
      if (inFlight) await inFlight;
      inFlight = writeFully(fh, chunk);
      hash.update(chunk);
      if (onProgress && bytes >= nextProgress) {
        onProgress(bytes);
        nextProgress = bytes + PROGRESS_STEP_BYTES;
      }
    }
    if (inFlight) await inFlight;
    await fh.sync();
  } catch (err) {
    await inFlight?.catch(() => undefined);
    readable?.destroy();
    await fh.close().catch(() => undefined);
    await fs.rm(destAbs, { force: true }).catch(() => undefined);
    if (signal?.aborted) throw abortReason(signal);
    throw err;
  }
  await fh.close();
  onProgress?.(bytes);
  return { bytes, sha256: hash.digest('hex') };
}

async function writeFully(fh: fs.FileHandle, chunk: Uint8Array): Promise<void> {
  for (let off = 0; off < chunk.byteLength; ) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off);
    off += bytesWritten;
  }
}

/** True when catalogued content still describes the live file (same size and mtime). */
export function knownStillValid(known: KnownContent | undefined, st: BigIntStats): known is KnownContent {
  if (!known) return false;
  // Millisecond ISO strings lose the nanoseconds; whether the writer rounded or truncated, a
  // value less than 1 ms away from the live mtime names the same modification.
  const liveMs = Number(st.mtimeNs / 1000n) / 1000;
  return known.size === Number(st.size) && Math.abs(Date.parse(known.mtime) - liveMs) < 1;
}

/** errnos with which copyFile says "I cannot clone/copy this way", never "the data is bad". */
const CLONE_UNSUPPORTED = new Set(['ENOSYS', 'ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EINVAL']);

/**
 * Copies one file's bytes into `destAbs` (fsynced) and reports its sha256.
 *
 * When `known` still matches the source (size + mtime), the hash is taken from the catalog and
 * the bytes move via `copyFile(…, COPYFILE_FICLONE)`: a reflink where the file system supports
 * it, an in-kernel copy otherwise; no byte passes through this process. Otherwise (or when the
 * kernel refuses) the file is streamed and hashed on the way.
 */
export async function copyFileData(
  srcAbs: string,
  destAbs: string,
  srcStats: BigIntStats,
  known: KnownContent | undefined,
  opts: TransferOptions = {},
): Promise<TransferResult> {
  opts.signal?.throwIfAborted();
  if (knownStillValid(known, srcStats)) {
    try {
      await fs.copyFile(srcAbs, destAbs, fsConstants.COPYFILE_FICLONE);
      await fsyncFile(destAbs);
      opts.onProgress?.(known.size);
      return { bytes: known.size, sha256: known.sha256 };
    } catch (err) {
      if (!CLONE_UNSUPPORTED.has(errnoOf(err) ?? '')) throw err;
    }
  }
  return streamIntoFile({ kind: 'file', path: srcAbs }, destAbs, opts);
}

/** One node of a walked tree; `rel` is '' for the tree root, else '/'-joined. */
export interface TreeEntry {
  rel: string;
  kind: 'file' | 'directory' | 'symlink';
  stats: BigIntStats;
}

/**
 * Lists a tree in pre-order (parents before children), without following symlinks. Throws
 * TreeTooLargeError as soon as more than `maxEntries` entries (the root included) are seen, so
 * a huge tree is refused before anything is copied.
 *
 * @param label - mount-relative name of the root for error messages.
 */
export async function walkTree(rootAbs: string, label: string, maxEntries = Infinity): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const visit = async (abs: string, rel: string): Promise<void> => {
    const stats = await fs.lstat(abs, { bigint: true });
    const kind = stats.isDirectory() ? 'directory' : stats.isSymbolicLink() ? 'symlink' : stats.isFile() ? 'file' : null;
    if (kind === null) throw new AccessDeniedError(`${label}/${rel} is a special file (device, socket or fifo) and cannot be copied`);
    out.push({ rel, kind, stats });
    if (out.length > maxEntries) throw new TreeTooLargeError(label, maxEntries);
    if (kind !== 'directory') return;
    const names = (await fs.readdir(abs)).sort();
    for (const name of names) await visit(path.join(abs, name), rel === '' ? name : `${rel}/${name}`);
  };
  await visit(rootAbs, '');
  return out;
}

function entryAbs(rootAbs: string, rel: string): string {
  return rel === '' ? rootAbs : path.join(rootAbs, ...rel.split('/'));
}

/**
 * Recreates walked `entries` of `srcRoot` under `destRoot` (which must not exist). File bytes go
 * through `copyOne`; modes are kept; directories are made writable while being filled and get
 * their real mode (and, with `keepTimes`, mtime) afterwards, children first. Every file and
 * directory is fsynced.
 */
export async function copyTree(
  srcRoot: string,
  destRoot: string,
  entries: TreeEntry[],
  copyOne: (entry: TreeEntry, srcAbs: string, destAbs: string) => Promise<void>,
  opts: { keepTimes?: boolean; keepOwner?: boolean } = {},
): Promise<void> {
  const dirs: TreeEntry[] = [];
  for (const entry of entries) {
    const from = entryAbs(srcRoot, entry.rel);
    const to = entryAbs(destRoot, entry.rel);
    if (entry.kind === 'directory') {
      await fs.mkdir(to, { mode: 0o700 });
      dirs.push(entry);
    } else if (entry.kind === 'symlink') {
      await fs.symlink(await fs.readlink(from), to);
    } else {
      await copyOne(entry, from, to);
      await fs.chmod(to, Number(entry.stats.mode) & 0o7777);
      if (opts.keepOwner) await chownQuietly(to, entry.stats);
      if (opts.keepTimes) await fs.utimes(to, entry.stats.atime, entry.stats.mtime);
      await fsyncFile(to);
    }
  }
  for (const entry of dirs.reverse()) {
    const to = entryAbs(destRoot, entry.rel);
    await fsyncDir(to);
    await fs.chmod(to, Number(entry.stats.mode) & 0o7777);
    if (opts.keepOwner) await chownQuietly(to, entry.stats);
    if (opts.keepTimes) await fs.utimes(to, entry.stats.atime, entry.stats.mtime);
  }
}

/** chown to the owner in `st`; only root may, so EPERM/EINVAL are expected and ignored. */
export async function chownQuietly(abs: string, st: BigIntStats): Promise<void> {
  try {
    await fs.lchown(abs, Number(st.uid), Number(st.gid));
  } catch (err) {
    if (!['EPERM', 'EINVAL', 'ENOTSUP'].includes(errnoOf(err) ?? '')) throw err;
  }
}

/**
 * Deterministic scratch names {@link moveAcrossDevices} uses: the copy is built at `tmp` (next to
 * the destination, so its final rename is atomic) and the source is renamed to `trash` (next to
 * the source) before it is removed. A crash can leave either behind; callers that know a move
 * happened may delete them.
 */
export function crossDeviceScratch(fromAbs: string, toAbs: string): { tmp: string; trash: string } {
  return {
    tmp: path.join(path.dirname(toAbs), `.${path.basename(toAbs)}.filestore-xdev`),
    trash: path.join(path.dirname(fromAbs), `.${path.basename(fromAbs)}.filestore-moved`),
  };
}

/**
 * Moves a file, symlink or directory tree to another file system, where rename() fails with
 * EXDEV: copy (keeping mode, owner where permitted, and mtimes) into a scratch name next to the
 * destination, fsync, rename into place (replacing a file there), then rename the source aside
 * and remove it. At every instant one complete copy is reachable under its real name: a crash
 * before the destination rename leaves the source intact; after it, the destination is complete.
 *
 * @returns bytes copied.
 */
export async function moveAcrossDevices(fromAbs: string, toAbs: string): Promise<number> {
  const { tmp, trash } = crossDeviceScratch(fromAbs, toAbs);
  await fs.rm(tmp, { recursive: true, force: true });
  const entries = await walkTree(fromAbs, path.basename(fromAbs));
  let bytes = 0;
  await copyTree(
    fromAbs,
    tmp,
    entries,
    async (entry, src, dest) => {
      await fs.copyFile(src, dest);
      bytes += Number(entry.stats.size);
    },
    { keepTimes: true, keepOwner: true },
  );
  await fs.rename(tmp, toAbs);
  await fsyncDir(path.dirname(toAbs));
  await fs.rm(trash, { recursive: true, force: true });
  await fs.rename(fromAbs, trash);
  await fsyncDir(path.dirname(fromAbs));
  await fs.rm(trash, { recursive: true, force: true });
  return bytes;
}

/** rename(), falling back to {@link moveAcrossDevices} when the two paths are on different file systems. */
export async function renameAnywhere(fromAbs: string, toAbs: string): Promise<number> {
  try {
    await fs.rename(fromAbs, toAbs);
    return 0;
  } catch (err) {
    if (errnoOf(err) !== 'EXDEV') throw err;
    return moveAcrossDevices(fromAbs, toAbs);
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
