/**
 * The typed state an S3 transaction keeps in its plan (the `state` of a {@link TxPlan}, saved in
 * the catalog through the PlanStore before anything destructive happens and after every step
 * that must survive a crash). Everything undo and finalize act on is named here — keys, ETags,
 * version ids, upload ids — so neither ever guesses from what the bucket holds now.
 *
 * Ownership: every object a transaction writes carries `x-amz-meta-filestore-tx: <txId>`
 * ({@link TX_META}). That is how a retry recognises its own earlier write after a crash between
 * the request and the plan save (a conditional request then answers 412), and how undo tells the
 * object it wrote from one someone else put there since (which it leaves alone and reports).
 */
import type { TxPlan } from '../tx-driver';

/** User-metadata key (x-amz-meta-…) naming the transaction that wrote an object. */
export const TX_META = 'filestore-tx';
/** User-metadata key (x-amz-meta-…) holding the whole object's hex sha256. */
export const SHA256_META = 'sha256';

/** One version of one object, as S3 identifies it. */
export interface ObjectRef {
  /** ETag without quotes. */
  etag: string;
  /** Version id in a versioned bucket; null otherwise. */
  versionId: string | null;
}

/** The object a transaction replaces or deletes, as seen when planning. */
export interface PreviousObject extends ObjectRef {
  size: number;
  /**
   * Staging key of its server-side copy, recorded before the copy is made (unversioned buckets).
   * In a versioned bucket there is none: `versionId` names what undo puts back.
   */
  backupKey?: string;
}

/** What the transaction put at its target key. */
export interface WrittenObject extends ObjectRef {
  size: number;
  sha256: string;
}

/** A source object of a copy or move, as seen when planning. */
export interface SourceObject extends ObjectRef {
  key: string;
  size: number;
  /** Hex sha256: from the object's metadata, from the catalog (`known`), or computed by reading it once. */
  sha256: string | null;
  /** Its user metadata (without {@link TX_META}), carried to the copy. */
  metadata: Record<string, string>;
}

/** A `dir/` marker this transaction writes (mkdir, or the parent a delete or move would leave empty). */
export interface MarkerRecord {
  key: string;
  /** Set once the marker landed and is ours (a 412 there means someone else's marker: not recorded). */
  etag?: string;
}

/** A multipart upload this transaction started (its own, or a part copy above 5 GiB). */
export interface UploadRecord {
  uploadId: string;
  partSize: number;
  key: string;
  /** The sha256 the upload was created with (its metadata): a resume whose source now hashes otherwise starts over. */
  sha256?: string;
  /** True once it was completed (or aborted): nothing left to abort. */
  closed?: boolean;
}

/** A prefix copy, move or delete, walked in key order in bounded batches; `cursor` is the last key done. */
export interface TreeRecord {
  /** Listing prefix of the source directory (`…/`). */
  srcPrefix: string;
  /** Listing prefix of the destination (copy / move) or of the staging backup (delete). */
  dstPrefix: string;
  phase: 'copy' | 'delete' | 'done';
  cursor: string | null;
  /** Objects handled so far, for progress. */
  done: number;
  /**
   * Delete / move: batches the copy phase recorded, each a staging manifest of the keys copied and
   * the ETag each was copied at (s3-tree-delete.ts), so the delete phase deletes a source only while
   * it is still that version.
   */
  batches?: number;
  /** Delete / move: batches whose sources the delete phase has deleted (its resume point). */
  deleted?: number;
}

interface StateBase {
  /** Whether the bucket keeps versions (checked once per executor): undo then uses version ids, not backup copies. */
  versioned: boolean;
  /** Directories the op makes appear (parents first), reported in the outcome. */
  createdDirs: string[];
  /** A staging object (`open`) marks the transaction as pending until finalize; true once written. */
  opened?: boolean;
  /** A parent marker written so that removing the last entry does not make the parent vanish. */
  parentMarker?: MarkerRecord;
  /** Keys undo found holding someone else's write and left as they were. */
  leftAlone?: string[];
  /** Part copies (objects uploaded in parts, or over 5 GiB) other than a file op's own `upload`: tree copies, backups, undo's restores. */
  partCopies?: UploadRecord[];
}

/** State of a write, a file copy or a file move. */
export interface S3FileState extends StateBase {
  kind: 'file';
  /** Target key. */
  key: string;
  /** What sat at the target when planning (null: a create). */
  previous: PreviousObject | null;
  /** Copy / move: the source object. */
  source?: SourceObject;
  upload?: UploadRecord;
  /** A stream went up through lib-storage, whose upload id is never reported: its leftovers are found by key. */
  streamed?: boolean;
  written?: WrittenObject;
  /** Move: the source was deleted (after the copy was verified). */
  sourceDeleted?: boolean;
}

/** State of a mkdir, a delete of a file, or a directory copy, move or delete. */
export interface S3DirState extends StateBase {
  kind: 'directory';
  /** mkdir: the marker of the new directory. */
  marker?: MarkerRecord;
  /** copy / move / delete of a directory. */
  tree?: TreeRecord;
}

/** State of a delete of one file. */
export interface S3DeleteFileState extends StateBase {
  kind: 'delete-file';
  key: string;
  previous: PreviousObject;
  deleted?: boolean;
  /** Versioned bucket: the delete marker our DeleteObject made; undo deletes it and the previous version is current again. */
  deleteMarker?: string | null;
}

export type S3PlanState = S3FileState | S3DirState | S3DeleteFileState;

/** The plan of one S3 transaction. */
export type S3Plan = TxPlan<S3PlanState>;
