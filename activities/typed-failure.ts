/**
 * Wraps activities so a thrown FilestoreError reaches the workflow as an ApplicationFailure whose
 * type is the error's class name and whose first detail is its ErrorInfo (code, details): Temporal
 * would otherwise keep only name and message. Also times every attempt.
 *
 * Errors nobody classified (a bug's TypeError, an errno no table knows) used to count as
 * retryable without end — while the mutation held its path's lock. They are retried a bounded
 * number of times and then fail as a non-retryable `InternalError` (code INTERNAL), so the
 * workflow compensates and releases the lock.
 */
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { FilestoreError, InternalError, NON_RETRYABLE } from '../src/errors';
import { errnoOf, isTransientErrno } from '../src/executors/local/local-fs';
import { activityDuration } from '../src/metrics';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFn = (...args: any[]) => Promise<any>;

/** Options of {@link withTypedFailures}. */
export interface TypedFailureOptions {
  /**
   * Attempts after which an unclassified error stops being retried (config
   * `maxUnknownErrorAttempts`, FILESTORE_MAX_UNKNOWN_ERROR_ATTEMPTS). @defaultValue 5
   */
  maxUnknownErrorAttempts?: number;
}

export const DEFAULT_MAX_UNKNOWN_ERROR_ATTEMPTS = 5;

/**
 * Postgres SQLSTATE classes that mean "try again later": connection exception (08), transaction
 * rollback — serialization failure, deadlock (40), insufficient resources (53), operator
 * intervention — shutdown, cancel (57), system error (58).
 */
const TRANSIENT_SQLSTATE = /^(08|40|53|57|58)[0-9A-Z]{3}$/;
/** node-postgres reports a lost or unobtainable connection without a code; these are its words. */
const TRANSIENT_PG_MESSAGES = ['Connection terminated', 'timeout exceeded when trying to connect', 'Client has encountered a connection error'];

/** A raw error of the infrastructure (sockets, Postgres) that is known to clear by itself: not "unknown". */
function isKnownTransient(err: unknown): boolean {
  const code = errnoOf(err);
  if (isTransientErrno(code)) return true;
  if (code !== undefined && TRANSIENT_SQLSTATE.test(code)) return true;
  const message = err instanceof Error ? err.message : '';
  return TRANSIENT_PG_MESSAGES.some((m) => message.includes(m));
}

/** The error's message with any host path Node put into it (`path`, `dest`) replaced: messages reach clients and the journal. */
function scrubbedMessage(err: unknown): string {
  const e = err instanceof Error ? err : new Error(String(err));
  let message = e.message;
  for (const key of ['path', 'dest'] as const) {
    const p = (e as NodeJS.ErrnoException & { dest?: unknown })[key];
    if (typeof p === 'string' && p !== '') message = message.split(p).join('<path>');
  }
  return message;
}

/** The activity's attempt number and whether it was cancelled; null outside an activity (direct calls in tests). */
function attemptState(): { attempt: number; cancelled: boolean } | null {
  try {
    const ctx = Context.current();
    return { attempt: ctx.info.attempt, cancelled: ctx.cancellationSignal.aborted };
  } catch {
    return null;
  }
}

function typedFailure(err: FilestoreError): ApplicationFailure {
  return ApplicationFailure.create({
    type: err.name,
    message: err.message,
    nonRetryable: !err.retryable || NON_RETRYABLE.includes(err.name),
    details: [err.toJSON()],
  });
}

/**
 * Wraps every activity of `activities` (see the module comment).
 *
 * @param opts - the bound on retries of unclassified errors.
 */
export function withTypedFailures<T extends Record<string, AnyFn>>(activities: T, opts: TypedFailureOptions = {}): T {
  const bound = opts.maxUnknownErrorAttempts ?? DEFAULT_MAX_UNKNOWN_ERROR_ATTEMPTS;
  const wrapped: Record<string, AnyFn> = {};
  for (const [name, fn] of Object.entries(activities)) {
    wrapped[name] = async (...args: unknown[]) => {
      const end = activityDuration.startTimer({ activity: name });
      try {
        const result = await fn(...args);
        end({ outcome: 'ok' });
        return result;
      } catch (err) {
        end({ outcome: 'error' });
        if (err instanceof FilestoreError) throw typedFailure(err);
        // Temporal's own failures (cancellation, an explicit ApplicationFailure) say what they mean.
        if (err instanceof ApplicationFailure || err instanceof CancelledFailure) throw err;
        const state = attemptState();
        if (!state || state.cancelled || isKnownTransient(err) || state.attempt < bound) throw err;
        const e = err instanceof Error ? err : new Error(String(err));
        throw typedFailure(
          new InternalError(`${name} failed ${state.attempt} times with an unclassified error: ${e.name}: ${scrubbedMessage(e)}`, {
            activity: name,
            attempts: state.attempt,
            error: e.name,
            ...(errnoOf(e) !== undefined ? { errno: errnoOf(e) } : {}),
          }),
        );
      }
    };
  }
  return wrapped as T;
}
