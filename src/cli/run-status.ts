/**
 * `filestore status <workflow-id>`: a mutation run as Temporal knows it — still running, or how it
 * ended (the MutationResult, or the typed error it failed with). Loaded only by that verb: it needs
 * the connected Temporal client.
 */
import type { FilestoreClient } from '../client/filestore-client';
import { toFilestoreError } from '../client/filestore-client';
import { NotFoundError, toErrorInfo, type ErrorInfo } from '../errors';
import type { MutationResult } from '../mutations';

/** A run's state. `COMMITTED` is a run that completed (its result is the committed mutation). */
export interface RunStatus {
  workflowId: string;
  runId: string;
  /** RUNNING, COMMITTED, FAILED, CANCELLED, TERMINATED, TIMED_OUT, CONTINUED_AS_NEW or UNKNOWN. */
  status: string;
  startedAt: string;
  closedAt: string | null;
  result?: MutationResult;
  error?: ErrorInfo;
}

/** The latest run of `workflowId`; NOT_FOUND when Temporal has no such workflow. */
export async function runStatus(client: FilestoreClient, workflowId: string): Promise<RunStatus> {
  const handle = client.temporal.workflow.getHandle(workflowId);
  let described: Awaited<ReturnType<typeof handle.describe>>;
  try {
    described = await handle.describe();
  } catch (err) {
    if ((err as Error).name === 'WorkflowNotFoundError') throw new NotFoundError(`workflow ${JSON.stringify(workflowId)}`, { workflowId });
    throw err;
  }
  const name = described.status.name;
  const base = {
    workflowId,
    runId: described.runId,
    status: name === 'COMPLETED' ? 'COMMITTED' : name,
    startedAt: described.startTime.toISOString(),
    closedAt: described.closeTime ? described.closeTime.toISOString() : null,
  };
  if (name === 'RUNNING') return base;
  // Closed: its outcome (the same run: describe and result agree on the latest run id).
  try {
    const result = (await client.temporal.workflow.getHandle(workflowId, described.runId).result()) as MutationResult;
    return { ...base, result };
  } catch (err) {
    return { ...base, error: toErrorInfo(toFilestoreError(err)) };
  }
}
