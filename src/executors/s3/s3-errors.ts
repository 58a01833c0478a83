/**
 * S3 failures → Filestore's typed errors, in one table, and the one place failed S3 requests are
 * counted (`filestore_s3_request_errors_total{code}`).
 *
 * Permanent refusals (a missing bucket, bad credentials, access denied, a refused conditional
 * request, a bad argument, an S3 limit) are non-retryable; throttling, server errors, timeouts and
 * broken connections are BACKEND_IO, retried by the activity with backoff — after the SDK's own
 * standard retry strategy (s3-client.ts) gave up on the request. What no row classifies (a bug's
 * TypeError, a file source's ENOENT) is returned as it came, so the activity's bound on unknown
 * errors applies to it.
 *
 * One classification for every caller; where a caller's own handling changes the outcome it
 * says so, visibly, at its call:
 * - NoSuchUpload is NOT_FOUND and InvalidPart INVALID_REQUEST here (what S3 said of the
 *   request). The multipart uploader's retry re-lists the parts or starts a new upload, so it
 *   maps them as retryable (`retryableCodes`, see s3-multipart.ts); the part copier turns a
 *   vanished upload into PRECONDITION_FAILED for its caller to check for its own object, and an
 *   InvalidPart there stays permanent (s3-part-copy.ts); an abort treats NoSuchUpload as done.
 * - HeadObject / DeleteObject treat a 404 as "absent" before mapping (s3-bucket.ts).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import {
  AccessDeniedError,
  BackendIoError,
  BackendLimitError,
  BucketNotFoundError,
  FilestoreError,
  InvalidCredentialsError,
  InvalidRequestError,
  KeyTooLongError,
  NotFoundError,
  PreconditionFailedError,
} from '../../errors';
import { countS3Error } from '../../metrics';

/** What the AWS SDK attaches to a failed request (service errors and network errors alike). */
interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  Code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

/**
 * The SDK's retry middleware wraps what is thrown at it that is not `instanceof Error` in
 * `new Error("AWS SDK error wrapper for " + err)`, dropping `code`. Under Jest, Node's own socket
 * errors come from another realm and always take this path; the code survives only in the text
 * ("… for Error: read ECONNRESET", "… for Error: socket hang up").
 */
const SDK_WRAPPER = /^AWS SDK error wrapper for /;
/** Names the SDK gives a failure it could not name from the response (a HEAD has no body). */
const GENERIC_NAMES = new Set(['Error', 'S3ServiceException', 'Unknown', 'UnknownError', 'AbortError']);

/**
 * The S3 error code of a failure (`NoSuchKey`, `SlowDown`, …), a network error code
 * (`ECONNRESET`, `TimeoutError`, …), or undefined (a Filestore error, a bare status, a bug).
 */
export function s3ErrorCode(err: unknown): string | undefined {
  if (!err || typeof err !== 'object' || err instanceof FilestoreError) return undefined;
  const e = err as SdkErrorShape;
  if (typeof e.Code === 'string' && e.Code !== '') return e.Code;
  // Node system and stream errors (ECONNRESET, EPIPE, ERR_STREAM_PREMATURE_CLOSE); not another
  // library's own codes (FENCE_LOST, …), which are not S3's to classify.
  if (typeof e.code === 'string' && /^E[A-Z0-9_]+$/.test(e.code)) return e.code;
  if (typeof e.message === 'string' && SDK_WRAPPER.test(e.message)) return wrappedCode(e.message);
  // A response without a body (HEAD) leaves the SDK only the status: it names the error 'Unknown' or '403'.
  if (typeof e.name === 'string' && !GENERIC_NAMES.has(e.name) && !/^\d+$/.test(e.name)) return e.name;
  return undefined;
}

function wrappedCode(message: string): string {
  const errno = /\b(E[A-Z]{3,}[A-Z0-9_]*)\b/.exec(message);
  if (errno) return errno[1];
  if (/socket hang up/i.test(message)) return 'ECONNRESET';
  if (/timed? ?out/i.test(message)) return 'TimeoutError';
  return 'NetworkingError';
}

/** The HTTP status S3 answered with, if it answered. */
export function httpStatusOf(err: unknown): number | undefined {
  const status = (err as SdkErrorShape | null | undefined)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

/** Was the call stopped by an AbortSignal (ours or the caller's), rather than failing? */
export function isAbortError(err: unknown): boolean {
  const name = (err as { name?: unknown } | null | undefined)?.name;
  return name === 'AbortError' || name === 'RequestAbortedError';
}

const NOT_FOUND = new Set(['NoSuchKey', 'NotFound', 'NoSuchUpload', 'NoSuchVersion']);

/** A 404 of any kind: no such key, no such upload, no such version (not a missing bucket). */
export function isNotFound(err: unknown): boolean {
  const code = s3ErrorCode(err);
  if (code === 'NoSuchBucket') return false;
  return (code !== undefined && NOT_FOUND.has(code)) || httpStatusOf(err) === 404;
}

/** The request-level "no such multipart upload" (aborted, completed, or never existed). */
export function isNoSuchUpload(err: unknown): boolean {
  const code = s3ErrorCode(err);
  return code === 'NoSuchUpload' || (httpStatusOf(err) === 404 && code === 'NotFound');
}

/**
 * A refused conditional request (If-Match / If-None-Match / x-amz-copy-source-if-match → 412),
 * raw from S3 or already typed (PRECONDITION_FAILED), so callers may test either.
 */
export function isPreconditionFailed(err: unknown): boolean {
  return s3ErrorCode(err) === 'PreconditionFailed' || httpStatusOf(err) === 412 || (err as { code?: unknown } | null | undefined)?.code === 'PRECONDITION_FAILED';
}

const CREDENTIALS = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'TokenRefreshRequired', 'CredentialsProviderError', 'InvalidClientTokenId']);
const ACCESS = new Set(['AccessDenied', 'AllAccessDisabled', 'AccountProblem', 'KMS.AccessDeniedException']);
/** S3's size and count limits: a retry of the same request cannot lift them. */
const LIMITS = new Set(['EntityTooLarge', 'TooManyParts', 'MaxMessageLengthExceeded']);
/** Throttling, server trouble, and bytes that arrived different from what was sent (sent again, they pass). */
const TRANSIENT = new Set([
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'RequestTimeout',
  'RequestTimeoutException',
  'Throttling',
  'ThrottlingException',
  'RequestThrottled',
  'TooManyRequestsException',
  'OperationAborted',
  'ConditionalRequestConflict',
  'XMinioServerNotInitialized',
  'XMinioStorageFull',
  'BadDigest',
  'XAmzContentSHA256Mismatch',
  'IncompleteBody',
]);
/** The connection failed or went silent: no answer from S3 at all. */
const NETWORK = new Set([
  'TimeoutError',
  'NetworkingError',
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EPROTO',
  'ERR_STREAM_PREMATURE_CLOSE',
]);
/** Our request was wrong for this server or object: sending it again changes nothing. */
const BAD_REQUEST = new Set([
  'InvalidStorageClass',
  'InvalidArgument',
  'InvalidRequest',
  'MalformedXML',
  'InvalidBucketName',
  'InvalidObjectState',
  'InvalidPart',
  'InvalidPartOrder',
  'EntityTooSmall',
  'InvalidEncryptionAlgorithmError',
  'KMS.NotFoundException',
  'KMS.DisabledException',
  'NotImplemented',
  'MethodNotAllowed',
  'InvalidDigest',
  'AuthorizationHeaderMalformed',
]);

/** Where a failure happened, for messages and details (never file contents). */
export interface S3ErrorContext {
  bucket: string;
  mountId?: string;
  /** What the request was about, for the message (a quoted mount path, "listing …", `s3://b/k`). */
  what?: string;
  key?: string;
  uploadId?: string;
}

/** How one caller wants a failure classified where its own retry changes the outcome. */
export interface S3MapOptions {
  /**
   * S3 error codes this caller recovers from by retrying (the multipart uploader: NoSuchUpload,
   * InvalidPart): mapped to BACKEND_IO instead of the table's permanent error. Only S3's answers.
   */
  retryableCodes?: readonly string[];
}

/**
 * The typed error for `err`; a FilestoreError and an abort pass through unchanged, and so does
 * an error with no S3 or network signature. Mapping does not count: the request was counted when
 * it failed (see {@link countS3RequestErrors}), and one failure may be mapped more than once on its
 * way up.
 */
export function mapS3Error(err: unknown, ctx: S3ErrorContext, opts: S3MapOptions = {}): unknown {
  if (err instanceof FilestoreError || isAbortError(err)) return err;
  const code = s3ErrorCode(err);
  const status = httpStatusOf(err);
  const e = err as SdkErrorShape;
  const fromS3 = e.$metadata !== undefined;
  const network = status === undefined && code !== undefined && NETWORK.has(code);
  const retryableNoAnswer = status === undefined && e.$retryable !== undefined && e.$retryable !== null;
  // Only S3's answers and network failures are ours to classify (a file source's ENOENT is not).
  if (!fromS3 && !network && !retryableNoAnswer && !(code !== undefined && CREDENTIALS.has(code))) return err;

  const what = ctx.what ?? (ctx.key !== undefined ? JSON.stringify(ctx.key) : `bucket ${JSON.stringify(ctx.bucket)}`);
  const details: Record<string, unknown> = {
    bucket: ctx.bucket,
    ...(ctx.mountId ? { mountId: ctx.mountId } : {}),
    ...(ctx.uploadId ? { uploadId: ctx.uploadId } : {}),
    s3Code: code ?? null,
    httpStatus: status ?? null,
  };
  const message = (typeof e.message === 'string' && e.message) || code || `HTTP ${status}`;
  const said = code ?? `HTTP ${status}`;
  const typed = (t: FilestoreError): FilestoreError => withCause(t, err);

  if (fromS3 && code !== undefined && opts.retryableCodes?.includes(code)) {
    return typed(new BackendIoError(`S3 request for ${what} failed (${code}): ${message}; retrying`, details));
  }
  if (code === 'NoSuchBucket') return typed(new BucketNotFoundError(ctx.bucket, details));
  if (code !== undefined && CREDENTIALS.has(code)) {
    return typed(new InvalidCredentialsError(`S3 refused the credentials for bucket ${JSON.stringify(ctx.bucket)} (${code}): ${message}`, details));
  }
  if ((code !== undefined && ACCESS.has(code)) || (status === 403 && code === undefined)) return typed(new AccessDeniedError(`${what} (S3 ${code ?? '403'})`, details));
  if (isPreconditionFailed(err)) return typed(new PreconditionFailedError(what, details));
  if (code === 'KeyTooLongError') return typed(new KeyTooLongError(ctx.key ?? '', 1024, details));
  if (code !== undefined && LIMITS.has(code)) return typed(new BackendLimitError(`S3 refused ${what}: ${code}: ${message}`, details));
  if ((code !== undefined && NOT_FOUND.has(code)) || status === 404) return typed(new NotFoundError(what, details));
  // Codes first: a 501 NotImplemented is a permanent "not here", whatever its 5xx status says.
  if (code !== undefined && BAD_REQUEST.has(code)) return typed(new InvalidRequestError(`S3 refused the request for ${what} (${code}): ${message}`, details));
  if ((code !== undefined && TRANSIENT.has(code)) || network || retryableNoAnswer || (status !== undefined && (status >= 500 || status === 429 || status === 408))) {
    return typed(new BackendIoError(`S3 request for ${what} failed (${said}): ${message}; retrying`, details));
  }
  // Any other 4xx: S3 answered that this request is wrong; the same request again gets the same answer.
  if (status !== undefined && status >= 400) return typed(new InvalidRequestError(`S3 refused the request for ${what} (${said}): ${message}`, details));
  return err;
}

function withCause<E extends FilestoreError>(e: E, cause: unknown): E {
  // Not enumerable: the SDK error stays out of serialised errors (toJSON / logs of details).
  Object.defineProperty(e, 'cause', { value: cause, enumerable: false, writable: true, configurable: true });
  return e;
}

/** The label a failed request is counted under: its code, else its HTTP status, else `unknown`. */
export function s3ErrorLabel(err: unknown): string {
  const status = httpStatusOf(err);
  return s3ErrorCode(err) ?? (status !== undefined ? `HTTP${status}` : 'unknown');
}

const counted = new WeakSet<object>();
const SMITHY_CONTEXT = '__smithy_context';

/**
 * Makes `client` count each failed request once in `filestore_s3_request_errors_total{code}`.
 * The counter sits outermost in the client's middleware stack, so it sees each `send` once, after
 * the SDK's standard retries: a request retried three times and then failing is one failure, one
 * that succeeded on a retry is none. Every S3 request Filestore makes — the bucket wrapper's, the
 * uploader's, lib-storage's, the janitor's — goes through a client so instrumented, so no call
 * site counts (and none can count twice). Aborted requests (our own AbortSignal) are not failures.
 * Idempotent; returns the client.
 */
export function countS3RequestErrors<C extends S3Client>(client: C): C {
  if (counted.has(client)) return client;
  counted.add(client);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      try {
        return await next(args);
      } catch (err) {
        const signal = (context as Record<string, { abortSignal?: { aborted?: boolean } } | undefined>)[SMITHY_CONTEXT]?.abortSignal;
        if (!isAbortError(err) && !signal?.aborted) countS3Error(s3ErrorLabel(err));
        throw err;
      }
    },
    { step: 'initialize', priority: 'high', name: 'filestoreCountS3Errors', override: true },
  );
  return client;
}
