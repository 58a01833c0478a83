/**
 * The one backend contract. Local disks implement it now, S3 later; callers ask
 * {@link Executor.capabilities} what a backend can do instead of branching on its type.
 * What a backend cannot do throws `UnsupportedError`; it is never faked.
 *
 * Every mutation is staged and reversible under a transaction id (the journal id):
 *  - running the same mutation twice with the same `txId` reaches the same state and returns the
 *    same outcome (activities are at-least-once);
 *  - {@link Executor.undo} puts back what the transaction changed, whether it finished, failed
 *    half-way, or never started; it is idempotent;
 *  - {@link Executor.finalize} drops the transaction's staging and backups once it is committed
 *    (or undone); it is idempotent.
 * Paths are canonical mount-relative paths (see `normalizeMountPath`).
 */
import type { Readable } from 'node:stream';

export type BackendKind = 'local' | 's3';
export type NodeKind = 'file' | 'directory';
export type MutationOp = 'write' | 'mkdir' | 'move' | 'copy' | 'delete';

/** What a backend can do. */
export interface Capabilities {
  /** rename() replaces a path atomically, so readers never see a partial file. */
  atomicRename: boolean;
  /** Copy without moving bytes through Filestore. */
  serverSideCopy: boolean;
  /** Resumable multi-part uploads. */
  multipart: boolean;
  /** POSIX mode / uid / gid are kept and reported. */
  posixMode: boolean;
  /** Real directories (not just key prefixes). */
  directories: boolean;
}

/** Metadata of one node as the backend reports it (what the catalog records). */
export interface NodeMeta {
  path: string;
  kind: NodeKind;
  size: number;
  /** Hex sha256 of the content; null for directories and where it is not known without a second read. */
  sha256: string | null;
  etag?: string | null;
  storageClass?: string | null;
  mode: number | null;
  uid: number | null;
  gid: number | null;
  /** ISO-8601 modification time. */
  mtime: string;
  /** Backend identity of this exact object version (local: `dev:ino`; S3: etag/version). Used by verify. */
  identity: string | null;
  /** ISO-8601 status-change time where the backend has one (POSIX ctime): drift detection's hint that a file was touched even though its mtime was put back. */
  ctime?: string | null;
}

/** Where the bytes of a write come from. Only the executor reads them; they never enter a workflow payload. */
export type WriteSource =
  | { kind: 'file'; path: string }
  | { kind: 'inline'; data: Buffer }
  | { kind: 'stream'; stream: Readable };

/** Metadata of a source file already in the catalog; lets a copy skip re-hashing when the file is unchanged. */
export interface KnownContent {
  size: number;
  mtime: string;
  sha256: string;
}

export interface MutationOptions {
  /** Transaction id (the journal id): names the staging folder and makes the call idempotent. */
  txId: string;
  /** Called as bytes are written (for activity heartbeats and progress). */
  onProgress?: (bytesDone: number) => void;
  /** Aborts a long copy or write (activity cancellation). */
  signal?: AbortSignal;
  /**
   * Runs before every durable, destructive step; throws when the caller may no longer act on the
   * transaction (its fence was lost, its attempt was cancelled or superseded). What a throwing
   * guard stopped is left exactly as it was — never undone inline — for the attempt that holds
   * the transaction now.
   */
  guard?: () => Promise<void>;
  /**
   * The paths are real locations the caller already resolved (with {@link Executor.resolve}) and
   * locked: if one resolves elsewhere now — a directory on the way was swapped for a symlink since
   * — the mutation is refused with PATH_CHANGED instead of following it. @defaultValue false
   */
  claimedPaths?: boolean;
}

/** Options of {@link Executor.undo} and {@link Executor.finalize}. */
export interface TxControlOptions {
  /** As {@link MutationOptions.guard}. */
  guard?: () => Promise<void>;
}

/** Options of the mutations that give a file a mode; see special-modes.ts. */
export interface SpecialModeOptions {
  /**
   * Keep or set setuid, setgid and sticky bits (the mount's `allowSpecialModes` option). Without
   * it an explicit `mode` carrying them is refused with INVALID_REQUEST before anything moves, and
   * modes taken from a source or a replaced file lose them. @defaultValue false
   */
  allowSpecialModes?: boolean;
}

export interface WriteOptions extends MutationOptions, SpecialModeOptions {
  /** Replace an existing file. @defaultValue false */
  overwrite?: boolean;
  /** Create missing parent directories. @defaultValue true */
  createParents?: boolean;
  /** POSIX mode for a new file (an overwritten file keeps its mode unless this is given). */
  mode?: number;
  /**
   * Directories a `{ kind: 'file' }` source may lie under (FILESTORE_SOURCE_ROOTS): compared by
   * real location, reached without symlinks, and only a regular file is read. Absent or empty
   * refuses every file source with SOURCE_NOT_ALLOWED. @defaultValue [] (file sources refused)
   */
  sourceRoots?: readonly string[];
  /** Refuse sources larger than this many bytes. */
  maxBytes?: number;
  /** If given, the written content must hash to this (hex sha256), else the write is refused. */
  expectedSha256?: string;
}

export interface MkdirOptions extends MutationOptions {
  /** Create missing parents, and succeed if the directory exists. @defaultValue true */
  parents?: boolean;
}

export interface CopyOptions extends MutationOptions, SpecialModeOptions {
  overwrite?: boolean;
  createParents?: boolean;
  /** Copy a directory with everything below it. @defaultValue false */
  recursive?: boolean;
  /** Most entries a directory copy may produce. */
  maxEntries?: number;
  /** Catalogued content of source files, keyed by path relative to the copy source ('' for a file source). */
  known?: Record<string, KnownContent>;
}

export interface MoveOptions extends MutationOptions, SpecialModeOptions {
  overwrite?: boolean;
  createParents?: boolean;
}

export interface DeleteOptions extends MutationOptions {
  /** Remove a directory with everything below it. @defaultValue false */
  recursive?: boolean;
}

/** What a mutation did, in catalog terms. */
export interface MutationOutcome {
  op: MutationOp;
  /** Nodes that now exist with this metadata (created dirs, written / copied files, move targets). */
  upserted: NodeMeta[];
  /** Paths that left the namespace together with everything below them (delete, move source). */
  removed: string[];
  /** For a move: the subtree at `from` now lives at `to`. */
  moved?: { from: string; to: string };
  /**
   * Set when the upserted nodes were too many for a workflow payload (a tree copy): they were
   * stored in the catalog's `outcome_nodes` under the transaction's journal id, `upserted` is
   * then empty, and `count` says how many rows to expect there. See `src/catalog/outcomes.ts`.
   */
  upsertedRef?: { count: number };
  /** Bytes written to the backend. */
  bytesWritten: number;
}

export interface ListOptions {
  /** Walk the whole subtree, not just the direct children. @defaultValue false */
  recursive?: boolean;
  /** Stop after this many entries. */
  limit?: number;
  /**
   * Receives each entry below the listed directory that cannot be read (permissions, a path too
   * long for the host, a symlink loop) with its typed error; the listing skips it and goes on.
   * Without it such an entry fails the whole listing. Drift scans use it so one unreadable entry
   * becomes one report instead of a failed scan.
   */
  onUnreadable?: (path: string, err: unknown) => void;
}

export interface Executor {
  readonly mountId: string;
  readonly backend: BackendKind;
  capabilities(): Capabilities;
  /** Metadata of a node, or null when nothing is there. sha256 is null (stat never reads content). */
  stat(path: string): Promise<NodeMeta | null>;
  /** Hex sha256 of a file's current content (reads it; for drift checks, never on the write path). */
  checksum(path: string): Promise<string>;
  /** Children of a directory (or its whole subtree), staging excluded, sorted by path. */
  list(path: string, opts?: ListOptions): Promise<NodeMeta[]>;
  mkdir(path: string, opts: MkdirOptions): Promise<MutationOutcome>;
  write(path: string, source: WriteSource, opts: WriteOptions): Promise<MutationOutcome>;
  copy(src: string, dst: string, opts: CopyOptions): Promise<MutationOutcome>;
  move(src: string, dst: string, opts: MoveOptions): Promise<MutationOutcome>;
  delete(path: string, opts: DeleteOptions): Promise<MutationOutcome>;
  /** Reverses transaction `txId`; `undone` is false when it had changed nothing. Idempotent. */
  undo(txId: string, opts?: TxControlOptions): Promise<{ undone: boolean }>;
  /** Drops transaction `txId`'s staging and backups. Idempotent. */
  finalize(txId: string, opts?: TxControlOptions): Promise<void>;
  /** Transaction ids that still have staging (crash leftovers), for operators and tests. */
  pendingTransactions(): Promise<string[]>;
  /**
   * Where each path really is on a backend with symlinks (local): every symlinked parent resolved
   * to its real in-mount location, the final component kept; what mutations act on and report.
   * Callers lock these, so two spellings of one place conflict. Absent where paths have no
   * aliases (S3): there the canonical path is the real one.
   */
  resolve?(paths: string[]): Promise<string[]>;
}

/** A mount as the executors need it (a projection of the backend_mounts row). */
export interface MountSpec {
  id: string;
  kind: BackendKind;
  /** Local mounts: absolute root directory on the host. */
  rootPath?: string | null;
  readOnly: boolean;
}
