/**
 * No-follow directory access for local mounts: `openat()` / `renameat()` emulated through Linux's
 * `/proc/self/fd` magic links, because Node has neither.
 *
 * A directory of the mount is opened component by component from the root's fd:
 * `open('/proc/self/fd/<parent>/<name>', O_DIRECTORY|O_NOFOLLOW)`. The kernel resolves the magic
 * link to the very directory the fd holds, not to whatever path names it now, so a symlink
 * swapped in for a component after it was opened cannot redirect a later step, and a symlink
 * present when it is opened makes the open fail (typed refusal). Syscalls then name only their
 * last component through the held fd (`/proc/self/fd/<dir>/<name>`): rename, link, unlink, rmdir
 * and mkdir never follow a final symlink, and files are opened with O_NOFOLLOW.
 *
 * What a held fd cannot stop is the directory itself being renamed, even out of the mount (on the
 * same file system). So each step checks, right before its syscall and again right after it,
 * that every directory it used still sits at its expected host path
 * (`readlink('/proc/self/fd/<dir>')`); when it does not, the step is undone through the same fds
 * and refused: {@link SymlinkEscapeError} when the directory is now outside the mount,
 * {@link PathChangedError} when it moved within it (or was removed).
 *
 * Where `/proc/self/fd` is missing (not Linux), the same calls fall back to plain paths, checking
 * each component with lstat immediately before the call and re-verifying after it. That narrows
 * the race window but cannot close it (see docs/security.md, "Containment").
 */
import { constants as C, type BigIntStats } from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { NotADirectoryError, PathChangedError, SymlinkEscapeError } from '../../errors';
import { resolveInsideRoot } from '../../paths';

/** O_PATH (Linux): an fd that names a directory without read permission on it. Not in fs.constants. */
const O_PATH = 0o10000000;
const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;

const q = (p: string): string => JSON.stringify(p);
const errnoOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | null)?.code;
const insideRoot = (rootReal: string, real: string): boolean => real === rootReal || real.startsWith(rootReal + path.sep);

let procFdProbe: Promise<boolean> | undefined;

/**
 * Whether `/proc/self/fd` magic links work in this process (Linux with /proc mounted). Detected
 * once: open `/`, read its fd's link back.
 */
export function procFdAvailable(): Promise<boolean> {
  procFdProbe ??= (async () => {
    if (process.platform !== 'linux') return false;
    let fh: FileHandle | undefined;
    try {
      fh = await fs.open('/', DIR_FLAGS);
      return (await fs.readlink(`/proc/self/fd/${fh.fd}`)) === '/';
    } catch {
      return false;
    } finally {
      await fh?.close().catch(() => undefined);
    }
  })();
  return procFdProbe;
}

/**
 * Test seams. `forceFallback` makes every new walk use the racy path-based fallback;
 * `beforeSyscall` runs after a step's pre-check and before its syscall, the exact window a racing
 * user would aim for.
 */
export const dirfdTestSeams: {
  forceFallback?: boolean;
  beforeSyscall?: (op: string, dirs: readonly HeldDir[]) => void | Promise<void>;
} = {};

/** A directory of a mount, opened without following any symlink below the mount root. */
export class HeldDir {
  private closed = false;

  /** @internal use {@link MountDirs.openDir}. */
  constructor(
    private readonly fh: FileHandle | null,
    /** Where the directory must be: the mount root joined with `rel`. */
    readonly host: string,
    /** Canonical mount-relative path ('' for the root). */
    readonly rel: string,
    private readonly rootReal: string,
    /** Fallback only: identity seen when the directory was reached. */
    private readonly identity: { dev: bigint; ino: bigint } | null,
  ) {}

  /** True when this handle works through a held fd (the race-free mode). */
  get held(): boolean {
    return this.fh !== null;
  }

  /** A path naming entry `name` of this directory that never re-resolves the directory's own path. */
  at(name: string): string {
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
      throw new Error(`internal: ${q(name)} is not a single path component`);
    }
    if (this.closed) throw new Error(`internal: directory ${q(this.rel)} used after close`);
    return this.fh ? `/proc/self/fd/${this.fh.fd}/${name}` : path.join(this.host, name);
  }

  /** A path naming this directory itself (for readdir), without re-resolving its path. */
  self(): string {
    return this.fh ? `/proc/self/fd/${this.fh.fd}` : this.host;
  }

  /** Mount-relative path of entry `name`. */
  relOf(name: string): string {
    return this.rel === '' ? name : `${this.rel}/${name}`;
  }

  /**
   * Proves the directory still is where it was opened. Throws {@link SymlinkEscapeError} when it
   * now lies outside the mount root and {@link PathChangedError} when it moved within the mount
   * or was removed.
   */
  async verify(): Promise<void> {
    if (this.fh) {
      let now: string;
      try {
        now = await fs.readlink(`/proc/self/fd/${this.fh.fd}`);
      } catch (err) {
        throw new PathChangedError(this.rel, { errno: errnoOf(err) });
      }
      if (now === this.host) return;
      if (now.endsWith(' (deleted)')) throw new PathChangedError(this.rel, { reason: 'removed' });
      if (insideRoot(this.rootReal, now)) throw new PathChangedError(this.rel, { reason: 'moved' });
      throw new SymlinkEscapeError(this.rel, { reason: 'moved outside the mount' });
    }
    await verifyByPath(this.rootReal, this.rel, this.identity);
  }

  /**
   * Opens entry `name` as a directory without following it: null when nothing is there; a
   * symlink is refused ({@link SymlinkEscapeError} when it leads out of the mount,
   * {@link PathChangedError} otherwise), anything else that is not a directory is NotADirectoryError.
   */
  async child(name: string): Promise<HeldDir | null> {
    const rel = this.relOf(name);
    const host = path.join(this.host, name);
    if (this.fh) {
      try {
        return new HeldDir(await openChildDir(this, name), host, rel, this.rootReal, null);
      } catch (err) {
        if (errnoOf(err) === 'ENOENT') return null;
        if (errnoOf(err) !== 'ENOTDIR' && errnoOf(err) !== 'ELOOP') throw err;
        if ((await this.lstat(name))?.isSymbolicLink()) throw await symlinkRefusal(this.rootReal, rel);
        throw new NotADirectoryError(q(rel), { path: rel });
      }
    }
    // Fallback: check the parent is still where it was, then the child itself, right before use.
    await this.verify();
    const st = await this.lstat(name);
    if (!st) return null;
    if (st.isSymbolicLink()) throw await symlinkRefusal(this.rootReal, rel);
    if (!st.isDirectory()) throw new NotADirectoryError(q(rel), { path: rel });
    return new HeldDir(null, host, rel, this.rootReal, { dev: st.dev, ino: st.ino });
  }

  /** lstat of entry `name` (never follows it), or null when nothing is there. */
  async lstat(name: string): Promise<BigIntStats | null> {
    try {
      return await fs.lstat(this.at(name), { bigint: true });
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return null;
      throw err;
    }
  }

  /** Makes entries created, renamed or removed in this directory durable. */
  async sync(): Promise<void> {
    try {
      if (this.fh) await this.fh.sync();
      else {
        const fh = await fs.open(this.host, 'r');
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
      }
    } catch (err) {
      // O_PATH fds (EBADF) and some file systems (EINVAL …) cannot fsync a directory; the kernel
      // then has nothing more to flush for it.
      if (!['EINVAL', 'EBADF', 'EISDIR', 'EPERM', 'ENOTSUP', 'ENOENT'].includes(errnoOf(err) ?? '')) throw err;
    }
  }

  /** fstat of the held directory itself (fallback: lstat of its path). */
  async stat(): Promise<BigIntStats> {
    return this.fh ? this.fh.stat({ bigint: true }) : fs.lstat(this.host, { bigint: true });
  }

  /** chmod of the held directory itself (fallback: of its path, after a re-check). */
  async chmod(mode: number): Promise<void> {
    if (this.fh) {
      try {
        await this.fh.chmod(mode);
        return;
      } catch (err) {
        if (errnoOf(err) !== 'EBADF') throw err; // an O_PATH fd: go through its magic link instead
      }
    } else {
      await this.verify();
    }
    await fs.chmod(this.self(), mode);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh?.close().catch(() => undefined);
  }
}

/** Fallback check: every component of `rel` is a real directory (no symlink) and the last is the one opened. */
async function verifyByPath(rootReal: string, rel: string, identity: { dev: bigint; ino: bigint } | null): Promise<void> {
  let abs = rootReal;
  let st = await fs.lstat(abs, { bigint: true }).catch(() => null);
  for (const seg of rel === '' ? [] : rel.split('/')) {
    abs = path.join(abs, seg);
    st = await fs.lstat(abs, { bigint: true }).catch(() => null);
    if (!st) throw new PathChangedError(rel, { reason: 'removed' });
    if (st.isSymbolicLink()) throw await symlinkRefusal(rootReal, rel);
    if (!st.isDirectory()) throw new PathChangedError(rel, { reason: 'replaced' });
  }
  if (!st || (identity && (st.dev !== identity.dev || st.ino !== identity.ino))) throw new PathChangedError(rel, { reason: 'replaced' });
}

/** The refusal for a symlink standing where a directory was expected: escape if it leads out. */
async function symlinkRefusal(rootReal: string, rel: string): Promise<Error> {
  const stays = await resolveInsideRoot(rootReal, rel).then(
    () => true,
    () => false,
  );
  return stays ? new PathChangedError(rel, { reason: 'a symlink now stands where a directory was' }) : new SymlinkEscapeError(rel);
}

/** Runs a step's pre-check, the test seam, the syscall, and the post-check with its undo. */
async function guarded<T>(op: string, dirs: HeldDir[], act: () => Promise<T>, undo: (result: T) => Promise<void>): Promise<T> {
  for (const d of dirs) await d.verify();
  await dirfdTestSeams.beforeSyscall?.(op, dirs);
  const result = await act();
  try {
    for (const d of dirs) await d.verify();
  } catch (err) {
    // The syscall went through a directory that moved: put things back through the same fds.
    let undone = true;
    await undo(result).catch(() => {
      undone = false;
    });
    if (err && typeof err === 'object' && 'details' in err) Object.assign((err as { details: Record<string, unknown> }).details, { op, undone });
    throw err;
  }
  return result;
}

/** rename() of one entry to another, following neither name; undone and refused if a directory moved. */
export async function renameNoFollow(from: HeldDir, fromName: string, to: HeldDir, toName: string): Promise<void> {
  await guarded(
    'rename',
    [from, to],
    () => fs.rename(from.at(fromName), to.at(toName)),
    () => fs.rename(to.at(toName), from.at(fromName)),
  );
}

/**
 * {@link renameNoFollow}, and where the two sides lie on different file systems (EXDEV: a nested
 * mount inside the mount), `moveAcross` (the copying fallback, local-xdev.ts) on the same held
 * directories. The copy cannot be undone in one step: the directories are re-verified before and
 * after it, and a move that raced is refused after the fact.
 *
 * @returns bytes copied (0 for a plain rename).
 */
export async function renameAnywhereNoFollow(
  from: HeldDir,
  fromName: string,
  to: HeldDir,
  toName: string,
  moveAcross: (from: HeldDir, fromName: string, to: HeldDir, toName: string) => Promise<number>,
): Promise<number> {
  try {
    await renameNoFollow(from, fromName, to, toName);
    return 0;
  } catch (err) {
    if (errnoOf(err) !== 'EXDEV') throw err;
  }
  for (const d of [from, to]) await d.verify();
  const bytes = await moveAcross(from, fromName, to, toName);
  for (const d of [from, to]) await d.verify();
  return bytes;
}

/** Hard link (the source is never dereferenced); undone and refused if a directory moved. */
export async function linkNoFollow(from: HeldDir, fromName: string, to: HeldDir, toName: string): Promise<void> {
  await guarded(
    'link',
    [from, to],
    () => fs.link(from.at(fromName), to.at(toName)),
    () => fs.unlink(to.at(toName)),
  );
}

/** mkdir of one entry; undone (rmdir) and refused if the directory moved. */
export async function mkdirNoFollow(dir: HeldDir, name: string, mode = 0o777): Promise<void> {
  await guarded(
    'mkdir',
    [dir],
    () => fs.mkdir(dir.at(name), { mode }),
    () => fs.rmdir(dir.at(name)),
  );
}

/** Creates a new file (O_CREAT|O_EXCL|O_NOFOLLOW) open for writing; undone and refused if the directory moved. */
export async function createFileNoFollow(dir: HeldDir, name: string, mode = 0o600): Promise<FileHandle> {
  return guarded(
    'create',
    [dir],
    () => fs.open(dir.at(name), C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, mode),
    async (fh) => {
      await fh.close().catch(() => undefined);
      await fs.unlink(dir.at(name));
    },
  );
}

/** Opens an existing entry without following it (ELOOP for a symlink); refused if the directory moved. */
export async function openNoFollow(dir: HeldDir, name: string, flags: number = C.O_RDONLY): Promise<FileHandle> {
  return guarded(
    'open',
    [dir],
    () => fs.open(dir.at(name), flags | C.O_NOFOLLOW),
    (fh) => fh.close(),
  );
}

/**
 * A path that reopens the file `fh` (opened from entry `name` of `dir`) through its own fd,
 * without resolving any name again (for APIs that take a path: copyFile, read streams). The
 * fallback can only name it by path.
 */
export function openedPath(fh: FileHandle, dir: HeldDir, name: string): string {
  return dir.held ? `/proc/self/fd/${fh.fd}` : dir.at(name);
}

/** unlink() of one entry (a symlink itself, never its target). Cannot be undone: checked before, reported after. */
export async function unlinkNoFollow(dir: HeldDir, name: string): Promise<void> {
  await guarded('unlink', [dir], () => fs.unlink(dir.at(name)), async () => {
    throw new Error('an unlink cannot be undone');
  });
}

/** rmdir() of one empty directory entry. Cannot be undone: checked before, reported after. */
export async function rmdirNoFollow(dir: HeldDir, name: string): Promise<void> {
  await guarded('rmdir', [dir], () => fs.rmdir(dir.at(name)), async () => {
    throw new Error('an rmdir cannot be undone');
  });
}

/** How many entries of one directory {@link removeTreeNoFollow} removes at a time. */
const REMOVE_CONCURRENCY = 16;

/**
 * Removes entry `name` of `dir` with everything below it, never following a symlink: each
 * subdirectory is opened no-follow and emptied through its own fd, so a child swapped for a
 * symlink mid-way is unlinked as the link it now is. (Node's recursive `rm` re-resolves every
 * child by path: a directory swapped for a symlink between its lstat and its readdir makes it
 * delete the link's target's contents.) Missing entries are fine (idempotent).
 *
 * @param isDirHint - false when a directory listing said the entry is not a directory: it is
 *   unlinked straight away (and treated as a directory only if that fails with EISDIR).
 */
export async function removeTreeNoFollow(dir: HeldDir, name: string, isDirHint?: boolean): Promise<void> {
  if (isDirHint === false) {
    // The directory listing said "not a directory": unlink it (EISDIR if swapped for one since).
    try {
      await fs.unlink(dir.at(name));
      return;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return;
      if (errnoOf(err) !== 'EISDIR' && errnoOf(err) !== 'EPERM') throw err;
    }
  }
  let sub: HeldDir | null = null;
  try {
    sub = await dir.child(name);
  } catch (err) {
    // Not a directory (any more): a symlink or a file, unlinked as what it is below.
    const code = (err as { code?: string }).code;
    if (code !== 'SYMLINK_ESCAPE' && code !== 'PATH_CHANGED' && code !== 'NOT_A_DIRECTORY') throw err;
  }
  if (sub) {
    try {
      const entries = await fs.readdir(sub.self(), { withFileTypes: true });
      for (let i = 0; i < entries.length; i += REMOVE_CONCURRENCY) {
        await Promise.all(entries.slice(i, i + REMOVE_CONCURRENCY).map((e) => removeTreeNoFollow(sub!, e.name, e.isDirectory() ? undefined : false)));
      }
    } finally {
      await sub.close();
    }
    try {
      await fs.rmdir(dir.at(name));
      return;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return;
      if (errnoOf(err) !== 'ENOTDIR') throw err;
    }
  }
  try {
    await fs.unlink(dir.at(name));
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err;
  }
}

/** Opens `name` inside a held directory as a directory, refusing a symlink (ENOTDIR/ELOOP). */
async function openChildDir(parent: HeldDir, name: string): Promise<FileHandle> {
  try {
    return await fs.open(parent.at(name), DIR_FLAGS);
  } catch (err) {
    // A directory the worker may search but not read (mode 0311 …): O_PATH still names it.
    if (errnoOf(err) !== 'EACCES') throw err;
    return fs.open(parent.at(name), O_PATH | C.O_DIRECTORY | C.O_NOFOLLOW);
  }
}
