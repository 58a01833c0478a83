/**
 * Pure comparison of what the catalog says with what the backend shows, for one path.
 * The processor stats, reads the catalog and (only when asked) hashes; this decides.
 */
import type { CatalogNode, DriftKind, DriftObserved } from '../catalog/types';
import type { NodeMeta } from '../executors/executor';

export type { CatalogNode, DriftKind, DriftObserved } from '../catalog/types';

export type Verdict =
  | { drift: null }
  | { drift: DriftKind; reason: string }
  /** Size and mtime agree but the file was touched after the catalog recorded it: compare content. */
  | { drift: null; needsHash: true };

/** Millisecond tolerance: catalog times are ms-precision ISO strings; the disk has ns. */
const MTIME_SLACK_MS = 1;

export function observedOf(live: NodeMeta | null, sha256?: string | null): DriftObserved {
  if (!live) return { kind: null, size: null, mtime: null, mode: null };
  return {
    kind: live.kind,
    size: live.size,
    mtime: live.mtime,
    mode: live.mode,
    ...(sha256 !== undefined ? { sha256 } : {}),
    ...(live.etag ? { etag: live.etag } : {}),
  };
}

/** The observation of an unreadable path: whatever metadata could still be had (a directory whose listing was refused has some), and why. */
export function unreadableObserved(live: NodeMeta | null, reason: string): DriftObserved {
  return { ...observedOf(live), unreadable: reason };
}

function ms(iso: string | null | undefined): number {
  return iso ? Date.parse(iso.includes('T') ? iso : iso.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')) : NaN;
}

/**
 * Decides whether `live` (the backend, null when absent) drifted from `row` (the catalog, null
 * when it never heard of the path). A DELETED row counts as absent. Directories compare kind and
 * mode only: their mtime moves whenever a child changes, Filestore's own writes included.
 * `contentHash`, when given, is the live file's sha256 (second pass after `needsHash`).
 */
export function compareNode(row: CatalogNode | null, live: NodeMeta | null, contentHash?: string): Verdict {
  const known = row && row.state !== 'DELETED' ? row : null;
  if (!known && !live) return { drift: null };
  if (!known) return { drift: 'added', reason: `${live!.kind} not in the catalog` };
  if (!live) return { drift: 'removed', reason: `catalogued ${known.kind} is gone` };
  if (known.kind !== live.kind) return { drift: 'modified', reason: `was a ${known.kind}, now a ${live.kind}` };
  if (known.mode !== null && live.mode !== null && (known.mode & 0o7777) !== (live.mode & 0o7777)) {
    return { drift: 'modified', reason: `mode ${(known.mode & 0o7777).toString(8)} → ${(live.mode & 0o7777).toString(8)}` };
  }
  if (live.kind === 'directory') return { drift: null };
  if (known.size !== live.size) return { drift: 'modified', reason: `size ${known.size} → ${live.size}` };
  // A hash the object carries (S3: the sha256 Filestore stores in its metadata) that disagrees.
  if (known.sha256 && live.sha256 && known.sha256 !== live.sha256) return { drift: 'modified', reason: 'content differs (stored sha256)' };
  // An object store names each object version by its ETag: where both sides have one it decides,
  // and times are not compared (S3 reports LastModified to the millisecond in a listing and to the
  // second in HeadObject, so Filestore's own writes would differ by a fraction of a second).
  if (known.etag && live.etag) {
    return known.etag === live.etag ? { drift: null } : { drift: 'modified', reason: `etag ${known.etag} → ${live.etag}` };
  }
  const knownMtime = ms(known.mtime);
  const liveMtime = ms(live.mtime);
  if (!Number.isNaN(knownMtime) && Math.abs(knownMtime - liveMtime) >= MTIME_SLACK_MS) {
    return { drift: 'modified', reason: `mtime ${known.mtime} → ${live.mtime}` };
  }
  if (contentHash !== undefined) {
    return known.sha256 && contentHash !== known.sha256 ? { drift: 'modified', reason: 'content differs (sha256)' } : { drift: null };
  }
  // Doubt: same size and mtime, but the inode changed status after the catalog row was written —
  // e.g. edited in place and `touch -d` put the old mtime back. Filestore's own writes land
  // (rename) before their commit, so they never look like this.
  if (known.sha256 && live.ctime && Date.parse(live.ctime) > known.updatedAt.getTime()) return { drift: null, needsHash: true };
  return { drift: null };
}

/** True when a new detection repeats the last open one for the path (periodic scans must not pile up events). */
export function sameDetection(
  prev: { kind: DriftKind; observed: DriftObserved } | undefined,
  kind: DriftKind,
  observed: DriftObserved,
): boolean {
  if (!prev || prev.kind !== kind) return false;
  const a = prev.observed;
  // An object's ETag names its version; its time is reported at different precisions by a
  // listing and by HeadObject, so two looks at one version may disagree on it.
  const sameVersion = a.etag && observed.etag ? a.etag === observed.etag : a.mtime === observed.mtime;
  return (
    a.kind === observed.kind &&
    a.size === observed.size &&
    sameVersion &&
    a.mode === observed.mode &&
    (a.unreadable ?? null) === (observed.unreadable ?? null)
  );
}
