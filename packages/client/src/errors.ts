/**
 * Typed errors on the client side. The classes, codes and HTTP statuses are the server's own
 * (src/errors.ts, compiled into this package), so `err.code` here is the code the server raised,
 * and `err instanceof NotFoundError` holds for an error rebuilt from an HTTP answer or a Temporal
 * failure alike.
 */
import * as serverErrors from '../../../src/errors';
import { errorFromInfo, FilestoreError, isFilestoreErrorName, ServiceUnavailableError, type ErrorInfo } from '../../../src/errors';

/**
 * An RFC 9457 problem as the API sends it (`application/problem+json`); kept on the error as `problem`.
 * @example `{ "type": "https://filestore.dev/problems/not-found", "title": "NOT_FOUND", "status": 404, "detail": "docs:a.txt does not exist", "code": "NOT_FOUND", "retryable": false }`
 */
export interface ProblemDetails {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  /** The stable Filestore error code (`NOT_FOUND`, `UNKNOWN_MOUNT`, …). */
  code?: string;
  retryable?: boolean;
  details?: Record<string, unknown>;
  instance?: string;
  /** The server's error class name, when it sends one. */
  name?: string;
}

/**
 * A FilestoreError as the client throws it: the server's class (so `name`, `code`, `retryable`
 * and `details` are the server's), plus the HTTP `status` it came with (absent for errors raised
 * before any request was made, e.g. an invalid path, and for Temporal failures).
 *
 * @example `catch (err) { const e = err as FilestoreClientError; if (e.retryable) scheduleRetry(); }`
 */
export type FilestoreClientError = FilestoreError & { status?: number; problem?: ProblemDetails };

/**
 * Is `err` an error of Filestore (from the server, Temporal or this client's own checks)? Checks
 * the shape, not the prototype chain, so it holds across realms and bundled copies.
 *
 * @example
 * ```ts
 * try { await fs.get('docs', 'missing.txt'); }
 * catch (err) { if (isFilestoreError(err) && err.code === 'NOT_FOUND') return null; throw err; }
 * ```
 */
export function isFilestoreError(err: unknown): err is FilestoreClientError {
  return err instanceof FilestoreError || (!!err && typeof err === 'object' && typeof (err as { code?: unknown }).code === 'string' && typeof (err as { retryable?: unknown }).retryable === 'boolean');
}

let classNameByCode: Map<string, string> | null = null;

/**
 * The server's class name for a code. The problem body carries the code; the class registry in
 * src/errors.ts is keyed by name and a class's code is set in its constructor, so the map is
 * learned once from the classes themselves (constructed with placeholder arguments) instead of
 * being copied here, where it would drift from the server's.
 */
function classNameOf(code: string): string | undefined {
  if (!classNameByCode) {
    classNameByCode = new Map();
    for (const [name, value] of Object.entries(serverErrors)) {
      if (typeof value !== 'function' || !(value.prototype instanceof FilestoreError)) continue;
      try {
        const sample = new (value as unknown as new (a: string, b: string) => FilestoreError)('x', 'x');
        if (!classNameByCode.has(sample.code)) classNameByCode.set(sample.code, name);
      } catch {
        // A constructor that wants other arguments: its code is rebuilt as a plain FilestoreError.
      }
    }
  }
  return classNameByCode.get(code);
}

/**
 * Rebuilds the typed error of a serialised one (journal row, run status, Temporal failure details).
 * @example `if (entry.error) throw errorFromInfoLike(entry.error);`
 */
export function errorFromInfoLike(info: Partial<ErrorInfo> & { code: string; detail?: string }, status?: number): FilestoreClientError {
  const name = info.name && isFilestoreErrorName(info.name) ? info.name : (classNameOf(info.code) ?? 'FilestoreError');
  const err = errorFromInfo({
    name,
    code: info.code,
    message: info.message ?? info.detail ?? info.code,
    retryable: info.retryable ?? false,
    details: info.details ?? {},
  }) as FilestoreClientError;
  if (status !== undefined) Object.defineProperty(err, 'status', { value: status, enumerable: true, writable: true });
  return err;
}

/** What an HTTP status means when the answer carries no problem body (HEAD, a proxy's error page). */
const CODE_OF_BARE_STATUS: Record<number, string> = {
  400: 'INVALID_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  412: 'PRECONDITION_FAILED',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  416: 'RANGE_NOT_SATISFIABLE',
  423: 'PATH_LOCKED',
};

/** The typed error of a non-2xx answer: from its problem body, or from its status alone. */
export function errorFromResponse(status: number, body: unknown, method: string, url: string): FilestoreClientError {
  const problem = body && typeof body === 'object' ? (body as ProblemDetails) : null;
  if (problem && typeof problem.code === 'string') {
    const err = errorFromInfoLike({ ...problem, code: problem.code, message: problem.detail ?? problem.title }, status);
    Object.defineProperty(err, 'problem', { value: problem, enumerable: false, writable: true });
    return err;
  }
  const code = CODE_OF_BARE_STATUS[status] ?? (status >= 500 ? 'SERVICE_UNAVAILABLE' : 'INTERNAL');
  const text = typeof body === 'string' && body.length > 0 ? `: ${body.slice(0, 200)}` : '';
  return errorFromInfoLike(
    { code, message: `${method} ${url} answered HTTP ${status}${text}`, retryable: status >= 500 || status === 423, details: { status } },
    status,
  );
}

/** A request that got no answer at all (refused connection, reset, DNS): retryable. */
export function unreachable(url: string, cause: unknown): FilestoreClientError {
  const reason = cause instanceof Error ? ((cause.cause as Error | undefined)?.message ?? cause.message) : String(cause);
  const err = new ServiceUnavailableError('the Filestore API', `${url}: ${reason}`) as FilestoreClientError;
  Object.defineProperty(err, 'cause', { value: cause, enumerable: false, writable: true });
  return err;
}

/**
 * Turns a workflow failure (as `@temporalio/client` throws it) back into the typed error the
 * activities raised: the first ApplicationFailure in the cause chain carries the ErrorInfo as its
 * details (as src/client/filestore-client.ts's toFilestoreError reads it). Matched by shape, so the
 * Temporal SDK is loaded only by callers that await through it.
 *
 * @example `try { await client.workflow.getHandle(id).result(); } catch (err) { throw errorFromWorkflowFailure(err); }`
 */
export function errorFromWorkflowFailure(err: unknown): unknown {
  if (isFilestoreError(err)) return err;
  let cur: unknown = err;
  while (cur && typeof cur === 'object') {
    const details = (cur as { details?: unknown }).details;
    const info = Array.isArray(details) ? (details[0] as Partial<ErrorInfo> | undefined) : undefined;
    if ((cur as Error).name === 'ApplicationFailure' && info && typeof info.code === 'string') return errorFromInfoLike({ ...info, code: info.code });
    cur = (cur as Error).cause;
  }
  return err;
}
