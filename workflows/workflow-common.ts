/**
 * What the mutation workflow's paths share: activity presets, the catalog-only steps run as local
 * activities, the typed-failure helpers, the search-attribute status and the end of a failed
 * mutation (compensation in reverse, then the journal's end). Deterministic code only: activities
 * are imported as types.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  TimeoutFailure,
  upsertSearchAttributes,
  type ActivityOptions,
  type LocalActivityOptions,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import type { ErrorInfo } from '../src/errors';
import { NON_RETRYABLE } from '../src/errors';
import type { MutationRequest } from '../src/mutations';
import { SEARCH_ATTRIBUTES } from '../src/search-attributes';

export type Activities = ReturnType<typeof createActivities>;

/** Timeout and retry presets, in one place. */
export const ACTIVITY_PRESETS = {
  journal: {
    startToCloseTimeout: '30s',
    retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '10s', nonRetryableErrorTypes: NON_RETRYABLE },
  },
  execute: {
    // A 1 TiB write at disk speed takes hours; liveness comes from the heartbeat (a timer in every
    // worker, see activities/heartbeat-interceptor.ts), not this bound.
    startToCloseTimeout: '24h',
    heartbeatTimeout: '10s',
    // Stop means stop: compensation must not start while an attempt still touches the disk.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', nonRetryableErrorTypes: NON_RETRYABLE },
  },
  verify: {
    startToCloseTimeout: '5m',
    heartbeatTimeout: '30s',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    // Verify retries only for eventual consistency; past that the mutation is rolled back.
    retry: { initialInterval: '250ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 8, nonRetryableErrorTypes: NON_RETRYABLE },
  },
  cleanup: {
    // Compensation and finalize retry transient errors without end, bounded backoff; a permanent
    // failure ends the entry FAILED with compensationIncomplete instead of stranding its lock.
    startToCloseTimeout: '1h',
    heartbeatTimeout: '30s',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', nonRetryableErrorTypes: NON_RETRYABLE },
  },
  commit: {
    // One catalog transaction; at 100,000 nodes it takes seconds to tens of seconds. A retry after
    // a timeout waits on the journal row's lock and then answers COMMITTED: safe, just slow.
    startToCloseTimeout: '10m',
    heartbeatTimeout: '30s',
    retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '10s', nonRetryableErrorTypes: NON_RETRYABLE },
  },
  notify: {
    // The change event of a committed mutation must eventually go out: unlimited retries, bounded
    // backoff. A short attempt bound, so a Redis that does not answer means a retry, not a hang.
    startToCloseTimeout: '10s',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
  },
} as const;

export const journalActs = proxyActivities<Activities>(ACTIVITY_PRESETS.journal);

/**
 * The steps that touch only the catalog (Postgres) or Redis — begin, commit, publish — run as
 * local activities: inside the workflow task, on the worker running the workflow, instead of one
 * round trip each through the general task queue (two workflow tasks and an activity task fewer
 * per step). Backend steps (execute, verify, finalize, undo) never do: a local mount's disk is
 * only on the host polling its queue. Local activities have no heartbeat — while one runs the SDK
 * keeps its workflow task alive — and retry inside the worker, so their attempts are bounded here;
 * what is still failing retryably then continues through the task queue, see runCatalogStep.
 * Each activity is idempotent, so a local attempt lost with its workflow task (a crash before the
 * task completed) simply runs again.
 *
 * The bound is a number of attempts, not scheduleToCloseTimeout: sdk-core (TS SDK 1.24) does not
 * end a local activity whose schedule-to-close passes while it backs off between attempts. It is
 * at least the default bound on unclassified errors (FILESTORE_MAX_UNKNOWN_ERROR_ATTEMPTS, 5), so
 * such an error still ends as INTERNAL within the local attempts; known-transient ones (Postgres
 * or Redis away) fall through to the queue after about half a minute of local backoff — the same
 * wait the queued step would have had, without its workflow task heartbeating all the while.
 */
export const LOCAL_ACTIVITY_PRESETS = {
  journal: {
    startToCloseTimeout: ACTIVITY_PRESETS.journal.startToCloseTimeout,
    // Backoff 0.2 s … 10 s: about 23 s between the first and the eighth attempt.
    retry: { ...ACTIVITY_PRESETS.journal.retry, maximumAttempts: 8 },
    // Every backoff stays in the worker: no timer events in the history.
    localRetryThreshold: '10s',
  },
  commit: {
    // One attempt may use the queued commit's bound (a 100,000-node commit takes tens of seconds).
    startToCloseTimeout: ACTIVITY_PRESETS.commit.startToCloseTimeout,
    retry: { ...ACTIVITY_PRESETS.commit.retry, maximumAttempts: 8 },
    localRetryThreshold: '10s',
  },
  notify: {
    startToCloseTimeout: ACTIVITY_PRESETS.notify.startToCloseTimeout,
    // Backoff 1 s … 16 s: about 31 s between the first and the sixth attempt.
    retry: { ...ACTIVITY_PRESETS.notify.retry, maximumAttempts: 6 },
    localRetryThreshold: '20s',
  },
} as const satisfies Record<string, LocalActivityOptions>;

/**
 * Marks runs whose catalog steps are local activities. A run begun by an older worker (every
 * step through a task queue) has no such marker in its history: replayed by this code it finishes
 * the old way instead of failing its workflow task with a nondeterminism error — and holding its
 * path lock — after an upgrade. Ask once per run ({@link useLocalCatalogSteps}), at its start.
 */
export const LOCAL_CATALOG_STEPS_PATCH = 'catalog-steps-as-local-activities';

/** Whether this run's catalog steps are local activities; call once, at the start of the run. */
export function useLocalCatalogSteps(): boolean {
  return patched(LOCAL_CATALOG_STEPS_PATCH);
}

type CatalogStep = 'beginJournal' | 'commitMutation' | 'commitTransfer' | 'commitReconcile' | 'publishChange';
const PRESET_OF = { beginJournal: 'journal', commitMutation: 'commit', commitTransfer: 'commit', commitReconcile: 'commit', publishChange: 'notify' } as const;

/**
 * A local activity that stopped because its local attempts ran out, not because it failed for
 * good: its last attempt failed retryably, or timed out. A non-retryable (typed) failure or a
 * cancellation is the step's answer and is not retried through the queue. (sdk-core hands a local
 * activity's failure to the workflow as is, without the ActivityFailure a queued one comes in.)
 */
function outOfLocalAttempts(err: unknown): boolean {
  const failure = err instanceof ActivityFailure ? err.cause : err;
  if (failure instanceof TimeoutFailure) return true;
  return failure instanceof ApplicationFailure && !failure.nonRetryable && !NON_RETRYABLE.includes(failure.type ?? '');
}

/**
 * Runs a catalog-only step: as a local activity when `local` (see {@link LOCAL_ACTIVITY_PRESETS}),
 * and through the general task queue with `queued` — the step's unbounded retry, heartbeats, no
 * history growing with local retries — when it is not, or when the local attempts ran out
 * (Postgres or Redis away for longer than half a minute). The activity is the same function either
 * way, wrapped by the same typed-failure wrapper and timed by the same metric.
 */
export async function runCatalogStep<K extends CatalogStep>(
  local: boolean,
  name: K,
  input: Parameters<Activities[K]>[0],
  queued: ActivityOptions = ACTIVITY_PRESETS[PRESET_OF[name]],
): Promise<Awaited<ReturnType<Activities[K]>>> {
  type Step = (arg: typeof input) => Promise<Awaited<ReturnType<Activities[K]>>>;
  const throughQueue = () => (proxyActivities<Activities>(queued)[name] as unknown as Step)(input);
  if (!local) return throughQueue();
  try {
    return await (proxyLocalActivities<Activities>(LOCAL_ACTIVITY_PRESETS[PRESET_OF[name]])[name] as unknown as Step)(input);
  } catch (err) {
    if (!outOfLocalAttempts(err)) throw err;
    log.warn('a catalog step ran out of local attempts; continuing through the task queue', { step: name, error: errorInfoOf(err).message });
    return throughQueue();
  }
}

/** ErrorInfo carried in an ApplicationFailure's details by the activities' typed-failure wrapper. */
export function errorInfoOf(err: unknown): ErrorInfo {
  if (isCancellation(err)) return { name: 'CancelledFailure', code: 'CANCELLED', message: 'the mutation was cancelled', retryable: false };
  let cur: unknown = err;
  while (cur) {
    if (cur instanceof ApplicationFailure) {
      const info = cur.details?.[0] as ErrorInfo | undefined;
      if (info && typeof info === 'object' && typeof info.code === 'string') return info;
      return { name: cur.type ?? 'Error', code: 'INTERNAL', message: cur.message };
    }
    cur = cur instanceof ActivityFailure || cur instanceof Error ? (cur as Error).cause : undefined;
  }
  const e = err as Error;
  return { name: e?.name ?? 'Error', code: 'INTERNAL', message: e?.message ?? String(err) };
}

export function failWith(info: ErrorInfo): never {
  throw ApplicationFailure.create({ type: info.name, message: info.message, nonRetryable: true, details: [info] });
}

export function setStatus(status: string): void {
  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: status }]);
}

/** One compensation: undoes one side's transaction; `undone` is false when it had changed nothing. */
export type UndoStep = () => Promise<{ undone: boolean }>;

/**
 * Ends a mutation that failed after execute may have run: its undo steps in reverse (each
 * idempotent; run even after a timed-out step, which may have applied), then the journal entry
 * ROLLED_BACK (something was undone) or FAILED (nothing had changed). Runs to the end even when
 * the workflow is being cancelled. When an undo step fails permanently the remaining ones are NOT
 * run — for a move across mounts, a source that cannot be restored leaves the target as the only
 * copy — and the entry ends FAILED with compensationIncomplete (abandonJournal) instead of
 * stranding its lock. Rethrows the cancellation, or fails the workflow with the original cause.
 */
export async function compensateAndEnd(req: MutationRequest, journalId: string, err: unknown, undo: readonly UndoStep[]): Promise<never> {
  const cause = errorInfoOf(err);
  log.warn('mutation failed; compensating', { journalId, error: cause.message });
  const status = await CancellationScope.nonCancellable(async () => {
    try {
      let undone = false;
      for (const step of [...undo].reverse()) undone = (await step()).undone || undone;
      const ended = undone ? 'ROLLED_BACK' : 'FAILED';
      await journalActs.rollbackJournal({ journalId, request: req, status: ended, error: cause });
      return ended;
    } catch (undoErr) {
      const compensationError = errorInfoOf(undoErr);
      log.error('compensation could not finish; ending the entry FAILED with compensationIncomplete', { journalId, error: compensationError.message });
      await journalActs.abandonJournal({ journalId, error: cause, compensationError });
      return 'FAILED';
    }
  });
  setStatus(status);
  if (isCancellation(err)) throw err;
  failWith(cause);
}
