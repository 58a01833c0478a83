/**
 * One mutation, durably: begin journal → execute → verify (+ capture metadata) → commit →
 * finalize → publish the change event, with compensation in reverse on any failure after execute
 * was attempted.
 *
 * Cancellation is safe: execute and verify are cancelled with WAIT_CANCELLATION_COMPLETED, so
 * compensation starts only once they have stopped; begin and commit cannot be cancelled (a begun
 * entry is always ended, a commit always lands whole); compensation, the journal's end, finalize
 * and publish run outside cancellation. A cancelled mutation ends COMMITTED or ROLLED_BACK/FAILED,
 * matching the disk.
 *
 * No stranded lock: when undo itself fails permanently the entry still ends — FAILED with
 * compensationIncomplete, nodes INCONSISTENT (abandonJournal) — instead of staying PENDING.
 *
 * Deterministic code only: activities are imported as types, errors and presets are pure.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  isCancellation,
  log,
  proxyActivities,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import type { ErrorInfo } from '../src/errors';
import { NON_RETRYABLE } from '../src/errors';
import { describeMutation, SEARCH_ATTRIBUTES, type MutationRequest, type MutationResult } from '../src/mutations';

type Activities = ReturnType<typeof createActivities>;

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

const journalActs = proxyActivities<Activities>(ACTIVITY_PRESETS.journal);
const commitActs = proxyActivities<Activities>(ACTIVITY_PRESETS.commit);
// Redis is reachable from any worker: the general task queue, not the mount's.
const notifyActs = proxyActivities<Activities>(ACTIVITY_PRESETS.notify);

/** ErrorInfo carried in an ApplicationFailure's details by the activities' typed-failure wrapper. */
function errorInfoOf(err: unknown): ErrorInfo {
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

function failWith(info: ErrorInfo): never {
  throw ApplicationFailure.create({ type: info.name, message: info.message, nonRetryable: true, details: [info] });
}

function setStatus(status: string): void {
  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: status }]);
}

export async function mutationWorkflow(req: MutationRequest): Promise<MutationResult> {
  const info = workflowInfo();
  log.info('mutation started', { mutation: describeMutation(req) });

  const journalOpts = req.waitForLock
    ? { ...ACTIVITY_PRESETS.journal, scheduleToCloseTimeout: req.lockTimeoutMs ?? 300_000 }
    : ACTIVITY_PRESETS.journal;
  let begun: Awaited<ReturnType<Activities['beginJournal']>>;
  try {
    // Not cancellable: a begin that lands after the workflow stopped waiting would leave a PENDING
    // entry nobody ends. Once begun, a cancel is handled below like any failure.
    begun = await CancellationScope.nonCancellable(() =>
      proxyActivities<Activities>(journalOpts).beginJournal({ request: req, workflowId: info.workflowId, runId: info.runId }),
    );
  } catch (err) {
    setStatus('REJECTED');
    failWith(errorInfoOf(err));
  }
  // Same idempotency key as an earlier run: answer with what that run recorded, never execute twice.
  // No change event here: the run that committed published it (its publish retries until it lands).
  if (begun.state === 'committed') {
    setStatus('COMMITTED');
    return begun.result;
  }
  if (begun.state === 'ended') {
    setStatus(begun.status);
    failWith(begun.error);
  }
  const journalId = begun.journalId;
  // Routing comes from the catalog (beginJournal resolved the mount's queue), never from the request.
  const taskQueue = begun.taskQueue;
  const mountActs = proxyActivities<Activities>({ ...ACTIVITY_PRESETS.execute, taskQueue });
  const verifyActs = proxyActivities<Activities>({ ...ACTIVITY_PRESETS.verify, taskQueue });
  const cleanupActs = proxyActivities<Activities>({ ...ACTIVITY_PRESETS.cleanup, taskQueue });

  let result: MutationResult;
  try {
    const executed = await mountActs.executeMutation({ journalId, request: req });
    const verified = await verifyActs.verifyMutation({ journalId, request: req, outcome: executed });
    // A cancel that arrived while verify finished still wins: nothing is committed yet.
    if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('cancelled before commit');
    // The commit is one catalog transaction; cancelling it half-way would leave the disk applied
    // and the journal undecided.
    result = await CancellationScope.nonCancellable(() => commitActs.commitMutation({ journalId, request: req, outcome: verified }));
  } catch (err) {
    const cause = errorInfoOf(err);
    log.warn('mutation failed; compensating', { journalId, error: cause.message });
    // Undo runs even after a timed-out execute (it may have applied) and is idempotent; it runs to
    // the end even when the workflow is being cancelled.
    const status = await CancellationScope.nonCancellable(async () => {
      try {
        const { undone } = await cleanupActs.compensateMutation({ journalId, mountId: req.mountId });
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

  // Past commit there is no undo: finalize and publish retry until they succeed, and a cancel of
  // the workflow must not skip them (a lost change event could never be recovered).
  await CancellationScope.nonCancellable(async () => {
    await cleanupActs.finalizeMutation({ journalId, mountId: req.mountId, op: req.op });
    setStatus('COMMITTED');
    // From an activity, after the commit is durable in history: a crash anywhere before the
    // PUBLISH lands only delays the event; only committed mutations reach this line.
    // Only the result: the request may carry up to 256 KiB of inline content, already in history.
    await notifyActs.publishChange({ result });
  });
  return result;
}
