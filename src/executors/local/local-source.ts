/**
 * Opening the host file a `put` reads from. A request names any path it likes, and the worker
 * often runs with more rights than the caller (root, or the owner of every mount), so the path is
 * treated as hostile:
 *
 *  - it must lie under one of the configured roots (FILESTORE_SOURCE_ROOTS), compared by real
 *    location: below the root's realpath every component is lstat'ed and a symlink anywhere is
 *    refused, so what the path names is where the bytes come from;
 *  - only a regular file is opened: the final component is lstat'ed first (a FIFO or a device is
 *    never even opened) and then opened with O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, so a component
 *    swapped for a symlink fails with ELOOP and a FIFO swapped in cannot block a libuv thread;
 *  - the open file descriptor is re-checked: fstat says regular file, and it is the inode the walk
 *    saw, still at the place the walk proved inside the root (/proc/self/fd where there is one,
 *    else a second walk);
 *  - reads go through that descriptor only ({@link OpenedSource.readAt}, positional) and stop at
 *    the size fstat reported at open, so a file that keeps growing (or /dev/zero) never streams
 *    past it; a file that shrinks is an error.
 *
 * Every refusal is a typed error thrown before a byte is read.
 */
import { constants as fsConstants, type BigIntStats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { AccessDeniedError, NotADirectoryError, NotFoundError, PayloadTooLargeError, SourceChangedError, SourceNotAllowedError } from '../../errors';

/** A source file opened for reading; the caller owns it and must {@link OpenedSource.close} it. */
export interface OpenedSource {
  /** The open descriptor: the only way the file is read (never re-opened by path). */
  readonly handle: fs.FileHandle;
  /** Size in bytes when it was opened; reads stop there. */
  readonly size: number;
  /**
   * Reads exactly `length` bytes at `position` into the start of `buf` (pread: several may run at
   * once). Throws SourceChangedError when the file ends before them (it shrank), and refuses a
   * range past the size seen at open.
   */
  readAt(buf: Buffer, position: number, length: number): Promise<void>;
  /** Throws SourceChangedError unless exactly `size` bytes were read. */
  assertComplete(bytesRead: number): void;
  close(): Promise<void>;
}

/** Where a write source may come from and how large it may be. */
export interface SourceRules {
  /** Directories file sources may lie under; empty refuses every file source. */
  roots: readonly string[];
  /** Refuse files larger than this (checked against fstat at open). */
  maxBytes?: number;
}

const OPEN_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK | (fsConstants.O_NOCTTY ?? 0);
/** Like {@link OPEN_FLAGS} but following a final symlink: for sources the executor already proved inside its mount. */
const OPEN_FLAGS_FOLLOW = fsConstants.O_RDONLY | fsConstants.O_NONBLOCK | (fsConstants.O_NOCTTY ?? 0);

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

function kindOf(st: { isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symlink';
  return 'not a regular file';
}

function notRegular(source: string, st: Parameters<typeof kindOf>[0]): SourceNotAllowedError {
  const kind = kindOf(st);
  return new SourceNotAllowedError(`source ${JSON.stringify(source)} is ${kind}; only regular files can be written`, { source, kind });
}

/** lstat that maps "nothing there" to NotFoundError and a denial to AccessDeniedError. */
async function lstatSource(abs: string, source: string): Promise<BigIntStats> {
  try {
    return await fs.lstat(abs, { bigint: true });
  } catch (err) {
    throw mapOpenError(err, source);
  }
}

function mapOpenError(err: unknown, source: string): unknown {
  switch (errno(err)) {
    case 'ENOENT':
      return new NotFoundError('source file', { source });
    case 'ENOTDIR':
      return new NotADirectoryError(`a parent of source ${JSON.stringify(source)}`, { source });
    case 'EACCES':
    case 'EPERM':
      return new AccessDeniedError(`source ${JSON.stringify(source)}`, { source });
    case 'ELOOP':
      return new SourceNotAllowedError(`source ${JSON.stringify(source)} is a symlink; sources are never read through symlinks`, { source });
    case 'ENXIO':
      return new SourceNotAllowedError(`source ${JSON.stringify(source)} is a socket or a device without a reader; only regular files can be written`, { source });
    default:
      return err;
  }
}

/** The configured roots as (spelled, real) pairs; roots that do not exist on this host are skipped. */
async function resolveRoots(roots: readonly string[]): Promise<Array<{ spelled: string; real: string }>> {
  const out: Array<{ spelled: string; real: string }> = [];
  for (const root of roots) {
    if (!path.isAbsolute(root)) continue;
    const spelled = path.resolve(root);
    try {
      out.push({ spelled, real: await fs.realpath(spelled) });
    } catch {
      // A root missing on this host cannot contain anything.
    }
  }
  return out;
}

const under = (p: string, dir: string) => p === dir || p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);

/**
 * Finds the root `abs` lies under — as the root is spelled in the configuration or by its real
 * location — and returns the real root plus the components below it. The root itself is the
 * operator's word and may be reached through symlinks; nothing below it may.
 */
async function placeUnderRoot(abs: string, roots: readonly string[]): Promise<{ rootReal: string; segments: string[] } | null> {
  for (const { spelled, real } of await resolveRoots(roots)) {
    for (const base of [real, spelled]) {
      if (!under(abs, base)) continue;
      const rel = path.relative(base, abs);
      return { rootReal: real, segments: rel === '' ? [] : rel.split(path.sep) };
    }
  }
  return null;
}

/**
 * lstats every directory between the real root and the final component; a symlink or a
 * non-directory anywhere is refused. Returns the final absolute path (real, by construction).
 */
async function walkComponents(rootReal: string, segments: string[], source: string): Promise<string> {
  let cur = rootReal;
  for (const seg of segments.slice(0, -1)) {
    cur = path.join(cur, seg);
    const st = await lstatSource(cur, source);
    if (st.isSymbolicLink()) {
      throw new SourceNotAllowedError(`source ${JSON.stringify(source)} goes through a symlink; sources are never read through symlinks`, { source });
    }
    if (!st.isDirectory()) throw new NotADirectoryError(`a parent of source ${JSON.stringify(source)}`, { source });
  }
  return segments.length === 0 ? rootReal : path.join(cur, segments[segments.length - 1]);
}

/**
 * Proves the open descriptor is the file the walk found, at the place the walk proved inside the
 * root: a parent swapped for a symlink between the walk and open() would have sent open()
 * elsewhere. Linux names the descriptor's real location in /proc/self/fd; elsewhere the walk is
 * repeated and the final entry must be the opened inode.
 */
async function assertOpenedWhereWalked(fh: fs.FileHandle, st: BigIntStats, rootReal: string, segments: string[], finalAbs: string, source: string): Promise<void> {
  let real: string | null = null;
  try {
    real = await fs.readlink(`/proc/self/fd/${fh.fd}`);
  } catch {
    real = null;
  }
  if (real !== null) {
    if (real === finalAbs) return;
    throw new SourceNotAllowedError(`source ${JSON.stringify(source)} changed place while it was opened (a component was swapped)`, { source });
  }
  const again = await walkComponents(rootReal, segments, source);
  const now = await lstatSource(again, source);
  if (now.dev !== st.dev || now.ino !== st.ino) {
    throw new SourceNotAllowedError(`source ${JSON.stringify(source)} changed place while it was opened (a component was swapped)`, { source });
  }
}

function openedSource(fh: fs.FileHandle, size: number, source: string): OpenedSource {
  let closed = false;
  const shrank = (bytesRead: number) =>
    new SourceChangedError(`source ${JSON.stringify(source)} shrank while it was read (${bytesRead} of the ${size} bytes it had when opened)`, {
      source,
      size,
      bytesRead,
    });
  return {
    handle: fh,
    size,
    async readAt(buf: Buffer, position: number, length: number) {
      if (position < 0 || length < 0 || position + length > size || length > buf.byteLength) {
        throw new RangeError(`internal: read of ${length} bytes at ${position} outside the ${size} bytes of ${JSON.stringify(source)}`);
      }
      for (let done = 0; done < length; ) {
        const { bytesRead } = await fh.read(buf, done, length - done, position + done);
        if (bytesRead === 0) throw shrank(position + done);
        done += bytesRead;
      }
    },
    assertComplete(bytesRead: number) {
      if (bytesRead !== size) throw shrank(bytesRead);
    },
    async close() {
      if (closed) return;
      closed = true;
      await fh.close();
    },
  };
}

/** fstat the descriptor: a regular file within maxBytes, else close it and refuse. */
async function checkOpened(fh: fs.FileHandle, source: string, maxBytes: number | undefined): Promise<BigIntStats> {
  const st = await fh.stat({ bigint: true });
  if (!st.isFile()) throw notRegular(source, st);
  if (maxBytes !== undefined && Number(st.size) > maxBytes) {
    throw new PayloadTooLargeError(`content is ${st.size} bytes, more than the limit of ${maxBytes}`, { maxBytes, size: Number(st.size) });
  }
  return st;
}

/**
 * Opens the host file a write request names, under the rules in this module's header.
 *
 * @throws SourceNotAllowedError (outside the roots, no roots configured, a symlink on the way, not
 *   a regular file), NotFoundError, NotADirectoryError, AccessDeniedError, PayloadTooLargeError.
 */
export async function openWriteSource(source: string, rules: SourceRules): Promise<OpenedSource> {
  if (typeof source !== 'string' || source.includes('\0') || !path.isAbsolute(source)) {
    throw new SourceNotAllowedError(`source ${JSON.stringify(source)} must be an absolute path`, { source });
  }
  if (rules.roots.length === 0) {
    throw new SourceNotAllowedError(
      'file sources are refused: this worker has no source roots — set FILESTORE_SOURCE_ROOTS to the directories it may read put sources from',
      { source },
    );
  }
  // Lexical '..' folding is exact here because no component below the root may be a symlink.
  const abs = path.resolve(source);
  const placed = await placeUnderRoot(abs, rules.roots);
  if (!placed) {
    throw new SourceNotAllowedError(`source ${JSON.stringify(source)} is outside the directories this worker reads sources from (FILESTORE_SOURCE_ROOTS)`, {
      source,
    });
  }
  const finalAbs = await walkComponents(placed.rootReal, placed.segments, source);
  const seen = await lstatSource(finalAbs, source);
  // Refused before open(): opening a device can have side effects, and a FIFO would block without O_NONBLOCK.
  if (!seen.isFile()) throw notRegular(source, seen);
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(finalAbs, OPEN_FLAGS);
  } catch (err) {
    throw mapOpenError(err, source);
  }
  try {
    const st = await checkOpened(fh, source, rules.maxBytes);
    if (st.dev !== seen.dev || st.ino !== seen.ino) {
      throw new SourceNotAllowedError(`source ${JSON.stringify(source)} was replaced while it was opened`, { source });
    }
    await assertOpenedWhereWalked(fh, st, placed.rootReal, placed.segments, finalAbs, source);
    return openedSource(fh, Number(st.size), source);
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

/**
 * Opens a file whose location the caller has already proved (a copy source inside the mount):
 * no root rules, and a final symlink is followed as the mount's rules allow, but only a regular
 * file is accepted, open() never blocks, and reads stop at the size seen at open.
 *
 * @param label - how errors name the file (mount-relative, never a host path).
 */
export async function openKnownFile(abs: string, label: string, maxBytes?: number): Promise<OpenedSource> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(abs, OPEN_FLAGS_FOLLOW);
  } catch (err) {
    throw mapOpenError(err, label);
  }
  try {
    const st = await checkOpened(fh, label, maxBytes);
    return openedSource(fh, Number(st.size), label);
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

/**
 * What a client can check on its own host before starting a write: under `roots` when it knows
 * them (else only the final component), no symlink, a regular file within `maxBytes`. The worker
 * repeats the full check; it is the authority.
 */
export async function checkWriteSource(source: string, rules: SourceRules): Promise<void> {
  if (rules.roots.length > 0) {
    const opened = await openWriteSource(source, rules);
    await opened.close();
    return;
  }
  if (!path.isAbsolute(source)) throw new SourceNotAllowedError(`source ${JSON.stringify(source)} must be an absolute path`, { source });
  const st = await lstatSource(source, source);
  if (st.isSymbolicLink()) {
    throw new SourceNotAllowedError(`source ${JSON.stringify(source)} is a symlink; sources are never read through symlinks`, { source });
  }
  if (!st.isFile()) throw notRegular(source, st);
  if (rules.maxBytes !== undefined && Number(st.size) > rules.maxBytes) {
    throw new PayloadTooLargeError(`content is ${st.size} bytes, more than the limit of ${rules.maxBytes}`, { maxBytes: rules.maxBytes, size: Number(st.size) });
  }
}
