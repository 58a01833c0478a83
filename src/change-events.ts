/**
 * Change events: one JSON message per committed mutation, published on the Redis Pub/Sub channel
 * {@link CHANGES_CHANNEL} by the workflow's `publishChange` activity. Pure types and functions
 * only, so subscribers (SDK users, tests) and workflow-side code can import this file.
 *
 * Delivery is at-least-once: a retried publish may repeat an event; dedupe by `journalId`.
 * Pub/Sub itself keeps nothing: a subscriber only sees events published while it is subscribed.
 *
 * ```ts
 * const sub = new Redis(config.redisUrl);
 * await sub.subscribe(CHANGES_CHANNEL);
 * sub.on('message', (_channel, message) => {
 *   const event = JSON.parse(message) as ChangeEvent;
 * });
 * ```
 */
import type { MutationOp, MutationResult } from './mutations';

/** Redis Pub/Sub channel of change events (shared by every mount: filter by `mountId`). */
export const CHANGES_CHANNEL = 'filestore:changes';

/** The JSON payload of one message on {@link CHANGES_CHANNEL}. */
export interface ChangeEvent {
  mountId: string;
  /** The path the mutation acted on (for move/copy: the source). */
  path: string;
  /** Destination of a move or copy; null for the other ops. */
  targetPath: string | null;
  /** Mount of `targetPath` for a copy or move between mounts; absent when it is `mountId`. */
  targetMountId?: string;
  op: MutationOp;
  /** Catalog version of the node the mutation left behind (write/copy/move target, mkdir dir); null after delete. */
  version: number | null;
  /** The committed journal entry: unique per mutation, the key to dedupe repeated events by. */
  journalId: string;
  workflowId: string;
  /** ISO 8601 time of the commit (not of the publish). */
  committedAt: string;
}

/** The change event of a committed mutation. */
export function changeEventOf(result: MutationResult): ChangeEvent {
  return {
    mountId: result.mountId,
    path: result.path,
    targetPath: result.targetPath,
    ...(result.targetMountId !== undefined ? { targetMountId: result.targetMountId } : {}),
    op: result.op,
    version: result.node?.version ?? null,
    journalId: result.journalId,
    workflowId: result.workflowId,
    committedAt: result.committedAt,
  };
}
