/**
 * Moving bytes for the local executor: streaming into a file while hashing, copy with reflink
 * feature detection, tree walking and copying, and the scratch names of the cross-device move
 * (the move itself is local-xdev.ts, through held directories). Builds on the errno / fsync
 * helpers of local-fs.ts. Nothing here knows about plans or transactions.
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants, type BigIntStats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import { AccessDeniedError, PayloadTooLargeError, TreeTooLargeError } from '../../errors';
import type { KnownContent } from '../executor';
import { chownQuietly, errnoOf, fsyncDir, fsyncFile } from './local-fs';
import { copyHashed } from './local-pipelined-copy';
import { type OpenedSource, openKnownFile, openWriteSource } from './local-source';
import { permittedMode } from './special-modes';

/** onProgress of a streamed (not file) source fires at most once per this many bytes (plus once at the end). */
const PROGRESS_STEP_BYTES = 4 * 1024 * 1024;

/** Hex sha256 of a file, read in one pipelined pass (local-pipelined-copy.ts). */
export async function hashFile(abs: string, label = 'file'): Promise<string> {
  // Through the non-blocking, regular-file-only open: a FIFO or device someone put in a mount
  // (stat reports it as a file) must not hang a libuv thread of the drift processor for ever.
  const source = await openKnownFile(abs, label);
  try {
    return (await copyHashed(source, null)).sha256;
  } finally {
    await source.close();
  }
}

/** Options for {@link streamIntoFile} and the copy helpers. */
export interface TransferOptions {
  /** Abort with PayloadTooLargeError once more than this many bytes arrived. */
  maxBytes?: number;
  /** Called with the running byte count (throttled). */
  onProgress?: (bytesDone: number) => void;
  signal?: AbortSignal;
  /**
   * Directories a `{ kind: 'file' }` source may lie under (see local-source.ts). Absent or empty
   * refuses every file source: a path from a request is never read unless the operator said where.
   */
  sourceRoots?: readonly string[];
}

/** Bytes and hex sha256 of what a transfer wrote. */
export interface TransferResult {
  bytes: number;
  sha256: string;
}

/**
 * What {@link streamIntoFile} reads from: a host file named by a request (opened under the source
 * rules), a file the caller already opened (streamIntoFile closes it), inline bytes, or a stream.
 */
export type ByteSource =
  | { kind: 'file'; path: string }
  | { kind: 'opened'; file: OpenedSource }
  | { kind: 'inline'; data: Buffer }
  | { kind: 'stream'; stream: Readable };

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? Object.assign(new Error('the operation was aborted'), { name: 'AbortError' });
}

/**
 * Streams `source` into a new file at `destAbs` (truncating any earlier attempt), hashing on the
 * fly so the content is read exactly once, with constant memory. The file is fsynced — once, at
 * the end — before this resolves. On failure the partial file is removed.
 *
 * A file source is opened first, by {@link openWriteSource} under `opts.sourceRoots`, so a refused
 * source never creates `destAbs`; it is read through that descriptor only, up to the size it had
 * when opened, by the pipelined copy (local-pipelined-copy.ts: reading, hashing and writing
 * overlap). Inline bytes and streams go through {@link pumpChunks}.
 */
export async function streamIntoFile(source: ByteSource, destAbs: string, opts: TransferOptions = {}): Promise<TransferResult> {
  const { signal, maxBytes, onProgress } = opts;
  signal?.throwIfAborted();
  let opened: OpenedSource | null = source.kind === 'opened' ? source.file : null;
  try {
    if (source.kind === 'file') opened = await openWriteSource(source.path, { roots: opts.sourceRoots ?? [], maxBytes });
  } catch (err) {
    await opened?.close().catch(() => undefined);
    throw err;
  }
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(destAbs, 'w', 0o666);
  } catch (err) {
    await opened?.close().catch(() => undefined);
    throw err;
  }
  let result: TransferResult;
  try {
    result = opened
      ? await copyHashed(opened, fh, { maxBytes, onProgress, signal })
      : await pumpChunks(source as Extract<ByteSource, { kind: 'inline' | 'stream' }>, fh, opts);
    await fh.sync();
  } catch (err) {
    await opened?.close().catch(() => undefined);
    await fh.close().catch(() => undefined);
    await fs.rm(destAbs, { force: true }).catch(() => undefined);
    if (signal?.aborted) throw abortReason(signal);
    throw err;
  }
  await opened?.close();
  await fh.close();
  onProgress?.(result.bytes);
  return result;
}

/**
 * Writes inline bytes or a stream's chunks to `fh` while hashing them; the write of one chunk runs
 * on libuv's thread pool while this thread hashes it and the stream produces the next. Does not
 * fsync. Every write has settled when it throws.
 */
async function pumpChunks(source: Extract<ByteSource, { kind: 'inline' | 'stream' }>, fh: fs.FileHandle, opts: TransferOptions): Promise<TransferResult> {
  const { signal, maxBytes, onProgress } = opts;
  const hash = createHash('sha256');
  let bytes = 0;
  let nextProgress = PROGRESS_STEP_BYTES;
  let readable: Readable | null = null;
  let inFlight: Promise<void> | null = null;
  try {
    let chunks: AsyncIterable<unknown> | Iterable<unknown>;
    if (source.kind === 'inline') {
      chunks = [source.data];
    } else {
      readable = source.stream;
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
      if (inFlight) await inFlight;
      inFlight = writeFully(fh, chunk);
      hash.update(chunk);
      if (onProgress && bytes >= nextProgress) {
        onProgress(bytes);
        nextProgress = bytes + PROGRESS_STEP_BYTES;
      }
    }
    if (inFlight) await inFlight;
  } catch (err) {
    await inFlight?.catch(() => undefined);
    readable?.destroy();
    throw err;
  }
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
  // The executor proved srcAbs inside the mount; open it without root rules, but never block on
  // a FIFO and never read past the size it had at open.
  const file = await openKnownFile(srcAbs, path.basename(srcAbs), opts.maxBytes);
  return streamIntoFile({ kind: 'opened', file }, destAbs, opts);
}

/** One node of a walked tree; `rel` is '' for the tree root, else '/'-joined. */
export interface TreeEntry {
  rel: string;
  kind: 'file' | 'directory' | 'symlink';
  stats: BigIntStats;
}

/**
 * How many file-system calls a tree walk or copy keeps in flight. Serially, a 100,000-file copy
 * spent most of its time waiting on one fsync after another (~1.7 ms each here); in parallel the
 * file system commits many of them in one journal flush. Small enough to leave libuv's thread
 * pool to other work between calls.
 */
const TREE_CONCURRENCY = 16;

/** Runs `fn` over `items` with at most `limit` in flight; stops taking new items after the first failure, waits for the rest, then throws it. */
async function eachBounded<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | null = null;
  const lane = async (): Promise<void> => {
    while (failure === null && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failure) throw (failure as { err: unknown }).err;
}

/**
 * Lists a tree in pre-order (parents before children, siblings sorted), without following
 * symlinks. The children of a directory are lstat-ed in parallel. Throws TreeTooLargeError as
 * soon as more than `maxEntries` entries (the root included) are known, so a huge tree is refused
 * before anything is copied.
 *
 * @param label - mount-relative name of the root for error messages.
 */
export async function walkTree(rootAbs: string, label: string, maxEntries = Infinity): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const entryOf = async (abs: string, rel: string): Promise<TreeEntry> => {
    const stats = await fs.lstat(abs, { bigint: true });
    const kind = stats.isDirectory() ? 'directory' : stats.isSymbolicLink() ? 'symlink' : stats.isFile() ? 'file' : null;
    if (kind === null) throw new AccessDeniedError(`${label}/${rel} is a special file (device, socket or fifo) and cannot be copied`);
    return { rel, kind, stats };
  };
  const visit = async (entry: TreeEntry, abs: string): Promise<void> => {
    out.push(entry);
    if (out.length > maxEntries) throw new TreeTooLargeError(label, maxEntries);
    if (entry.kind !== 'directory') return;
    const names = (await fs.readdir(abs)).sort();
    if (out.length + names.length > maxEntries) throw new TreeTooLargeError(label, maxEntries);
    const children: TreeEntry[] = new Array(names.length);
    await eachBounded(
      names.map((_, i) => i),
      TREE_CONCURRENCY,
      async (i) => {
        children[i] = await entryOf(path.join(abs, names[i]), entry.rel === '' ? names[i] : `${entry.rel}/${names[i]}`);
      },
    );
    for (let i = 0; i < names.length; i++) await visit(children[i], path.join(abs, names[i]));
  };
  await visit(await entryOf(rootAbs, ''), rootAbs);
  return out;
}

function entryAbs(rootAbs: string, rel: string): string {
  return rel === '' ? rootAbs : path.join(rootAbs, ...rel.split('/'));
}

/** Directories of a walked tree grouped by depth (the root is depth 0). */
function dirsByDepth(entries: TreeEntry[]): TreeEntry[][] {
  const levels: TreeEntry[][] = [];
  for (const entry of entries) {
    if (entry.kind !== 'directory') continue;
    const depth = entry.rel === '' ? 0 : entry.rel.split('/').length;
    (levels[depth] ??= []).push(entry);
  }
  return levels.filter((level) => level !== undefined);
}

/**
 * Recreates walked `entries` of `srcRoot` under `destRoot` (which must not exist). File bytes go
 * through `copyOne`; modes are kept except setuid / setgid / sticky, which survive only with
 * `allowSpecialModes`; directories are made writable while being filled and get their real mode
 * (and, with `keepTimes`, mtime) afterwards, children first. Every file and directory is fsynced.
 */
export async function copyTree(
  srcRoot: string,
  destRoot: string,
  entries: TreeEntry[],
  copyOne: (entry: TreeEntry, srcAbs: string, destAbs: string) => Promise<void>,
  opts: { keepTimes?: boolean; keepOwner?: boolean; allowSpecialModes?: boolean } = {},
): Promise<void> {
  // chown before chmod: chown clears setuid/setgid of files, so the reverse order would lose them where allowed.
  const settle = async (to: string, entry: TreeEntry) => {
    if (opts.keepOwner) await chownQuietly(to, entry.stats);
    await fs.chmod(to, permittedMode(Number(entry.stats.mode), opts.allowSpecialModes));
    if (opts.keepTimes) await fs.utimes(to, entry.stats.atime, entry.stats.mtime);
  };
  const levels = dirsByDepth(entries);
  // Parents before children: one level of directories at a time, each level in parallel.
  for (const level of levels) {
    await eachBounded(level, TREE_CONCURRENCY, (entry) => fs.mkdir(entryAbs(destRoot, entry.rel), { mode: 0o700 }));
  }
  await eachBounded(
    entries.filter((entry) => entry.kind !== 'directory'),
    TREE_CONCURRENCY,
    async (entry) => {
      const from = entryAbs(srcRoot, entry.rel);
      const to = entryAbs(destRoot, entry.rel);
      if (entry.kind === 'symlink') {
        await fs.symlink(await fs.readlink(from), to);
        return;
      }
      await copyOne(entry, from, to);
      await settle(to, entry);
      await fsyncFile(to);
    },
  );
  // Children before parents: a directory gets its real (maybe read-only) mode once its content is in.
  for (const level of [...levels].reverse()) {
    await eachBounded(level, TREE_CONCURRENCY, async (entry) => {
      const to = entryAbs(destRoot, entry.rel);
      await fsyncDir(to);
      await settle(to, entry);
    });
  }
}

/**
 * Deterministic scratch names the cross-device move (local-xdev.ts) uses: the copy is built at `tmp` (next to
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

/** Recognises the names {@link crossDeviceScratch} produces (listings and drift detection skip them). */
export { isFilestoreScratchName } from './scratch-names';
