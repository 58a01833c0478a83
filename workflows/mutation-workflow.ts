/**
 * One mutation, durably: begin journal → execute → verify (+ capture metadata) → commit →
 * finalize → publish the change event, with compensation in reverse on any failure after execute
 * was attempted.
 * Deterministic code only: activities are imported as types, errors and presets are pure.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
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
    // A 1 TiB write at disk speed takes hours; liveness comes from the heartbeat, not this bound.
    startToCloseTimeout: '24h',
    heartbeatTimeout: '10s',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', nonRetryableErrorTypes: NON_RETRYABLE },
  },
  verify: {
    startToCloseTimeout: '5m',
    // Verify retries only for eventual consistency; past that the mutation is rolled back.
    retry: { initialInterval: '250ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 8, nonRetryableErrorTypes: NON_RETRYABLE },
  },
  cleanup: {
    // Compensation and finalize must eventually succeed: unlimited retries, bounded backoff.
    startToCloseTimeout: '1h',
    heartbeatTimeout: '30s',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
  },
  notify: {
    // The change event of a committed mutation must eventually go out: unlimited retries, bounded
    // backoff. A short attempt bound, so a Redis that does not answer means a retry, not a hang.
    startToCloseTimeout: '10s',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
  },
} as const;

const journalActs = proxyActivities<Activities>(ACTIVITY_PRESETS.journal);
// Redis is reachable from any worker: the general task queue, not the mount's.
const notifyActs = proxyActivities<Activities>(ACTIVITY_PRESETS.notify);

/** ErrorInfo carried in an ApplicationFailure's details by the activities' typed-failure wrapper. */
function errorInfoOf(err: unknown): ErrorInfo {
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

export async function mutationWorkflow(req: MutationRequest): Promise<MutationResult> {
  const info = workflowInfo();
  log.info('mutation started', { mutation: describeMutation(req) });

  const journalOpts = req.waitForLock
    ? { ...ACTIVITY_PRESETS.journal, scheduleToCloseTimeout: req.lockTimeoutMs ?? 300_000 }
    : ACTIVITY_PRESETS.journal;
  let begun: Awaited<ReturnType<Activities['beginJournal']>>;
  try {
    begun = await proxyActivities<Activities>(journalOpts).beginJournal({ request: req, workflowId: info.workflowId, runId: info.runId });
  } catch (err) {
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: 'REJECTED' }]);
    failWith(errorInfoOf(err));
  }
  // Same idempotency key as an earlier run: answer with what that run recorded, never execute twice.
  // No change event here: the run that committed published it (its publish retries until it lands).
  if (begun.state === 'committed') {
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: 'COMMITTED' }]);
    return begun.result;
  }
  if (begun.state === 'ended') {
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: begun.status }]);
    failWith(begun.error);
  }
  const journalId = begun.journalId;

  const mountActs = proxyActivities<Activities>({ ...ACTIVITY_PRESETS.execute, taskQueue: req.mountTaskQueue });
  const verifyActs = proxyActivities<Activities>({ ...ACTIVITY_PRESETS.verify, taskQueue: req.mountTaskQueue });
  const cleanupActs = proxyActivities<Activities>({ ...ACTIVITY_PRESETS.cleanup, taskQueue: req.mountTaskQueue });

  const compensations: Array<() => Promise<boolean>> = [];
  let result: MutationResult;
  try {
    // Pushed before execute: a timed-out execute may still have applied, and undo is idempotent.
    compensations.push(async () => (await cleanupActs.compensateMutation({ journalId, mountId: req.mountId })).undone);
    const executed = await mountActs.executeMutation({ journalId, request: req });
    const verified = await verifyActs.verifyMutation({ journalId, request: req, outcome: executed });
    result = await journalActs.commitMutation({ journalId, request: req, outcome: verified });
  } catch (err) {
    const cause = errorInfoOf(err);
    log.warn('mutation failed; compensating', { journalId, error: cause.message });
    // Compensation must run to the end even if the workflow is being cancelled.
    const undone = await CancellationScope.nonCancellable(async () => {
      let any = false;
      for (const undo of compensations.reverse()) any = (await undo()) || any;
      return any;
    });
    const status = undone ? 'ROLLED_BACK' : 'FAILED';
    await CancellationScope.nonCancellable(() => journalActs.rollbackJournal({ journalId, request: req, status, error: cause }));
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: status }]);
    failWith(cause);
  }

  // Past commit there is no undo: finalize and publish retry until they succeed, and a cancel of
  // the workflow must not skip them (a lost change event could never be recovered).
  await CancellationScope.nonCancellable(async () => {
    await cleanupActs.finalizeMutation({ journalId, mountId: req.mountId });
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: 'COMMITTED' }]);
    // From an activity, after the commit is durable in history: a crash anywhere before the
    // PUBLISH lands only delays the event; only committed mutations reach this line.
    // Only the result: the request may carry up to 256 KiB of inline content, already in history.
    await notifyActs.publishChange({ result });
  });
  return result;
}
