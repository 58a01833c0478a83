/**
 * The names Filestore's cross-device move leaves in the user's namespace for a moment (or, after a
 * crash, until the transaction's finalize or undo removes them): `.<name>.filestore-xdev` next to
 * the destination and `.<name>.filestore-moved` next to the source — see `crossDeviceScratch` in
 * local-transfer.ts, which re-exports {@link isFilestoreScratchName} beside it. Its own module so
 * local-fs.ts (the listing) can use it without importing local-transfer.ts, which imports
 * local-fs.ts.
 */

/** `.` + a non-empty base name (no `/`) + one of the two suffixes, exactly as crossDeviceScratch builds them. */
const SCRATCH_NAME = /^\.[^/]+\.filestore-(?:xdev|moved)$/;

/**
 * True when the single path segment `name` is a scratch name of Filestore's cross-device move.
 * Listings skip such entries and drift detection never reports them: they are Filestore's own
 * work in progress, not the user's files.
 */
export function isFilestoreScratchName(name: string): boolean {
  return SCRATCH_NAME.test(name);
}

/** True when any segment of the canonical mount path `rel` is a scratch name (the path is, or lies inside, scratch). */
export function isInFilestoreScratch(rel: string): boolean {
  return rel.split('/').some(isFilestoreScratchName);
}
