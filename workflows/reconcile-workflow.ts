/**
 * The reconcile path of the mutation workflow, after beginJournal: capture what the backend shows
 * (on the mount's queue) → commit it to the catalog → publish the change event. A reconcile never
 * changes the backend, so a failure has nothing to undo: the entry ends FAILED with the cause.
 *
 * Deterministic code only: activities are imported as types.
 */
import { CancellationScope, CancelledFailure, proxyActivities } from '@temporalio/workflow';
import type { MutationResult, ReconcileRequest } from '../src/mutations';
import { ACTIVITY_PRESETS, compensateAndEnd, runCatalogStep, setStatus, type Activities } from './workflow-common';

/**
 * Capture reads the backend like execute does (a tree's hashes can take hours; liveness from the
 * heartbeat), but a file that keeps changing under it must not be retried for ever.
 */
const CAPTURE_PRESET = { ...ACTIVITY_PRESETS.execute, retry: { ...ACTIVITY_PRESETS.execute.retry, maximumAttempts: 10 } };

export async function reconcileMutation(req: ReconcileRequest, journalId: string, taskQueue: string, local: boolean): Promise<MutationResult> {
  const acts = proxyActivities<Activities>({ ...CAPTURE_PRESET, taskQueue });
  let result: MutationResult;
  try {
    const capture = await acts.captureReconcile({ journalId, request: req });
    if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('cancelled before commit');
    // One catalog transaction, never cancelled half-way; a subtree's commit goes through the queue
    // (where it heartbeats) instead of holding the workflow task open.
    result = await CancellationScope.nonCancellable(() => runCatalogStep(local && !req.recursive, 'commitReconcile', { journalId, request: req, capture }));
  } catch (err) {
    return compensateAndEnd(req, journalId, err, []);
  }
  await CancellationScope.nonCancellable(async () => {
    setStatus('COMMITTED');
    await runCatalogStep(local, 'publishChange', { result });
  });
  return result;
}
