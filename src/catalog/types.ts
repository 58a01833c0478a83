/**
 * The catalog's row types, for code outside src/catalog that reads what catalog functions return.
 * Only src/catalog (and db/) import db/schema: the tables are the catalog's business, and this
 * module is the one door through which their shapes leave it.
 */
import type { NodeRow, ObservedMeta } from '../../db/schema';

export type { DriftEventRow, JournalRow, MountOptions, MountRow, NodeRow, ObservedMeta } from '../../db/schema';

/**
 * What a detection says about a path. `unreadable`: the path exists (or its parent lists it) but
 * its metadata or contents cannot be read (permissions, a host path longer than PATH_MAX, a
 * symlink loop); nothing below it could be compared, so the catalog can neither be confirmed nor
 * contradicted there. The three others come from {@link compareNode}.
 */
export type DriftKind = 'added' | 'modified' | 'removed' | 'unreadable';

/** What the processor records as observed: the backend's metadata (an object's ETag where it has one), and for an unreadable path why (errno or error code). */
export type DriftObserved = ObservedMeta & { unreadable?: string; etag?: string | null };

/** Catalog rows the comparison needs (a projection of nodes); `etag` for object stores. */
export type CatalogNode = Pick<NodeRow, 'path' | 'kind' | 'size' | 'sha256' | 'mode' | 'mtime' | 'state' | 'version' | 'updatedAt' | 'lastJournalId'> &
  Partial<Pick<NodeRow, 'etag'>>;

