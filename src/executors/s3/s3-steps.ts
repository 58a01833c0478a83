/**
 * Steps every S3 mutation shares, each idempotent and recorded in the plan before or right after
 * its request: opening the transaction's staging, keeping what a write or delete replaces
 * (a server-side copy into staging, or its version id in a versioned bucket), landing an object
 * under a conditional request, and keeping a parent directory that a removal would empty.
 */
import { PreconditionFailedError } from '../../errors';
import { bytesWritten } from '../../metrics';
import { parentPath } from '../../paths';
import type { MutationOptions, NodeMeta } from '../executor';
import { type ObjectHead, type S3Bucket, type WriteCondition, isPreconditionFailed } from './s3-bucket';
import { dirMarkerKey, listPrefixOf, stagingKey } from './s3-keys';
import { copyExact } from './s3-copy-exact';
import type { PreviousObject, S3PlanState, WrittenObject } from './s3-plan';
import { dirMeta, fileMeta, storedSha256 } from './s3-read';

import type { S3OpContext, S3Tx } from './s3-context';

export type { S3OpContext, S3TransferSettings, S3Tx } from './s3-context';

const q = (p: string): string => JSON.stringify(p);

/** The staging object whose presence marks a transaction pending (until finalize deletes it). */
export function openMarkerKey(bucket: S3Bucket, txId: string): string {
  return stagingKey(bucket.prefix, txId, 'open');
}

/**
 * Writes the transaction's `open` staging object, once, before its first destructive request:
 * pendingTransactions() lists these, and the janitor finds a crashed transaction's uploads and
 * backups through them.
 */
export async function openStaging(ctx: S3OpContext, tx: S3Tx): Promise<void> {
  const state = tx.plan.state;
  if (state.opened) return;
  await tx.guard();
  await ctx.bucket.put(openMarkerKey(ctx.bucket, tx.plan.txId), Buffer.alloc(0), EMPTY_SHA256, { txId: tx.plan.txId, writeSettings: false });
  state.opened = true;
  await tx.save();
  await tx.step('opened');
}

export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * Keeps the object the op will replace or delete until finalize: in a versioned bucket its version
 * id (recorded when planning) is enough; otherwise a server-side copy into staging, made only
 * while the object is still the one planned (x-amz-copy-source-if-match), so a write that raced
 * in since planning is refused instead of being taken for the previous content.
 */
export async function keepPrevious(ctx: S3OpContext, tx: S3Tx, key: string, previous: PreviousObject): Promise<void> {
  if (tx.plan.state.versioned && previous.versionId) return;
  if (previous.backupKey && (await ctx.bucket.head(previous.backupKey))) return;
  if (!previous.backupKey) {
    previous.backupKey = stagingKey(ctx.bucket.prefix, tx.plan.txId, 'backup');
    await tx.save();
  }
  try {
    // Exact (ETag kept): what undo puts back must be what the catalog records.
    await copyExact(ctx, tx, { key, etag: previous.etag, size: previous.size }, previous.backupKey, { writeSettings: false });
  } catch (err) {
    if (isPreconditionFailed(err)) throw new PreconditionFailedError(q(tx.plan.target), { key });
    throw err;
  }
  await tx.step('backup-taken');
}

/** The condition a write of the target must meet: nothing there (create), or exactly the object seen when planning. */
export function targetCondition(previous: PreviousObject | null): WriteCondition {
  return previous ? { ifMatch: previous.etag } : { ifNoneMatch: '*' };
}

/** The object at `key` if this transaction wrote it (recognised by its tag), as a {@link WrittenObject}. */
export async function ownWrite(ctx: S3OpContext, txId: string, key: string): Promise<WrittenObject | null> {
  const head = await ctx.bucket.ownedBy(key, txId);
  return head ? writtenOf(head) : null;
}

export function writtenOf(head: ObjectHead, sha256?: string): WrittenObject {
  return { etag: head.etag, versionId: head.versionId, size: head.size, sha256: sha256 ?? storedSha256(head) ?? '' };
}

/**
 * Runs the request that lands the target (`send`, given its destination condition), records
 * what it wrote, and reports the step. A refused condition (412) is our own earlier attempt when
 * the object carries this transaction's tag (a crash after the request, before the plan save);
 * anything else is someone else's write: PRECONDITION_FAILED, permanent, nothing overwritten.
 */
export async function landTarget(
  ctx: S3OpContext,
  tx: S3Tx,
  key: string,
  previous: PreviousObject | null,
  send: (condition: WriteCondition) => Promise<WrittenObject>,
): Promise<WrittenObject> {
  const state = tx.plan.state as Extract<S3PlanState, { kind: 'file' }>;
  if (state.written) return state.written;
  let written: WrittenObject;
  try {
    await tx.guard();
    written = await send(targetCondition(previous));
  } catch (err) {
    if (!isPreconditionFailed(err)) throw err;
    const own = await ownWrite(ctx, tx.plan.txId, key);
    if (!own) throw new PreconditionFailedError(q(tx.plan.target), { key });
    written = own;
  }
  state.written = written;
  if (state.upload) state.upload.closed = true;
  await tx.save();
  await tx.step('committed');
  return written;
}

/** Metadata of what the op wrote at `path`: HeadObject when it still holds our write, else what we recorded. */
export async function writtenMeta(ctx: S3OpContext, path: string, key: string, written: WrittenObject): Promise<NodeMeta> {
  const head = await ctx.bucket.head(key);
  if (head && head.etag === written.etag) return { ...fileMeta(path, head), sha256: written.sha256 };
  const identity = written.versionId ? `${written.etag}:${written.versionId}` : written.etag;
  return { ...dirMeta(path), kind: 'file', size: written.size, sha256: written.sha256, etag: written.etag, versionId: written.versionId, mtime: new Date().toISOString(), identity };
}

/**
 * After `path` left the namespace (delete, move source): if its parent (not the root) now has no
 * key left, writes the parent's `dir/` marker so the directory stays, as it would on a disk and
 * as the catalog still records it. The marker is recorded before it is written; undo removes it.
 */
export async function keepParent(ctx: S3OpContext, tx: S3Tx, path: string): Promise<void> {
  const parent = parentPath(path);
  const state = tx.plan.state;
  if (parent === '' || state.parentMarker?.etag) return;
  if (!state.parentMarker && (await ctx.bucket.hasKeysUnder(listPrefixOf(ctx.bucket.prefix, parent)))) return;
  const key = dirMarkerKey(ctx.bucket.prefix, parent);
  if (!state.parentMarker) {
    state.parentMarker = { key };
    await tx.save();
  }
  await tx.guard();
  try {
    const ref = await ctx.bucket.put(key, Buffer.alloc(0), EMPTY_SHA256, { txId: tx.plan.txId, condition: { ifNoneMatch: '*' } });
    state.parentMarker.etag = ref.etag;
  } catch (err) {
    if (!isPreconditionFailed(err)) throw err;
    const own = await ctx.bucket.ownedBy(key, tx.plan.txId);
    // Someone else's marker keeps the directory just as well; it is not ours to remove on undo.
    if (own) state.parentMarker.etag = own.etag;
    else delete state.parentMarker;
  }
  await tx.save();
}

/** Counts bytes sent to the backend (filestore_bytes_written_total). */
export function countBytes(ctx: S3OpContext, n: number): void {
  if (n > 0) bytesWritten.inc({ backend: 's3', mount: ctx.bucket.mountId }, n);
}

/** Reports progress, if the caller asked for it. */
export function progress(opts: Pick<MutationOptions, 'onProgress'>, bytes: number): void {
  opts.onProgress?.(bytes);
}

/** Directory metas of created directories (parents first). */
export function dirMetas(paths: string[]): NodeMeta[] {
  return paths.map(dirMeta);
}

/** Runs `fn` over `items`, at most `limit` at a time. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}
