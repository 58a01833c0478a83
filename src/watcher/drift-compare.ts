/**
 * Pure comparison of what the catalog says with what the backend shows, for one path.
 * The processor stats, reads the catalog and (only when asked) hashes; this decides.
 */
import type { NodeRow, ObservedMeta } from '../../db/schema';
import type { NodeMeta } from '../executors/executor';

/**
 * What a detection says about a path. `unreadable`: the path exists (or its parent lists it) but
 * its metadata or contents cannot be read (permissions, a host path longer than PATH_MAX, a
 * symlink loop); nothing below it could be compared, so the catalog can neither be confirmed nor
 * contradicted there. The three others come from {@link compareNode}.
 */
export type DriftKind = 'added' | 'modified' | 'removed' | 'unreadable';

/** What the processor records as observed: the backend's metadata, and for an unreadable path why (errno or error code). */
export type DriftObserved = ObservedMeta & { unreadable?: string };

export type Verdict =
  | { drift: null }
  | { drift: DriftKind; reason: string }
  /** Size and mtime agree but the file was touched after the catalog recorded it: compare content. */
  | { drift: null; needsHash: true };

/** Catalog rows the comparison needs (a projection of nodes). */
export type CatalogNode = Pick<NodeRow, 'path' | 'kind' | 'size' | 'sha256' | 'mode' | 'mtime' | 'state' | 'version' | 'updatedAt' | 'lastJournalId'>;

/** Millisecond tolerance: catalog times are ms-precision ISO strings; the disk has ns. */
const MTIME_SLACK_MS = 1;

export function observedOf(live: NodeMeta | null, sha256?: string | null): ObservedMeta {
  if (!live) return { kind: null, size: null, mtime: null, mode: null };
  return { kind: live.kind, size: live.size, mtime: live.mtime, mode: live.mode, ...(sha256 !== undefined ? { sha256 } : {}) };
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
  return (
    a.kind === observed.kind &&
    a.size === observed.size &&
    a.mtime === observed.mtime &&
    a.mode === observed.mode &&
    (a.unreadable ?? null) === (observed.unreadable ?? null)
  );
}
