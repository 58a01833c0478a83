/**
 * Workflow bundle entry for the benchmarks: everything the real worker registers, plus
 * `bareWorkflow`, the Temporal-only baseline a mutation is compared against.
 *
 * `bareWorkflow` has the shape of `mutationWorkflow` with Filestore taken out: six no-op
 * activities in sequence, on the same two task queues and with the same timeout/retry presets —
 * begin, commit and publish on the base queue, execute, verify and finalize on the second ("mount") queue —
 * each carrying the same payload the mutation passes around (its request, with the inline
 * content). What is left is the cost of orchestration alone.
 * Deterministic code only: the activities are imported as types.
 */
import { proxyActivities } from '@temporalio/workflow';
import { ACTIVITY_PRESETS } from '../workflows/mutation-workflow';
import type { createBareActivities } from './bench-stack';

export * from '../workflows';

type BareActivities = ReturnType<typeof createBareActivities>;

export interface BareInput {
  /** Queue of the "mount" activities (execute, verify, finalize). */
  secondTaskQueue: string;
  /** Stands in for the mutation request (a 4 KiB write carries ~5.5 KiB of base64). */
  payload: string;
}

export async function bareWorkflow(input: BareInput): Promise<{ steps: number }> {
  const base = proxyActivities<BareActivities>(ACTIVITY_PRESETS.journal);
  const execute = proxyActivities<BareActivities>({ ...ACTIVITY_PRESETS.execute, taskQueue: input.secondTaskQueue });
  const verify = proxyActivities<BareActivities>({ ...ACTIVITY_PRESETS.verify, taskQueue: input.secondTaskQueue });
  const cleanup = proxyActivities<BareActivities>({ ...ACTIVITY_PRESETS.cleanup, taskQueue: input.secondTaskQueue });

  const begun = await base.bareBegin({ payload: input.payload });
  const executed = await execute.bareExecute({ payload: input.payload, step: begun.step });
  const verified = await verify.bareVerify({ payload: input.payload, step: executed.step });
  const committed = await base.bareCommit({ payload: input.payload, step: verified.step });
  const finalized = await cleanup.bareFinalize({ step: committed.step });
  const published = await proxyActivities<BareActivities>(ACTIVITY_PRESETS.notify).barePublish({ step: finalized.step });
  return { steps: published.step };
}
