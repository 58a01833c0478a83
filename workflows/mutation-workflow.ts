/**
 * One mutation, durably: begin journal → execute → verify (+ capture metadata) → commit →
 * finalize → publish the change event, with compensation in reverse on any failure after execute
 * was attempted.
 *
 * Round trips: begin, commit and publish touch only the catalog and Redis and run as local
 * activities inside the workflow task that schedules the next backend step (runCatalogStep);
 * execute, verify and finalize go through the mount's queue. A mutation is 4 workflow tasks and
 * 3 activity tasks (was 7 and 6): [begin → schedule execute] execute [schedule verify] verify
 * [commit → schedule finalize] finalize [publish → complete]. Through the queue as before: a begin
 * that waits for a lock, and a commit that may rewrite a whole subtree (commitMayTakeLong).
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
import { CancellationScope, CancelledFailure, log, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { MutationOutcome } from '../src/executors/executor';
import { describeMutation, type MutationRequest, type MutationResult } from '../src/mutations';
import { crossMountMutation } from './cross-mount-workflow';
import { reconcileMutation } from './reconcile-workflow';
import {
  ACTIVITY_PRESETS,
  compensateAndEnd,
  errorInfoOf,
  failWith,
  runCatalogStep,
  setStatus,
  useLocalCatalogSteps,
  type Activities,
} from './workflow-common';

export { ACTIVITY_PRESETS } from './workflow-common';

/** Above this many nodes in the outcome a commit goes through the queue (see commitMayTakeLong). */
const LOCAL_COMMIT_MAX_NODES = 1000;

/**
 * Whether the commit may rewrite a whole subtree in the catalog — a tree copy whose nodes wait in
 * outcome_nodes, a directory moved, a recursive delete: seconds to minutes at 100,000 nodes. Such a
 * commit goes through the queue, where it heartbeats, rather than run as a local activity holding
 * its workflow task open (heartbeated by the SDK every 8 s; one late heartbeat under load times the
 * task out and runs the commit a second time, which then waits for the first). A file or a
 * directory's own row commits locally.
 */
function commitMayTakeLong(req: MutationRequest, outcome: MutationOutcome): boolean {
  if (outcome.upsertedRef || outcome.upserted.length > LOCAL_COMMIT_MAX_NODES) return true;
  if (req.op === 'delete') return req.recursive === true;
  if (req.op === 'move') return outcome.upserted.find((n) => n.path === outcome.moved?.to)?.kind !== 'file';
  return false;
}

export async function mutationWorkflow(req: MutationRequest): Promise<MutationResult> {
  const info = workflowInfo();
  log.info('mutation started', { mutation: describeMutation(req) });
  const local = useLocalCatalogSteps();

  const journalOpts = req.waitForLock
    ? { ...ACTIVITY_PRESETS.journal, scheduleToCloseTimeout: req.lockTimeoutMs ?? 300_000 }
    : ACTIVITY_PRESETS.journal;
  let begun: Awaited<ReturnType<Activities['beginJournal']>>;
  try {
    // Not cancellable: a begin that lands after the workflow stopped waiting would leave a PENDING
    // entry nobody ends. Once begun, a cancel is handled below like any failure.
    // Waiting for a lock (retrying PATH_LOCKED for up to lockTimeoutMs) is not a short local step:
    // it goes through the queue, where a long wait costs no history.
    const beginInput = { request: req, workflowId: info.workflowId, runId: info.runId };
    begun = await CancellationScope.nonCancellable(() => runCatalogStep(local && !req.waitForLock, 'beginJournal', beginInput, journalOpts));
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
  // Catalog only: capture what the backend shows, commit it; nothing runs on the backend to undo.
  if (req.op === 'reconcile') return reconcileMutation(req, journalId, begun.taskQueue, local);
  // Across mounts: the transfer's own steps and placement (cross-mount-workflow.ts).
  if (begun.placement) return crossMountMutation(req, journalId, begun.placement, local);
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
    const localCommit = local && !commitMayTakeLong(req, verified);
    result = await CancellationScope.nonCancellable(() => runCatalogStep(localCommit, 'commitMutation', { journalId, request: req, outcome: verified }));
  } catch (err) {
    return compensateAndEnd(req, journalId, err, [() => cleanupActs.compensateMutation({ journalId, mountId: req.mountId })]);
  }

  // Past commit there is no undo: finalize and publish retry until they succeed, and a cancel of
  // the workflow must not skip them (a lost change event could never be recovered).
  await CancellationScope.nonCancellable(async () => {
    await cleanupActs.finalizeMutation({ journalId, mountId: req.mountId, op: req.op });
    setStatus('COMMITTED');
    // From an activity, after the commit is durable in history: a crash anywhere before the
    // PUBLISH lands only delays the event; only committed mutations reach this line.
    // Only the result: the request may carry up to 256 KiB of inline content, already in history.
    await runCatalogStep(local, 'publishChange', { result });
  });
  return result;
}
