/**
 * Filestore's typed errors. Each class has a stable `code` and sets `name` to its class name:
 * Temporal turns a thrown error into an ApplicationFailure whose `type` is that name, so
 * {@link NON_RETRYABLE} feeds `nonRetryableErrorTypes` and {@link fromFailure} can rebuild the
 * typed error on the client side. Tests assert on `code`/`name`, never `instanceof`.
 */
export class FilestoreError extends Error {
  /** Stable, machine-readable code (e.g. `PATH_TRAVERSAL`). */
  readonly code: string;
  /** Whether a retry could succeed. */
  readonly retryable: boolean;
  /** Small JSON-safe context (mount, path, …). Never file contents. */
  readonly details: Record<string, unknown>;

  constructor(code: string, message: string, options: { retryable?: boolean; details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }

  toJSON(): { name: string; code: string; message: string; retryable: boolean; details: Record<string, unknown> } {
    return { name: this.name, code: this.code, message: this.message, retryable: this.retryable, details: this.details };
  }
}

type Details = Record<string, unknown>;

// --- path refusals: each its own type so callers and the journal can tell them apart ---
export class InvalidPathError extends FilestoreError {
  constructor(message: string, details: Details = {}) {
    super('INVALID_PATH', message, { details });
  }
}
export class PathTraversalError extends FilestoreError {
  constructor(path: string, details: Details = {}) {
    super('PATH_TRAVERSAL', `path ${JSON.stringify(path)} contains a '..' segment; paths may not leave the mount`, { details: { path, ...details } });
  }
}
export class AbsolutePathError extends FilestoreError {
  constructor(path: string, details: Details = {}) {
    super('ABSOLUTE_PATH', `path ${JSON.stringify(path)} is absolute; paths are relative to the mount root (drop the leading '/')`, {
      details: { path, ...details },
    });
  }
}
export class NulByteError extends FilestoreError {
  constructor(path: string, details: Details = {}) {
    super('NUL_BYTE', `path ${JSON.stringify(path)} contains a NUL byte`, { details: { path, ...details } });
  }
}
export class SymlinkEscapeError extends FilestoreError {
  constructor(path: string, details: Details = {}) {
    super('SYMLINK_ESCAPE', `path ${JSON.stringify(path)} resolves through a symlink to a place outside the mount`, { details: { path, ...details } });
  }
}
/**
 * A directory the mutation had opened was moved or removed while it ran (within the mount: an
 * exit from the mount is {@link SymlinkEscapeError}), or a symlink that stays inside the mount
 * now stands where the op expected a directory. The step was undone; nothing was followed.
 */
export class PathChangedError extends FilestoreError {
  constructor(path: string, details: Details = {}) {
    super('PATH_CHANGED', `path ${JSON.stringify(path)} changed while the mutation ran (a directory was moved or replaced by a symlink); nothing was done through it`, {
      details: { path, ...details },
    });
  }
}
export class ReservedPathError extends FilestoreError {
  constructor(path: string, details: Details = {}) {
    super('RESERVED_PATH', `path ${JSON.stringify(path)} is reserved for Filestore's own use (its staging folder and the mount identity marker)`, { details: { path, ...details } });
  }
}

// --- mounts ---
export class UnknownMountError extends FilestoreError {
  constructor(mountId: string) {
    super('UNKNOWN_MOUNT', `no mount named ${JSON.stringify(mountId)}`, { details: { mountId } });
  }
}
export class ReadOnlyMountError extends FilestoreError {
  constructor(mountId: string) {
    super('READ_ONLY_MOUNT', `mount ${JSON.stringify(mountId)} is read-only`, { details: { mountId } });
  }
}
export class MountExistsError extends FilestoreError {
  constructor(mountId: string) {
    super('MOUNT_EXISTS', `a mount named ${JSON.stringify(mountId)} already exists`, { details: { mountId } });
  }
}
export class MountUnavailableError extends FilestoreError {
  constructor(mountId: string, reason: string) {
    super('MOUNT_UNAVAILABLE', `mount ${JSON.stringify(mountId)} is unavailable: ${reason}`, { retryable: true, details: { mountId } });
  }
}
/**
 * A cross-mount copy or move needs both mounts on one host (two local mounts: the transfer runs on
 * the source's host), and this host cannot reach one of them. Permanent: the placement will not
 * change by retrying.
 */
export class MountNotReachableError extends FilestoreError {
  constructor(mountId: string, reason: string, details: Details = {}) {
    super('MOUNT_NOT_REACHABLE', `mount ${JSON.stringify(mountId)} cannot be reached from the host running this transfer: ${reason}`, {
      details: { mountId, ...details },
    });
  }
}

// --- file system state ---
export class NotFoundError extends FilestoreError {
  constructor(what: string, details: Details = {}) {
    super('NOT_FOUND', `${what} does not exist`, { details });
  }
}
export class AlreadyExistsError extends FilestoreError {
  constructor(what: string, details: Details = {}) {
    super('ALREADY_EXISTS', `${what} already exists (pass overwrite to replace it)`, { details });
  }
}
export class NotADirectoryError extends FilestoreError {
  constructor(what: string, details: Details = {}) {
    super('NOT_A_DIRECTORY', `${what} is not a directory`, { details });
  }
}
export class IsADirectoryError extends FilestoreError {
  constructor(what: string, details: Details = {}) {
    super('IS_A_DIRECTORY', `${what} is a directory`, { details });
  }
}
export class DirectoryNotEmptyError extends FilestoreError {
  constructor(what: string, details: Details = {}) {
    super('DIRECTORY_NOT_EMPTY', `${what} is a non-empty directory (pass recursive to remove it)`, { details });
  }
}
export class AccessDeniedError extends FilestoreError {
  constructor(what: string, details: Details = {}) {
    super('ACCESS_DENIED', `access denied: ${what}`, { details });
  }
}

// --- requests ---
export class InvalidRequestError extends FilestoreError {
  constructor(message: string, details: Details = {}) {
    super('INVALID_REQUEST', message, { details });
  }
}
export class PayloadTooLargeError extends FilestoreError {
  constructor(message: string, details: Details = {}) {
    super('PAYLOAD_TOO_LARGE', message, { details });
  }
}
export class UnsupportedError extends FilestoreError {
  constructor(message: string, details: Details = {}) {
    super('UNSUPPORTED', message, { details });
  }
}
export class TreeTooLargeError extends FilestoreError {
  constructor(path: string, limit: number) {
    super('TREE_TOO_LARGE', `${JSON.stringify(path)} holds more than ${limit} entries; one mutation may carry at most ${limit}`, {
      details: { path, limit },
    });
  }
}

// --- write sources ---
/**
 * A `put` file source the worker will not read: outside FILESTORE_SOURCE_ROOTS, reached through a
 * symlink, or not a regular file (FIFO, device, socket, directory). Permanent: the same path is
 * refused again.
 */
export class SourceNotAllowedError extends FilestoreError {
  constructor(message: string, details: Details = {}) {
    super('SOURCE_NOT_ALLOWED', message, { details });
  }
}
/** The source file shrank (or was replaced) while it was read; what arrived is not the file that was opened. */
export class SourceChangedError extends FilestoreError {
  constructor(message: string, details: Details = {}) {
    super('SOURCE_CHANGED', message, { details });
  }
}

// --- concurrency and idempotency ---
/** Another PENDING mutation holds the path (or an ancestor / descendant of it). */
export class ConflictError extends FilestoreError {
  constructor(message: string, details: Details = {}) {
    super('CONFLICT', message, { details });
  }
}
/** Same as ConflictError but retryable: thrown when the caller asked to wait for the lock. */
export class PathLockedError extends FilestoreError {
  constructor(message: string, details: Details = {}) {
    super('PATH_LOCKED', message, { retryable: true, details });
  }
}
export class IdempotencyKeyReusedError extends FilestoreError {
  constructor(key: string) {
    super('IDEMPOTENCY_KEY_REUSED', `idempotency key ${JSON.stringify(key)} was already used for a different request`, { details: { key } });
  }
}

/** The catalog marks the node INCONSISTENT (changed behind Filestore's back); pass force to mutate anyway. */
export class InconsistentNodeError extends FilestoreError {
  constructor(mountId: string, path: string) {
    super('INCONSISTENT_NODE', `${mountId}:${path} changed outside Filestore and is INCONSISTENT; run \`filestore reconcile ${mountId}:${path}\` (or pass force)`, {
      details: { mountId, path },
    });
  }
}

// --- execution ---
/** The backend does not (yet) show what the mutation should have produced; retried for eventual consistency. */
export class VerificationError extends FilestoreError {
  constructor(message: string, details: Details = {}) {
    super('VERIFICATION_FAILED', message, { retryable: true, details });
  }
}
/** Failure injected or raised while committing to the catalog that must not be retried. */
export class CommitError extends FilestoreError {
  constructor(message: string, details: Details = {}) {
    super('COMMIT_FAILED', message, { details });
  }
}

// --- backend file system failures (errno classes; see the table in executors/local-fs.ts) ---
/** The target lies on another file system than the mount's staging (a nested mount), so no atomic rename can reach it. Permanent. */
export class CrossDeviceError extends FilestoreError {
  constructor(what: string, details: Details = {}) {
    super('CROSS_DEVICE', `${what} is on another file system than the rest of the mount (a nested mount); Filestore cannot place it atomically`, {
      details,
    });
  }
}
/** A limit of the backend's file system (links per inode, file size, …) that a retry cannot lift. Permanent. */
export class BackendLimitError extends FilestoreError {
  constructor(message: string, details: Details = {}) {
    super('BACKEND_LIMIT', message, { details });
  }
}
/** The backend's file system is damaged (e.g. EUCLEAN): an operator must repair it; retrying would not. Permanent. */
export class BackendFaultError extends FilestoreError {
  constructor(message: string, details: Details = {}) {
    super('BACKEND_FAULT', message, { details });
  }
}
/**
 * A service Filestore depends on (Redis for change events) did not take a request. Retryable
 * without bound: what waits for it — a committed mutation's change event — must eventually go out.
 */
export class ServiceUnavailableError extends FilestoreError {
  constructor(service: string, reason: string) {
    super('SERVICE_UNAVAILABLE', `${service} is unavailable: ${reason}`, { retryable: true, details: { service } });
  }
}
/** A transient I/O condition (EIO, ENOSPC, EAGAIN, ESTALE, …): retried with backoff until it clears. */
export class BackendIoError extends FilestoreError {
  constructor(message: string, details: Details = {}) {
    super('BACKEND_IO', message, { retryable: true, details });
  }
}
/**
 * A bug in Filestore itself (e.g. EBADF: it used a descriptor it had closed), or a failure no
 * table classifies once it was retried FILESTORE_MAX_UNKNOWN_ERROR_ATTEMPTS times. Permanent:
 * retrying such an error without end would hold the path's lock forever.
 */
export class InternalError extends FilestoreError {
  constructor(message: string, details: Details = {}) {
    super('INTERNAL', message, { details });
  }
}

/**
 * The mount's staging folder is not what Filestore made (a symlink, a file, another owner):
 * someone tampered with it. Permanent: retrying cannot fix it, and undo must not act through it —
 * the mutation ends FAILED (with compensationIncomplete when undo was needed) for an operator.
 */
export class StagingTamperedError extends FilestoreError {
  constructor(mountId: string, reason: string) {
    super('STAGING_TAMPERED', `mount ${JSON.stringify(mountId)}: ${reason}; Filestore will not act through it (an operator must inspect it)`, {
      details: { mountId },
    });
  }
}

// --- one live attempt per transaction (activities/tx-fence.ts) ---
/** Another attempt of the same transaction still holds it; this one retries later. */
export class TransactionBusyError extends FilestoreError {
  constructor(journalId: string) {
    super('TX_BUSY', `transaction ${journalId} is held by another attempt that is still running; retrying`, { retryable: true, details: { journalId } });
  }
}
/** This attempt lost its hold on the transaction (its fence session ended, or it was cancelled): it stops. */
export class FenceLostError extends FilestoreError {
  constructor(journalId: string, reason: string) {
    super('FENCE_LOST', `this attempt no longer holds transaction ${journalId} (${reason}); it stops and leaves the work to the attempt that does`, {
      retryable: true,
      details: { journalId },
    });
  }
}

// --- object storage ---
/** A key (prefix + path) longer than the backend allows (S3: 1,024 bytes of UTF-8). */
export class KeyTooLongError extends FilestoreError {
  constructor(key: string, limit: number, details: Details = {}) {
    super('KEY_TOO_LONG', `key of ${Buffer.byteLength(key)} bytes exceeds the backend's limit of ${limit} bytes`, { details });
  }
}
/** A file and a directory (key prefix) of one name: S3 could hold both, a file tree cannot. */
export class NameConflictError extends FilestoreError {
  constructor(what: string, details: Details = {}) {
    super('NAME_CONFLICT', `${what} exists both as a file and as a directory`, { details });
  }
}
/** A conditional request failed (If-None-Match / If-Match → 412): someone else wrote the object since it was checked. */
export class PreconditionFailedError extends FilestoreError {
  constructor(what: string, details: Details = {}) {
    super('PRECONDITION_FAILED', `${what} changed behind Filestore's back (a conditional request was refused); nothing was overwritten`, { details });
  }
}
/** The mount's bucket does not exist. */
export class BucketNotFoundError extends FilestoreError {
  constructor(bucket: string, details: Details = {}) {
    super('BUCKET_NOT_FOUND', `bucket ${JSON.stringify(bucket)} does not exist`, { details: { bucket, ...details } });
  }
}
/** The backend refused the credentials (unknown access key, bad signature, expired token). */
export class InvalidCredentialsError extends FilestoreError {
  constructor(message: string, details: Details = {}) {
    super('INVALID_CREDENTIALS', message, { details });
  }
}

// --- the HTTP API ---
/** No bearer token, or one that is unknown or revoked (HTTP 401). */
export class UnauthorizedError extends FilestoreError {
  constructor(message = 'a valid bearer token is required (Authorization: Bearer <token>)') {
    super('UNAUTHORIZED', message);
  }
}
/** The token is valid but its scope does not cover this request (another mount, read-only, not admin) (HTTP 403). */
export class ForbiddenError extends FilestoreError {
  constructor(message: string, details: Details = {}) {
    super('FORBIDDEN', message, { details });
  }
}
/** A `Range` header that selects nothing in the file (HTTP 416). */
export class RangeNotSatisfiableError extends FilestoreError {
  constructor(range: string, size: number) {
    super('RANGE_NOT_SATISFIABLE', `range ${JSON.stringify(range)} is outside the file's ${size} bytes`, { details: { size } });
  }
}
/** A request body of a content type the route does not take (HTTP 415). */
export class UnsupportedMediaTypeError extends FilestoreError {
  constructor(contentType: string, expected: string) {
    super('UNSUPPORTED_MEDIA_TYPE', `content type ${JSON.stringify(contentType)} is not accepted here; send ${expected}`, { details: { contentType, expected } });
  }
}
/** An upload without Content-Length or chunked transfer encoding: a missing body is refused, not taken as an empty file (HTTP 411). */
export class LengthRequiredError extends FilestoreError {
  constructor() {
    super('LENGTH_REQUIRED', 'an upload needs a Content-Length header or chunked transfer encoding (send Content-Length: 0 for an empty file)');
  }
}
/** The request body ended before its declared length, or the client went away mid-upload (HTTP 400). */
export class IncompleteBodyError extends FilestoreError {
  constructor(message: string, details: Details = {}) {
    super('INCOMPLETE_BODY', message, { details });
  }
}
/** Request headers beyond the server's limit (HTTP 431). */
export class HeadersTooLargeError extends FilestoreError {
  constructor() {
    super('HEADERS_TOO_LARGE', 'request headers are too large');
  }
}
/** No such route (HTTP 404), or no such method on it (HTTP 405). */
export class RouteNotFoundError extends FilestoreError {
  constructor(method: string, url: string) {
    super('ROUTE_NOT_FOUND', `no route ${method} ${url}`, { details: { method } });
  }
}

const REGISTRY = {
  FilestoreError,
  UnauthorizedError,
  ForbiddenError,
  RangeNotSatisfiableError,
  UnsupportedMediaTypeError,
  RouteNotFoundError,
  LengthRequiredError,
  IncompleteBodyError,
  HeadersTooLargeError,
  ServiceUnavailableError,
  StagingTamperedError,
  TransactionBusyError,
  FenceLostError,
  InvalidPathError,
  PathTraversalError,
  AbsolutePathError,
  NulByteError,
  SymlinkEscapeError,
  PathChangedError,
  ReservedPathError,
  UnknownMountError,
  ReadOnlyMountError,
  MountExistsError,
  MountUnavailableError,
  MountNotReachableError,
  NotFoundError,
  AlreadyExistsError,
  NotADirectoryError,
  IsADirectoryError,
  DirectoryNotEmptyError,
  AccessDeniedError,
  InvalidRequestError,
  PayloadTooLargeError,
  UnsupportedError,
  TreeTooLargeError,
  SourceNotAllowedError,
  SourceChangedError,
  ConflictError,
  PathLockedError,
  IdempotencyKeyReusedError,
  InconsistentNodeError,
  VerificationError,
  CommitError,
  CrossDeviceError,
  BackendLimitError,
  BackendFaultError,
  BackendIoError,
  InternalError,
  KeyTooLongError,
  NameConflictError,
  PreconditionFailedError,
  BucketNotFoundError,
  InvalidCredentialsError,
} as const;

/** Error types that Temporal must never retry (permanent by nature). */
export const NON_RETRYABLE: string[] = [
  'StagingTamperedError',
  'InvalidPathError',
  'PathTraversalError',
  'AbsolutePathError',
  'NulByteError',
  'SymlinkEscapeError',
  'PathChangedError',
  'ReservedPathError',
  'UnknownMountError',
  'ReadOnlyMountError',
  'MountExistsError',
  'MountNotReachableError',
  'NotFoundError',
  'AlreadyExistsError',
  'NotADirectoryError',
  'IsADirectoryError',
  'DirectoryNotEmptyError',
  'AccessDeniedError',
  'InvalidRequestError',
  'PayloadTooLargeError',
  'UnsupportedError',
  'TreeTooLargeError',
  'SourceNotAllowedError',
  'SourceChangedError',
  'ConflictError',
  'IdempotencyKeyReusedError',
  'InconsistentNodeError',
  'CommitError',
  'CrossDeviceError',
  'BackendLimitError',
  'BackendFaultError',
  'InternalError',
  'KeyTooLongError',
  'NameConflictError',
  'PreconditionFailedError',
  'BucketNotFoundError',
  'InvalidCredentialsError',
  'UnauthorizedError',
  'ForbiddenError',
  'RangeNotSatisfiableError',
  'UnsupportedMediaTypeError',
  'RouteNotFoundError',
  'LengthRequiredError',
  'IncompleteBodyError',
  'HeadersTooLargeError',
];

/**
 * Every stable error code with its HTTP status (the API answers it, with the code, as
 * `application/problem+json`) and the `filestore` CLI's exit code. One table, so API, CLI and docs
 * agree; test/unit/error-status.test.ts fails if a registered error class has no row.
 *
 * CLI exit codes by class: 1 internal/unknown, 2 usage (commander), 3 invalid input, 4 not found,
 * 5 conflict or exists, 6 refused (read-only, access, auth), 7 inconsistent or changed behind
 * Filestore's back, 8 unavailable or busy (retry later), 9 backend failure, 10 too large.
 */
export const ERROR_STATUS: Record<string, { http: number; exit: number }> = {
  INVALID_PATH: { http: 400, exit: 3 },
  PATH_TRAVERSAL: { http: 400, exit: 3 },
  ABSOLUTE_PATH: { http: 400, exit: 3 },
  NUL_BYTE: { http: 400, exit: 3 },
  SYMLINK_ESCAPE: { http: 400, exit: 3 },
  RESERVED_PATH: { http: 400, exit: 3 },
  INVALID_REQUEST: { http: 400, exit: 3 },
  KEY_TOO_LONG: { http: 400, exit: 3 },
  SOURCE_NOT_ALLOWED: { http: 400, exit: 3 },
  UNAUTHORIZED: { http: 401, exit: 6 },
  FORBIDDEN: { http: 403, exit: 6 },
  READ_ONLY_MOUNT: { http: 403, exit: 6 },
  ACCESS_DENIED: { http: 403, exit: 6 },
  INVALID_CREDENTIALS: { http: 502, exit: 6 },
  UNKNOWN_MOUNT: { http: 404, exit: 4 },
  NOT_FOUND: { http: 404, exit: 4 },
  BUCKET_NOT_FOUND: { http: 502, exit: 4 },
  ROUTE_NOT_FOUND: { http: 404, exit: 4 },
  MOUNT_EXISTS: { http: 409, exit: 5 },
  ALREADY_EXISTS: { http: 409, exit: 5 },
  NOT_A_DIRECTORY: { http: 409, exit: 5 },
  IS_A_DIRECTORY: { http: 409, exit: 5 },
  DIRECTORY_NOT_EMPTY: { http: 409, exit: 5 },
  NAME_CONFLICT: { http: 409, exit: 5 },
  CONFLICT: { http: 409, exit: 5 },
  IDEMPOTENCY_KEY_REUSED: { http: 422, exit: 5 },
  INCONSISTENT_NODE: { http: 409, exit: 7 },
  PATH_CHANGED: { http: 409, exit: 7 },
  SOURCE_CHANGED: { http: 409, exit: 7 },
  PRECONDITION_FAILED: { http: 412, exit: 7 },
  STAGING_TAMPERED: { http: 500, exit: 7 },
  PATH_LOCKED: { http: 423, exit: 8 },
  TX_BUSY: { http: 503, exit: 8 },
  FENCE_LOST: { http: 503, exit: 8 },
  MOUNT_UNAVAILABLE: { http: 503, exit: 8 },
  MOUNT_NOT_REACHABLE: { http: 422, exit: 8 },
  SERVICE_UNAVAILABLE: { http: 503, exit: 8 },
  VERIFICATION_FAILED: { http: 502, exit: 9 },
  BACKEND_IO: { http: 503, exit: 9 },
  BACKEND_LIMIT: { http: 507, exit: 9 },
  BACKEND_FAULT: { http: 500, exit: 9 },
  CROSS_DEVICE: { http: 422, exit: 9 },
  COMMIT_FAILED: { http: 500, exit: 9 },
  UNSUPPORTED: { http: 501, exit: 3 },
  UNSUPPORTED_MEDIA_TYPE: { http: 415, exit: 3 },
  RANGE_NOT_SATISFIABLE: { http: 416, exit: 3 },
  LENGTH_REQUIRED: { http: 411, exit: 3 },
  INCOMPLETE_BODY: { http: 400, exit: 3 },
  HEADERS_TOO_LARGE: { http: 431, exit: 3 },
  PAYLOAD_TOO_LARGE: { http: 413, exit: 10 },
  TREE_TOO_LARGE: { http: 413, exit: 10 },
  INTERNAL: { http: 500, exit: 1 },
};

/** HTTP status and CLI exit code of an error code (unknown codes: 500 / 1). */
export function statusOf(code: string): { http: number; exit: number } {
  return ERROR_STATUS[code] ?? { http: 500, exit: 1 };
}

/** Serialisable form of an error, as stored in the journal and carried in failure details. */
export interface ErrorInfo {
  name: string;
  code: string;
  message: string;
  retryable?: boolean;
  details?: Record<string, unknown>;
}

/** Rebuilds a typed error from its serialised form (journal row or Temporal failure). */
export function errorFromInfo(info: ErrorInfo): FilestoreError {
  const Ctor = (REGISTRY as Record<string, unknown>)[info.name] as typeof FilestoreError | undefined;
  const err = Object.create((Ctor ?? FilestoreError).prototype) as FilestoreError;
  Object.assign(err, {
    name: Ctor ? info.name : 'FilestoreError',
    code: info.code,
    message: info.message,
    retryable: info.retryable ?? false,
    details: info.details ?? {},
  });
  Object.defineProperty(err, 'stack', { value: `${err.name}: ${err.message}`, enumerable: false, writable: true });
  return err;
}

/** Any thrown value → ErrorInfo (unknown errors keep their name and message, code `INTERNAL`). */
export function toErrorInfo(err: unknown): ErrorInfo {
  if (err instanceof FilestoreError) return err.toJSON();
  if (err && typeof err === 'object' && 'code' in err && 'name' in err && typeof (err as ErrorInfo).code === 'string') {
    const e = err as ErrorInfo;
    return { name: e.name, code: e.code, message: e.message, retryable: e.retryable, details: e.details };
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name || 'Error', code: 'INTERNAL', message: e.message, retryable: true };
}

/** Is this a known Filestore error type name? */
export function isFilestoreErrorName(name: string | undefined): boolean {
  return !!name && name in REGISTRY;
}
