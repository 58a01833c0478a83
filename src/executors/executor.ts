/**
 * The one backend contract, for local disks (src/executors/local/) and S3 (src/executors/s3/); callers ask
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
  /** A create can be made conditional on nothing being there (O_EXCL / `If-None-Match: *`). */
  conditionalCreate: boolean;
  /** The backend keeps earlier versions of what it overwrites (a versioned bucket). */
  versioning: boolean;
  /** Longest key/path in bytes (S3: 1,024), or null when only the host's limits apply. */
  maxKeyBytes: number | null;
  /** Multipart limits (S3: 10,000 parts of 5 MiB–5 GiB), or null without multipart. */
  multipartLimits: { maxParts: number; minPartBytes: number; maxPartBytes: number } | null;
}

/** Options of {@link Executor.openRead}. */
export interface ReadOptions {
  /** Byte range to read, `end` inclusive (as HTTP Range); absent reads the whole file. */
  range?: { start: number; end?: number };
  signal?: AbortSignal;
  /**
   * The version the caller stat'ed: open that version or refuse with PRECONDITION_FAILED, so a
   * read never pairs one version's metadata (ETag, length) with another's bytes. Local: the
   * opened file's identity (`dev:ino`), size and mtime must be these; S3: GetObject If-Match its ETag
   * (and its version id where there is one).
   */
  expect?: Pick<NodeMeta, 'identity' | 'size' | 'mtime' | 'etag' | 'versionId'>;
}

/** Metadata of one node as the backend reports it (what the catalog records). */
export interface NodeMeta {
  path: string;
  kind: NodeKind;
  size: number;
  /**
   * Hex sha256 of the content; null for directories and where it is not known without a second read.
   * From stat: the hash the backend stores with the object (S3: x-amz-meta-sha256, as Filestore's
   * writes set it), null where the backend does not store it; never computed by reading.
   */
  sha256: string | null;
  etag?: string | null;
  storageClass?: string | null;
  /** S3: the object's version id in a versioned bucket; null/absent for local and unversioned buckets. */
  versionId?: string | null;
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
  /**
   * Called with resumable state once it is durable (an S3 multipart upload's `{ uploadId,
   * partSize, partsDone }`): the execute activity puts it in its heartbeat details, so the Web UI's
   * pending activity shows where a long upload stands. The durable copy is the plan.
   */
  onCheckpoint?: (state: Record<string, unknown>) => void;
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
  /** Entries fetched from the backend per request (S3 `MaxKeys`). @defaultValue 1000 */
  pageSize?: number;
  /**
   * Receives each entry below the listed directory that cannot be read (permissions, a path too
   * long for the host, a symlink loop) with its typed error; the listing skips it and goes on.
   * Without it such an entry fails the whole listing. Drift scans use it so one unreadable entry
   * becomes one report instead of a failed scan.
   */
  onUnreadable?: (path: string, err: unknown) => void;
  /**
   * Yield a recursive listing in UTF-8 byte order of the paths (src/path-order.ts), the catalog
   * index's order, so a caller can merge it with the catalog range by range. Local walks sort
   * each directory for it; S3 lists its keys in that order anyway. A caller relying on the order
   * still checks it (an S3-compatible server may not sort). @defaultValue false
   */
  sorted?: boolean;
  /** Metadata reads a sorted local walk keeps in flight (lstat on the libuv threadpool). @defaultValue 1 */
  concurrency?: number;
}

export interface Executor {
  readonly mountId: string;
  readonly backend: BackendKind;
  capabilities(): Capabilities;
  /**
   * Metadata of a node, or null when nothing is there. stat never reads content: sha256 is the hash
   * the backend stores with the object (S3: x-amz-meta-sha256), null where the backend does not
   * store it; never computed by reading (use checksum for that).
   */
  stat(path: string): Promise<NodeMeta | null>;
  /** Hex sha256 of a file's current content (reads it; for drift checks, never on the write path). */
  checksum(path: string): Promise<string>;
  /**
   * Children of a directory (or its whole subtree), staging excluded, fetched page by page as the
   * caller iterates (an S3 prefix can hold millions of keys): memory stays bounded by one page.
   * Order is the backend's (local: the file system's, depth first; S3: key order); callers sort if they need to.
   */
  list(path: string, opts?: ListOptions): AsyncIterable<NodeMeta>;
  /**
   * The content of a file as a stream (optionally a byte range), so bytes can leave the backend:
   * cross-mount copies, downloads, checks. Never follows a path out of the mount.
   *
   * @throws NotFoundError, IsADirectoryError
   */
  openRead(path: string, opts?: ReadOptions): Promise<Readable>;
  mkdir(path: string, opts: MkdirOptions): Promise<MutationOutcome>;
  write(path: string, source: WriteSource, opts: WriteOptions): Promise<MutationOutcome>;
  copy(src: string, dst: string, opts: CopyOptions): Promise<MutationOutcome>;
  move(src: string, dst: string, opts: MoveOptions): Promise<MutationOutcome>;
  delete(path: string, opts: DeleteOptions): Promise<MutationOutcome>;
  /** Reverses transaction `txId`; `undone` is false when it had changed nothing. Idempotent. */
  undo(txId: string, opts?: TxControlOptions): Promise<{ undone: boolean }>;
  /** Drops transaction `txId`'s staging and backups. Idempotent. */
  finalize(txId: string, opts?: TxControlOptions): Promise<void>;
  /**
   * Aborts multipart uploads under the mount that no live transaction owns and that are older
   * than `opts.olderThan` (the janitor's pass); returns how many. Absent where a backend has no
   * server-side upload state (local).
   */
  sweepStaleUploads?(opts: { olderThan: Date; paths: readonly string[]; busy(path: string): boolean; pending(txId: string): boolean }): Promise<number>;
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

/** Where an S3 mount lives and how it writes (the backend_mounts row's S3 columns and options). */
export interface S3Location {
  bucket: string;
  /** Key prefix without leading or trailing slash ('' for the whole bucket). */
  prefix: string;
  /** Endpoint URL for S3-compatible servers (MinIO); absent means AWS (or FILESTORE_S3_ENDPOINT). */
  endpoint?: string | null;
  region?: string | null;
  /** Path-style addressing (`http://host/bucket/key`), which MinIO needs. */
  pathStyle?: boolean;
  /** Shared-config profile whose credentials the mount uses; absent uses the default provider chain. */
  profile?: string | null;
  storageClass?: string | null;
  /** Canned ACL sent on every write and copy. */
  acl?: string | null;
  sse?: 'AES256' | 'aws:kms' | null;
  kmsKeyId?: string | null;
}

/** A mount as the executors need it (a projection of the backend_mounts row). */
export interface MountSpec {
  id: string;
  kind: BackendKind;
  /** Local mounts: absolute root directory on the host. */
  rootPath?: string | null;
  /** S3 mounts: bucket, prefix and write settings. */
  s3?: S3Location | null;
  readOnly: boolean;
}

/** Every entry of `executor.list(path, opts)` in one array, sorted by path: for callers that need the whole (bounded) listing at once. */
export async function listAll(executor: Pick<Executor, 'list'>, path: string, opts?: ListOptions): Promise<NodeMeta[]> {
  const out: NodeMeta[] = [];
  for await (const meta of executor.list(path, opts)) out.push(meta);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
