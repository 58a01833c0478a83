/**
 * The no-follow view of one local mount (see local-dirfd.ts for the primitives): where a path
 * really is ({@link MountDirs.resolve}), opening its directories without following a symlink
 * ({@link MountDirs.openDir}), and the transaction staging folders that only the worker may write
 * ({@link MountDirs.openStaging}).
 */
import type { BigIntStats } from 'node:fs';
import { constants as C } from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { InvalidPathError, MountUnavailableError, StagingTamperedError, NotFoundError, SymlinkEscapeError } from '../../errors';
import { STAGING_DIR, normalizeMountPath, resolveInsideRoot } from '../../paths';
import { HeldDir, dirfdTestSeams, mkdirNoFollow, procFdAvailable } from './local-dirfd';

const q = (p: string): string => JSON.stringify(p);
const errnoOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | null)?.code;
const codeOf = (err: unknown): string | undefined => (err as { code?: string } | null)?.code;
const insideRoot = (rootReal: string, real: string): boolean => real === rootReal || real.startsWith(rootReal + path.sep);

/** One mount root; cheap to create, holds no fd between calls. */
export class MountDirs {
  constructor(
    /** The mount root after realpath. */
    readonly rootReal: string,
    readonly mountId: string,
  ) {}

  /**
   * Real canonical location of `rel`: every symlinked parent directory is resolved once, now, to
   * its real place (which must lie inside the mount); the final component is kept as it is, never
   * followed. A final symlink that leads outside the mount is refused too (as it always was).
   * Parents that do not exist yet (a write that creates them) are kept as spelled.
   *
   * @throws SymlinkEscapeError when a parent (or the final link) leads outside the mount.
   * @throws ReservedPathError when the real location is Filestore's staging or mount marker.
   */
  async resolve(rel: string): Promise<string> {
    if (rel === '') return '';
    await resolveInsideRoot(this.rootReal, rel);
    const segs = rel.split('/');
    const name = segs.pop()!;
    // Re-validated: an alias must not lead into the staging folder or onto the mount marker.
    return normalizeMountPath([...(await this.realDir(segs, rel, 0)), name].join('/'));
  }

  /** Real segments of the directory path `segs`: existing symlinks resolved, missing components kept as spelled. */
  private async realDir(segs: string[], rel: string, depth: number): Promise<string[]> {
    // Dangling links can chain; past a few hops the kernel would say ELOOP too.
    if (depth > 8) throw new InvalidPathError(`path ${q(rel)} goes through too many symlinks`, { path: rel });
    let real: string[] = [];
    for (let i = 0; i < segs.length; i++) {
      const abs = path.join(this.rootReal, ...real, segs[i]);
      const st = await fs.lstat(abs, { bigint: true }).catch((err) => {
        if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return null;
        throw err;
      });
      if (!st) return real.concat(segs.slice(i));
      if (!st.isSymbolicLink()) {
        real.push(segs[i]);
        continue;
      }
      const target = await fs.realpath(abs).catch((err) => {
        if (errnoOf(err) === 'ENOENT') return null;
        throw err;
      });
      if (target !== null) {
        if (!insideRoot(this.rootReal, target)) throw new SymlinkEscapeError(rel);
        real = this.segmentsOf(target);
        continue;
      }
      // A dangling link (a write that creates its parents through it): its text, one hop, resolved again.
      const lexical = path.resolve(path.join(this.rootReal, ...real), await fs.readlink(abs));
      if (!insideRoot(this.rootReal, lexical)) throw new SymlinkEscapeError(rel);
      real = await this.realDir(this.segmentsOf(lexical), rel, depth + 1);
    }
    return real;
  }

  private segmentsOf(hostInside: string): string[] {
    return hostInside === this.rootReal ? [] : path.relative(this.rootReal, hostInside).split(path.sep);
  }

  /**
   * As {@link resolve}, and when the final component is a symlink too, its real in-mount target:
   * for the source of a copy, which reads content rather than moving the entry.
   */
  async resolveTarget(rel: string): Promise<string> {
    const real = await this.resolve(rel);
    const abs = path.join(this.rootReal, ...real.split('/'));
    const st = await fs.lstat(abs).catch(() => null);
    if (!st?.isSymbolicLink()) return real;
    return normalizeMountPath((await this.realRelOf(abs, rel, real)).join('/'));
  }

  /** Segments of the real location of the symlink at `abs`, which must lie inside the root. */
  private async realRelOf(abs: string, rel: string, linkRel: string): Promise<string[]> {
    let target: string;
    try {
      target = await fs.realpath(abs);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') throw new NotFoundError(`${q(linkRel)} (a dangling symlink)`, { path: linkRel });
      throw err;
    }
    if (!insideRoot(this.rootReal, target)) throw new SymlinkEscapeError(rel);
    return this.segmentsOf(target);
  }

  /**
   * Opens directory `rel` (a real canonical path) component by component from the root, never
   * following a symlink: each component is checked as it is opened. A symlink component is
   * refused (SYMLINK_ESCAPE when it leads out, PATH_CHANGED otherwise), a missing one is
   * NOT_FOUND, a file NOT_A_DIRECTORY. The caller closes the handle.
   */
  async openDir(rel: string): Promise<HeldDir> {
    const dir = await this.tryOpenDir(rel);
    if (!dir) throw new NotFoundError(`directory ${q(rel)}`, { path: rel });
    return dir;
  }

  /** As {@link openDir}, but null when a component does not exist. */
  async tryOpenDir(rel: string): Promise<HeldDir | null> {
    let cur = await this.openRoot();
    try {
      for (const seg of rel === '' ? [] : rel.split('/')) {
        const next = await cur.child(seg);
        await cur.close();
        if (!next) return null;
        cur = next;
      }
      return cur;
    } catch (err) {
      await cur.close();
      throw err;
    }
  }

  /** Runs `fn` with directory `rel` held, closing it however `fn` ends. */
  async withDir<T>(rel: string, fn: (dir: HeldDir) => Promise<T>): Promise<T> {
    const dir = await this.openDir(rel);
    try {
      return await fn(dir);
    } finally {
      await dir.close();
    }
  }

  /** Runs `fn` with the parent of `rel` held and `rel`'s final name, closing the parent afterwards. */
  async withParent<T>(rel: string, fn: (dir: HeldDir, name: string) => Promise<T>): Promise<T> {
    const i = rel.lastIndexOf('/');
    return this.withDir(i < 0 ? '' : rel.slice(0, i), (dir) => fn(dir, rel.slice(i + 1)));
  }

  /** lstat of `rel` reached without following any symlink (the final one included); null when it or a parent is missing. */
  async lstat(rel: string): Promise<BigIntStats | null> {
    const i = rel.lastIndexOf('/');
    const dir = await this.tryOpenDir(i < 0 ? '' : rel.slice(0, i));
    if (!dir) return null;
    try {
      return await dir.lstat(rel.slice(i + 1));
    } finally {
      await dir.close();
    }
  }

  /**
   * Opens `.filestore-staging` (and, with a `txId`, its folder `<txId>`), creating them when asked,
   * with the no-follow walk, and proves each is what only the worker can write: a real directory
   * owned by the worker's uid with no group or other permissions. One of ours that is too open
   * (made by an older release) is closed to 0700; anything else — a symlink, a file, a folder a
   * mount user made — is StagingTamperedError (permanent: retrying would hold the path's lock for
   * ever; the mutation fails and an operator looks): staging holds the backups undo restores.
   *
   * @returns the held folder, or null when it does not exist and `create` is false.
   */
  async openStaging(txId: string | null, create: boolean): Promise<HeldDir | null> {
    const root = await this.openDir('');
    let staging: HeldDir | null = null;
    try {
      staging = await this.openOwnedChild(root, STAGING_DIR, create);
      if (!staging || txId === null) return staging;
      return await this.openOwnedChild(staging, txId, create);
    } finally {
      await root.close();
      if (txId !== null) await staging?.close();
    }
  }

  private async openOwnedChild(parent: HeldDir, name: string, create: boolean): Promise<HeldDir | null> {
    const rel = parent.relOf(name);
    let child = await this.stagingChild(parent, name, rel);
    if (!child && create) {
      try {
        await mkdirNoFollow(parent, name, 0o700);
        await parent.sync();
      } catch (err) {
        if (errnoOf(err) !== 'EEXIST') throw err;
      }
      child = await this.stagingChild(parent, name, rel);
    }
    if (!child) return null;
    try {
      const st = await child.stat();
      const uid = process.geteuid?.();
      if (!st.isDirectory()) throw new StagingTamperedError(this.mountId, `${rel} inside the mount root is not a plain directory`);
      if (uid !== undefined && Number(st.uid) !== uid) {
        throw new StagingTamperedError(this.mountId, `${rel} is owned by uid ${st.uid}, not by the worker (uid ${uid})`);
      }
      if ((Number(st.mode) & 0o077) !== 0) await child.chmod(0o700);
      return child;
    } catch (err) {
      await child.close();
      throw err;
    }
  }

  private async stagingChild(parent: HeldDir, name: string, rel: string): Promise<HeldDir | null> {
    try {
      return await parent.child(name);
    } catch (err) {
      if (['SYMLINK_ESCAPE', 'PATH_CHANGED', 'NOT_A_DIRECTORY'].includes(codeOf(err) ?? '')) {
        throw new StagingTamperedError(this.mountId, `${rel} inside the mount root is not a plain directory`);
      }
      throw err;
    }
  }

  /** Opens the root itself and, with held fds, proves the fd names the root the executor was opened with. */
  private async openRoot(): Promise<HeldDir> {
    if (dirfdTestSeams.forceFallback || !(await procFdAvailable())) {
      const st = await fs.lstat(this.rootReal, { bigint: true }).catch(() => null);
      if (!st?.isDirectory()) throw new MountUnavailableError(this.mountId, 'the mount root is missing or not a directory');
      return new HeldDir(null, this.rootReal, '', this.rootReal, { dev: st.dev, ino: st.ino });
    }
    let fh: FileHandle;
    try {
      fh = await fs.open(this.rootReal, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
    } catch (err) {
      throw new MountUnavailableError(this.mountId, `the mount root cannot be opened (${errnoOf(err) ?? String(err)})`);
    }
    const root = new HeldDir(fh, this.rootReal, '', this.rootReal, null);
    if ((await fs.readlink(`/proc/self/fd/${fh.fd}`).catch(() => null)) !== this.rootReal) {
      await root.close();
      throw new MountUnavailableError(this.mountId, 'the mount root was moved or replaced since the mount was opened');
    }
    return root;
  }
}
