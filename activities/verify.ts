/**
 * Verify: confirms on the backend that what execute reported is really there, and captures the
 * metadata the catalog will record. Runs on the mount's task queue (it stats the backend).
 */
import type { Db } from '../db/client';
import { isOffloaded, outcomePages, updateOutcomeMetas } from '../src/catalog/outcomes';
import { VerificationError } from '../src/errors';
import type { Executor, MutationOutcome, NodeMeta } from '../src/executors/executor';
import type { ExecutorRegistry } from '../src/executor-registry';
import type { MutationRequest } from '../src/mutations';

export interface VerifyDeps {
  db: Db;
  executors: ExecutorRegistry;
}

/** Backend stats kept in flight while verifying an offloaded page: a 100,000-node tree in seconds, not minutes. */
const STAT_CONCURRENCY = 16;

/**
 * Checks one node against the backend (same kind; for files the same size and, where known, the
 * same object, and where the backend stores one the same sha256) and returns its metadata as the
 * backend now reports it. The hash comes from the streaming write: stat never reads content. A
 * failure is retryable: verify retries with backoff, which also waits out eventual consistency.
 */
async function verifyNode(executor: Executor, op: string, expected: NodeMeta): Promise<NodeMeta> {
  const live = await executor.stat(expected.path);
  if (!live) throw new VerificationError(`${expected.path} is missing after ${op}`, { path: expected.path });
  if (live.kind !== expected.kind) throw new VerificationError(`${expected.path} is a ${live.kind}, expected a ${expected.kind}`, { path: expected.path });
  if (expected.kind === 'file' && live.size !== expected.size) {
    throw new VerificationError(`${expected.path} has ${live.size} bytes, expected ${expected.size}`, { path: expected.path });
  }
  if (expected.kind === 'file' && expected.identity && live.identity !== expected.identity) {
    throw new VerificationError(`${expected.path} is not the object this mutation wrote`, { path: expected.path });
  }
  // A backend that stores the hash beside the content (S3 object metadata) reports it on stat:
  // it must be the hash the write computed while streaming.
  if (expected.kind === 'file' && expected.sha256 && live.sha256 && live.sha256 !== expected.sha256) {
    throw new VerificationError(`${expected.path} carries sha256 ${live.sha256}, the mutation wrote ${expected.sha256}`, { path: expected.path });
  }
  return { ...live, sha256: expected.sha256 };
}

/** `fn` over `items`, at most `limit` at a time, results in input order; the first failure is thrown once the rest settled. */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failure: { err: unknown } | null = null;
  const lane = async (): Promise<void> => {
    while (failure === null && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failure) throw (failure as { err: unknown }).err;
  return out;
}

/**
 * Confirms on the backend that every node the outcome reports is there and every removed path is
 * gone; returns the outcome with the captured metadata. An offloaded outcome (see
 * src/catalog/outcomes.ts) is walked in pages and its captured metadata written back to
 * `outcome_nodes`; the returned payload stays a reference.
 */
export async function verifyOutcome(db: Db, executor: Executor, journalId: string, outcome: MutationOutcome): Promise<MutationOutcome> {
  let upserted: NodeMeta[] = [];
  if (isOffloaded(outcome)) {
    let seen = 0;
    for await (const page of outcomePages(db, journalId)) {
      const captured = await mapBounded(page, STAT_CONCURRENCY, (expected) => verifyNode(executor, outcome.op, expected));
      await updateOutcomeMetas(db, journalId, captured);
      seen += page.length;
    }
    // Rows lost between execute and here (a rollback's cleanup racing a stale attempt) would
    // otherwise commit a partial tree.
    if (seen !== outcome.upsertedRef.count) {
      throw new VerificationError(`the stored outcome of ${outcome.op} holds ${seen} nodes, execute reported ${outcome.upsertedRef.count}`, { journalId });
    }
  } else {
    upserted = await mapBounded(outcome.upserted, STAT_CONCURRENCY, (expected) => verifyNode(executor, outcome.op, expected));
  }
  for (const gone of outcome.removed) {
    if (await executor.stat(gone)) throw new VerificationError(`${gone} still exists after ${outcome.op}`, { path: gone });
  }
  return { ...outcome, upserted };
}

export function createVerifyActivities(deps: VerifyDeps) {
  /**
   * Verifies an executed mutation on the backend and returns the outcome with the metadata to
   * commit. `mountId` names the side of a cross-mount copy/move the outcome is of (its target, or
   * a move's source); by default the request's mount.
   */
  async function verifyMutation(input: { journalId: string; request: MutationRequest; outcome: MutationOutcome; mountId?: string }): Promise<MutationOutcome> {
    const executor = await deps.executors.get(input.mountId ?? input.request.mountId);
    return verifyOutcome(deps.db, executor, input.journalId, input.outcome);
  }

  return { verifyMutation };
}
