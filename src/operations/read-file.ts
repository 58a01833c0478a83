/**
 * Reading a file back through Filestore: stat it on its backend, name its version (ETag) and open
 * a stream of it — whole or a byte range — through the executor's `openRead`. The HTTP API's
 * download, the CLI's `get`/`cat` and the SDK's `openRead` all go through here, so they agree on
 * what a version is and on which paths may be read (the same mount-relative rules as mutations).
 */
import type { Readable } from 'node:stream';
import type { Db } from '../../db/client';
import { getMount } from '../catalog/mounts';
import { nodeAt } from '../catalog/nodes';
import type { NodeRow } from '../catalog/types';
import { IsADirectoryError, NotFoundError, RangeNotSatisfiableError, SourceChangedError } from '../errors';
import type { ExecutorRegistry } from '../executor-registry';
import type { NodeMeta } from '../executors/executor';
import { normalizeMountPath } from '../paths';

export interface FileReaderDeps {
  db: Db;
  executors: ExecutorRegistry;
}

/** A file as its backend shows it now, and the catalog's record of it. */
export interface FileVersion {
  mountId: string;
  path: string;
  meta: NodeMeta;
  /** The catalog's node (null when the catalog does not know the path). */
  node: NodeRow | null;
  /**
   * Strong `"<sha256>"` when the backend's size and mtime are the catalog's committed version (so
   * the catalog's hash is the content's), else weak `W/"<size>-<mtime>"`: a file changed behind
   * Filestore's back is never served under the hash of what it was.
   */
  etag: string;
}

/** Inclusive byte range, as HTTP counts it. */
export interface ByteRange {
  start: number;
  end: number;
}

/** Stats `mountId:filePath` on its backend: NOT_FOUND when absent, IS_A_DIRECTORY for a directory. */
export async function statFile(deps: FileReaderDeps, mountId: string, filePath: string): Promise<FileVersion> {
  const p = normalizeMountPath(filePath);
  await getMount(deps.db, mountId);
  const executor = await deps.executors.get(mountId);
  const meta = await executor.stat(p);
  if (!meta) throw new NotFoundError(`${mountId}:${p}`, { mountId, path: p });
  if (meta.kind !== 'file') throw new IsADirectoryError(`${mountId}:${p}`, { mountId, path: p });
  const node = await nodeAt(deps.db, mountId, p);
  return { mountId, path: p, meta, node, etag: etagOf(meta, node) };
}

function etagOf(meta: NodeMeta, node: NodeRow | null): string {
  const mtime = meta.mtime ? new Date(meta.mtime).getTime() : 0;
  const committed =
    node !== null &&
    node.state === 'ACTIVE' &&
    node.kind === 'file' &&
    node.sha256 !== null &&
    Number(node.size) === meta.size &&
    // S3: the object's own ETag (and version) must be the committed one — a stored sha256 header is
    // only the writer's claim, and LastModified has one-second steps. Local: size and mtime.
    (meta.etag
      ? meta.etag === node.etag && (meta.versionId ?? null) === (node.versionId ?? null)
      : node.mtime !== null && new Date(node.mtime).getTime() === mtime);
  return committed ? `"${node.sha256}"` : `W/"${meta.size}-${mtime}"`;
}

/**
 * Opens a stream of exactly `version` (its `range` only when given; `range.end` inclusive):
 * PRECONDITION_FAILED when the file is another version by now — stat it again and retry (see
 * {@link openCurrentFile}).
 */
export async function openFile(deps: FileReaderDeps, version: FileVersion, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
  const executor = await deps.executors.get(version.mountId);
  return executor.openRead(version.path, { ...(range ? { range } : {}), ...(signal ? { signal } : {}), expect: version.meta });
}

/** How often a read re-stats a file that keeps changing between its stat and its open. */
const OPEN_ATTEMPTS = 3;

/**
 * Stats `mountId:filePath` and opens that version, re-stating when it changed in between;
 * `prepare` sees each version before it is opened (the HTTP route answers 304 or sets headers
 * there) and may return null to open nothing. SOURCE_CHANGED when it changed on every attempt.
 */
export async function openCurrentFile(
  deps: FileReaderDeps,
  mountId: string,
  filePath: string,
  prepare: (version: FileVersion) => { range?: ByteRange } | null,
  signal?: AbortSignal,
): Promise<{ version: FileVersion; stream: Readable | null }> {
  for (let attempt = 1; ; attempt++) {
    const version = await statFile(deps, mountId, filePath);
    const plan = prepare(version);
    if (plan === null) return { version, stream: null };
    try {
      return { version, stream: await openFile(deps, version, plan.range, signal) };
    } catch (err) {
      if ((err as { code?: string }).code !== 'PRECONDITION_FAILED') throw err;
      if (attempt >= OPEN_ATTEMPTS) throw new SourceChangedError(`${mountId}:${version.path} kept changing while it was opened; try again`, { mountId, path: version.path });
    }
  }
}

/**
 * The one range of an HTTP `Range` header (`bytes=a-b`, `bytes=a-`, `bytes=-n`) within `size`
 * bytes; null for no header or one to ignore (another unit, several ranges — answered whole, as
 * RFC 9110 allows); RANGE_NOT_SATISFIABLE when it selects nothing.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | null {
  if (header === undefined) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) throw new RangeNotSatisfiableError(header, size);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return null;
  }
  if (!Number.isSafeInteger(start) || start >= size || end < start) throw new RangeNotSatisfiableError(header, size);
  return { start, end };
}
