/**
 * Mount-relative path rules, in one place. Every path that reaches a backend or the catalog went
 * through {@link normalizeMountPath} first; local backends also confirm with
 * {@link resolveInsideRoot} that no symlink leads out of the mount.
 *
 * Canonical form: segments joined by '/', no leading or trailing '/', '' for the mount root.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  AbsolutePathError,
  AccessDeniedError,
  InvalidPathError,
  NulByteError,
  PathTraversalError,
  ReservedPathError,
  SymlinkEscapeError,
} from './errors';

/** Folder inside every local mount where writes are staged and backups kept (same filesystem → atomic renames). */
export const STAGING_DIR = '.filestore-staging';

/**
 * Identity marker at the root of every local mount (`{"mountId","instanceId"}`, written by
 * `mount add` / `mount mark`): a worker serves the mount only where it matches the catalog.
 * Reserved like the staging folder, so no mutation can forge, move or delete it.
 */
export const MOUNT_MARKER = '.filestore-mount.json';

/**
 * True for a top-level name that belongs to the marker: the marker itself and its temporary
 * siblings (`.filestore-mount.json.<random>.tmp`) used to replace it atomically. Listings, drift
 * scans and watchers skip these names at the mount root.
 */
export function isMountMarkerName(name: string): boolean {
  return name === MOUNT_MARKER || name.startsWith(`${MOUNT_MARKER}.`);
}

export const MAX_PATH_BYTES = 4096;
export const MAX_SEGMENT_BYTES = 255;

/**
 * Validates and normalises a mount-relative path. Refuses, each with its own error type:
 * non-strings, NUL bytes, absolute paths (`/x`, `\\x`, `C:\\x`), `..` segments, over-long
 * paths or segments, and Filestore's reserved top-level names (the staging folder and the mount
 * identity marker). `.` and empty segments are dropped.
 */
export function normalizeMountPath(input: unknown, opts: { allowRoot?: boolean } = {}): string {
  if (typeof input !== 'string') throw new InvalidPathError(`path must be a string, got ${typeof input}`);
  if (input.includes('\0')) throw new NulByteError(input.replace(/\0/g, '\\0'));
  if (input.startsWith('/') || input.startsWith('\\') || /^[A-Za-z]:[\\/]/.test(input)) throw new AbsolutePathError(input);
  if (Buffer.byteLength(input) > MAX_PATH_BYTES) throw new InvalidPathError(`path is longer than ${MAX_PATH_BYTES} bytes`);
  const segments: string[] = [];
  for (const segment of input.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') throw new PathTraversalError(input);
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) {
      throw new InvalidPathError(`path segment ${JSON.stringify(segment.slice(0, 32))}… is longer than ${MAX_SEGMENT_BYTES} bytes`);
    }
    segments.push(segment);
  }
  if (segments[0] === STAGING_DIR || (segments.length > 0 && isMountMarkerName(segments[0]))) throw new ReservedPathError(input);
  const normalized = segments.join('/');
  if (normalized === '' && !opts.allowRoot) throw new InvalidPathError('this operation needs a path inside the mount, not the mount root');
  return normalized;
}

/** Parent of a canonical path ('' for top-level entries and the root). */
export function parentPath(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

/** Last segment of a canonical path. */
export function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** Joins canonical paths. */
export function joinPath(...parts: string[]): string {
  return parts.filter((p) => p !== '').join('/');
}

/** Every proper ancestor of a canonical path, nearest last (root '' excluded). */
export function ancestorsOf(p: string): string[] {
  const segments = p.split('/');
  const out: string[] = [];
  for (let i = 1; i < segments.length; i++) out.push(segments.slice(0, i).join('/'));
  return out;
}

/** True when `a` equals `b` or one contains the other. */
export function pathsOverlap(a: string, b: string): boolean {
  if (a === b || a === '' || b === '') return true;
  return a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
}

/** True when `inner` is strictly below `outer`. */
export function isStrictlyInside(inner: string, outer: string): boolean {
  return outer === '' ? inner !== '' : inner.startsWith(`${outer}/`);
}

/**
 * Resolves a canonical mount path to an absolute host path and proves, with realpath, that the
 * nearest existing ancestor (and the path itself when it exists) lies inside the mount root.
 * A symlink that points outside the mount is refused; one that stays inside is allowed.
 *
 * @param rootReal - the mount root, already passed through `fs.realpath`.
 */
export async function resolveInsideRoot(rootReal: string, rel: string): Promise<string> {
  const abs = rel === '' ? rootReal : path.join(rootReal, ...rel.split('/'));
  await assertResolvesInside(rootReal, abs, rel, 0);
  return abs;
}

const inside = (rootReal: string, real: string) => real === rootReal || real.startsWith(rootReal + path.sep);

/** Proves the real location of `abs` (or of its nearest existing ancestor) is inside the root. */
async function assertResolvesInside(rootReal: string, abs: string, rel: string, depth: number): Promise<void> {
  // Dangling links can chain; past a few hops the kernel would say ELOOP too.
  if (depth > 8) throw new InvalidPathError(`path ${JSON.stringify(rel)} goes through too many symlinks`, { path: rel });
  for (let probe = abs; ; probe = path.dirname(probe)) {
    try {
      if (!inside(rootReal, await fs.realpath(probe))) throw new SymlinkEscapeError(rel);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') throw new InvalidPathError(`path ${JSON.stringify(rel)} is a symlink loop`, { path: rel });
      if (code === 'EACCES' || code === 'EPERM') throw new AccessDeniedError(`resolving ${JSON.stringify(rel)}`, { path: rel });
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      // A dangling symlink: its target must resolve inside too, through whatever part of it exists.
      const link = await fs.readlink(probe).catch(() => null);
      if (link !== null) await assertResolvesInside(rootReal, path.resolve(path.dirname(probe), link), rel, depth + 1);
      if (probe === rootReal || path.dirname(probe) === probe) return;
    }
  }
}
