/**
 * A copy or move between two mounts, as one durable mutation under one journal entry (which
 * locks the source path on the source mount and the target path on the target mount):
 *
 *   prepare   (transfer queue)  both mounts reachable from the transfer's host, source a file,
 *                               real paths claimed — writes nothing
 *   transfer  (transfer queue)  source.openRead → target.write, staged under the journal id
 *   verify    (target queue)    the target is there, as written
 *   move only: delete source (source queue), staged under the journal id on the source mount —
 *              only after the target was verified — then verify it is gone
 *   commit    (local activity)  ONE transaction: target nodes, source DELETED (move), COMMITTED
 *   finalize  each side on its own queue, then the change event (local activity)
 *
 * On failure the undo steps run in reverse (source restored before the target's write is undone);
 * see compensateAndEnd. Cancellation behaves as in mutationWorkflow: backend steps are cancelled
 * WAIT_CANCELLATION_COMPLETED, commit, compensation, finalize and publish are not cancellable.
 */
import { CancellationScope, CancelledFailure, proxyActivities } from '@temporalio/workflow';
import type { TransferPlacement } from '../activities/journal';
import type { MutationOutcome } from '../src/executors/executor';
import type { MutationRequest, MutationResult } from '../src/mutations';
import { ACTIVITY_PRESETS, compensateAndEnd, runCatalogStep, setStatus, type Activities, type UndoStep } from './workflow-common';

function onQueue(preset: keyof typeof ACTIVITY_PRESETS, taskQueue: string) {
  return proxyActivities<Activities>({ ...ACTIVITY_PRESETS[preset], taskQueue });
}

function throwIfCancelled(step: string): void {
  if (CancellationScope.current().consideredCancelled) throw new CancelledFailure(`cancelled before ${step}`);
}

/**
 * Runs a begun cross-mount copy or move to COMMITTED, or compensates and fails. `local`: the
 * run's catalog steps are local activities (see runCatalogStep).
 */
export async function crossMountMutation(req: MutationRequest, journalId: string, placement: TransferPlacement, local: boolean): Promise<MutationResult> {
  const { targetMountId } = placement;
  const transfer = onQueue('execute', placement.transferQueue);
  const sourceExec = onQueue('execute', placement.sourceQueue);
  const targetVerify = onQueue('verify', placement.targetQueue);
  const sourceVerify = onQueue('verify', placement.sourceQueue);
  const targetCleanup = onQueue('cleanup', placement.targetQueue);
  const sourceCleanup = onQueue('cleanup', placement.sourceQueue);

  const undo: UndoStep[] = [];
  let result: MutationResult;
  try {
    // Writes nothing: when it fails (a target not on this host, a directory source) there is
    // nothing to undo — and the target's queue may have no worker to undo on.
    await transfer.prepareTransfer({ journalId, request: req });
    // From here the target may be written, even by an attempt that timed out: its undo always runs.
    undo.push(() => targetCleanup.compensateMutation({ journalId, mountId: targetMountId }));
    const transferred = await transfer.transferToTarget({ journalId, request: req });
    const target = await targetVerify.verifyMutation({ journalId, request: req, outcome: transferred.outcome, mountId: targetMountId });

    let source: MutationOutcome | null = null;
    if (req.op === 'move') {
      // The source is deleted only once the target is verified, and not after a cancel.
      throwIfCancelled('deleting the source');
      undo.push(() => sourceCleanup.compensateMutation({ journalId, mountId: req.mountId }));
      const removed = await sourceExec.deleteTransferSource({ journalId, request: req, source: transferred.source });
      source = await sourceVerify.verifyMutation({ journalId, request: req, outcome: removed, mountId: req.mountId });
    }
    throwIfCancelled('commit');
    const verified = { target, source };
    result = await CancellationScope.nonCancellable(() => runCatalogStep(local, 'commitTransfer', { journalId, request: req, ...verified }));
  } catch (err) {
    return compensateAndEnd(req, journalId, err, undo);
  }

  await CancellationScope.nonCancellable(async () => {
    await targetCleanup.finalizeMutation({ journalId, mountId: targetMountId, op: req.op });
    if (req.op === 'move') await sourceCleanup.finalizeMutation({ journalId, mountId: req.mountId, op: req.op });
    setStatus('COMMITTED');
    await runCatalogStep(local, 'publishChange', { result });
  });
  return result;
}
