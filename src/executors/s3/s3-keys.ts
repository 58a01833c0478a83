/**
 * Path ↔ key translation for S3 mounts, in ONE place: every key the S3 backend sends and every
 * key it reads back from a listing goes through here.
 *
 * A mount is a bucket plus a key prefix (`S3Location.prefix`: no leading or trailing '/', '' for
 * the whole bucket). A canonical mount path `a/b.txt` (see `normalizeMountPath`) is the key
 * `<prefix>/a/b.txt`. Directories are key prefixes: `a/` exists as soon as a key lies below it;
 * an explicit `mkdir a` writes the empty marker object `<prefix>/a/` so an empty directory
 * survives. Filestore's own objects (undo backups, staged parts) live under
 * `<prefix>/.filestore-staging/<txId>/`, which no mount path can name.
 *
 * S3 keys are at most {@link S3_MAX_KEY_BYTES} bytes of UTF-8; longer ones are refused here with
 * KEY_TOO_LONG before any request is made.
 */
import { InvalidPathError, InvalidRequestError, KeyTooLongError } from '../../errors';
import { normalizeMountPath, STAGING_DIR } from '../../paths';

/** S3's limit on a key, in bytes of UTF-8. */
export const S3_MAX_KEY_BYTES = 1024;

/** Top-level folder under a mount's prefix that holds Filestore's staging objects (same name as on local mounts). */
export const S3_STAGING_DIR = STAGING_DIR;

/**
 * Refuses a key longer than S3 allows.
 *
 * @throws KeyTooLongError (KEY_TOO_LONG) with the key's byte length and the limit in its message.
 */
export function assertKeyLength(key: string, details: Record<string, unknown> = {}): string {
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > S3_MAX_KEY_BYTES) throw new KeyTooLongError(key, S3_MAX_KEY_BYTES, { bytes, ...details });
  return key;
}

/** `prefix/rest`, or just `rest` for the whole-bucket prefix ''. */
function underPrefix(prefix: string, rest: string): string {
  return prefix === '' ? rest : `${prefix}/${rest}`;
}

/** The path must already be canonical: a non-canonical one here is a bug in the caller, not user input. */
function assertCanonical(path: string, what: string): void {
  if (normalizeMountPath(path, { allowRoot: true }) !== path) {
    throw new InvalidPathError(`${what}: ${JSON.stringify(path)} is not a canonical mount path`, { path });
  }
}

/**
 * The object key of a file at canonical mount path `path`.
 *
 * @throws InvalidPathError for the mount root (it is a prefix, never an object) or a non-canonical path;
 *   KeyTooLongError when prefix + path exceeds 1,024 bytes.
 */
export function keyOf(prefix: string, path: string): string {
  assertCanonical(path, 'keyOf');
  if (path === '') throw new InvalidPathError('the mount root is a key prefix, not an object', { path });
  return assertKeyLength(underPrefix(prefix, path), { path });
}

/**
 * The marker object an explicit `mkdir` writes for directory `path`: its key with a trailing '/'.
 * The root has none (the mount's prefix exists as long as the mount does).
 *
 * @throws InvalidPathError for the root or a non-canonical path; KeyTooLongError.
 */
export function dirMarkerKey(prefix: string, path: string): string {
  assertCanonical(path, 'dirMarkerKey');
  if (path === '') throw new InvalidPathError('the mount root has no directory marker', { path });
  return assertKeyLength(`${underPrefix(prefix, path)}/`, { path });
}

/**
 * The `Prefix` of a ListObjectsV2 request for the children of directory `dir` ('' = mount root):
 * always ends in '/' (so `a` never lists `ab`), except for the root of a whole-bucket mount, ''.
 * Use `Delimiter: '/'` for direct children, none for the whole subtree.
 */
export function listPrefixOf(prefix: string, dir: string): string {
  assertCanonical(dir, 'listPrefixOf');
  const joined = dir === '' ? prefix : underPrefix(prefix, dir);
  return joined === '' ? '' : assertKeyLength(`${joined}/`, { path: dir });
}

/** What a listed key is, in mount terms. */
export interface KeyEntry {
  path: string;
  /** 'directory' for a `dir/` marker object, 'file' otherwise. */
  kind: 'file' | 'directory';
}

/**
 * The mount path and kind a key stands for, or null when the key is not a mount node:
 * outside the prefix (including the prefix itself and its own `prefix/` marker), under the
 * staging folder, the reserved mount-marker name, or a key no canonical path spells (`a//b`,
 * `./a`, `a/../b`, a segment over 255 bytes). Listings skip such keys; the staging ones are
 * Filestore's, the others were written around it and cannot be addressed through the mount.
 */
export function entryOfKey(prefix: string, key: string): KeyEntry | null {
  let rest: string;
  if (prefix === '') rest = key;
  else if (key.startsWith(`${prefix}/`)) rest = key.slice(prefix.length + 1);
  else return null;
  let kind: KeyEntry['kind'] = 'file';
  if (rest.endsWith('/')) {
    kind = 'directory';
    rest = rest.slice(0, -1);
  }
  if (rest === '') return null;
  let path: string;
  try {
    path = normalizeMountPath(rest);
  } catch {
    // Reserved (staging, marker), traversal, NUL or over-long segment: not a node of the mount.
    return null;
  }
  // normalizeMountPath drops '.' and empty segments; a key that needed that is not this path's key.
  return path === rest ? { path, kind } : null;
}

/** The mount path of a key (a `dir/` marker gives its directory's path), or null; see {@link entryOfKey}. */
export function pathOfKey(prefix: string, key: string): string | null {
  return entryOfKey(prefix, key)?.path ?? null;
}

/** True for a key that is a directory marker (`…/`). */
export function isDirMarkerKey(key: string): boolean {
  return key.endsWith('/');
}

// Transaction ids are journal ids (uuids); anything that could add a key segment is refused.
const TX_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

function assertTxId(txId: string): void {
  if (!TX_ID_PATTERN.test(txId)) throw new InvalidRequestError(`transaction id ${JSON.stringify(txId)} is not a valid staging name`, { txId });
}

/** `<prefix>/.filestore-staging/`: everything Filestore stages on this mount lies below it (the janitor lists it). */
export function stagingRootPrefix(prefix: string): string {
  return `${underPrefix(prefix, S3_STAGING_DIR)}/`;
}

/** `<prefix>/.filestore-staging/<txId>/`: transaction `txId`'s staging objects (finalize deletes below it). */
export function stagingTxPrefix(prefix: string, txId: string): string {
  assertTxId(txId);
  return `${stagingRootPrefix(prefix)}${txId}/`;
}

/**
 * Key of a staging object of transaction `txId` (an undo backup of an overwritten object, …).
 * `name` is relative — it may have '/' segments (a backup keeps the mount path it came from) —
 * but no empty, '.' or '..' segment and no NUL.
 *
 * @throws InvalidRequestError for a bad txId or name; KeyTooLongError.
 */
export function stagingKey(prefix: string, txId: string, name: string): string {
  const segments = name.split('/');
  if (name.includes('\0') || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new InvalidRequestError(`staging object name ${JSON.stringify(name.replace(/\0/g, '\\0'))} is not a relative name`, { name });
  }
  return assertKeyLength(`${stagingTxPrefix(prefix, txId)}${name}`, { txId });
}

/** The transaction id a staging key belongs to, or null for a key outside `<prefix>/.filestore-staging/<txId>/`. */
export function txIdOfStagingKey(prefix: string, key: string): string | null {
  const root = stagingRootPrefix(prefix);
  if (!key.startsWith(root)) return null;
  const rest = key.slice(root.length);
  const i = rest.indexOf('/');
  if (i <= 0) return null;
  const txId = rest.slice(0, i);
  return TX_ID_PATTERN.test(txId) ? txId : null;
}
