/**
 * delete on an S3 mount. What goes is kept until finalize: a file's version id in a versioned
 * bucket, else a server-side copy into staging; a directory's objects are copied into
 * `<staging>/tree/` and then deleted in DeleteObjects batches of at most 1,000 keys, both phases
 * in key order with the plan's cursor saved after each batch, so a retry resumes and undo knows
 * exactly what to put back. An object is deleted only while it is the version backed up
 * (s3-tree-delete.ts).
 */
import { DirectoryNotEmptyError, NotFoundError, PreconditionFailedError } from '../../errors';
import type { DeleteOptions, MutationOutcome } from '../executor';
import { isPreconditionFailed } from './s3-bucket';
import { copyExact } from './s3-copy-exact';
import { keyOf, listPrefixOf, stagingKey } from './s3-keys';
import type { S3DeleteFileState, S3DirState } from './s3-plan';
import { probeOne } from './s3-read';
import { deleteCopiedSources, recordCopiedBatch } from './s3-tree-delete';
import { type S3OpContext, type S3Tx, keepParent, keepPrevious, mapLimit, openStaging } from './s3-steps';

const q = (p: string): string => JSON.stringify(p);

/** delete, planning: what is there; a directory with entries needs `recursive`. */
export async function prepareDelete(ctx: S3OpContext, path: string, opts: DeleteOptions): Promise<S3DeleteFileState | S3DirState> {
  const p = await probeOne(ctx.bucket, path);
  const versioned = await ctx.bucket.isVersioned();
  if (p.file) {
    return { kind: 'delete-file', versioned, createdDirs: [], key: keyOf(ctx.bucket.prefix, path), previous: { etag: p.file.etag, versionId: p.file.versionId, size: p.file.size } };
  }
  if (!p.dir) throw new NotFoundError(q(path), { path });
  const prefix = listPrefixOf(ctx.bucket.prefix, path);
  if (!opts.recursive) {
    const page = await ctx.bucket.listPage({ prefix, maxKeys: 2 });
    // The directory's own marker is not an entry.
    if ((page.Contents ?? []).some((o) => o.Key !== prefix)) throw new DirectoryNotEmptyError(q(path), { path });
  }
  const backup = `${stagingKey(ctx.bucket.prefix, opts.txId, 'tree')}/`;
  return { kind: 'directory', versioned, createdDirs: [], tree: { srcPrefix: prefix, dstPrefix: backup, phase: 'copy', cursor: null, done: 0 } };
}

/** delete of one file: keep it, then a DeleteObject only while it is the object planned (If-Match). */
export async function applyDeleteFile(ctx: S3OpContext, tx: S3Tx, path: string): Promise<MutationOutcome> {
  const state = tx.plan.state as S3DeleteFileState;
  await openStaging(ctx, tx);
  if (!state.deleted) {
    await keepPrevious(ctx, tx, state.key, state.previous);
    await tx.guard();
    try {
      state.deleteMarker = (await ctx.bucket.deleteKey(state.key, { ifMatch: state.previous.etag })).deleteMarker;
    } catch (err) {
      if (!isPreconditionFailed(err)) throw err;
      // Gone already (our own earlier attempt) is done; anything else there now is someone else's write.
      if (await ctx.bucket.head(state.key)) throw new PreconditionFailedError(q(path), { key: state.key });
    }
    state.deleted = true;
    await tx.save();
    await tx.step('committed');
  }
  await keepParent(ctx, tx, path);
  return { op: 'delete', upserted: [], removed: [path], bytesWritten: 0 };
}

/** delete of a directory: copy every object below it into staging, then delete them in batches. */
export async function applyDeleteTree(ctx: S3OpContext, tx: S3Tx, path: string, signal?: AbortSignal): Promise<MutationOutcome> {
  const state = tx.plan.state as S3DirState;
  const tree = state.tree!;
  await openStaging(ctx, tx);
  if (tree.phase === 'copy') {
    for await (const page of ctx.bucket.walk(tree.srcPrefix, { startAfter: tree.cursor })) {
      signal?.throwIfAborted();
      await tx.guard();
      await mapLimit(page, 16, async (item) => {
          const backup = tree.dstPrefix + item.key.slice(tree.srcPrefix.length);
          try {
            // Exact (ETag kept): what undo puts back must be what the catalog records.
            await copyExact(ctx, tx, { key: item.key, etag: item.etag, size: item.size }, backup, { writeSettings: false });
          } catch (err) {
            if (!isPreconditionFailed(err)) throw err;
            throw new PreconditionFailedError(JSON.stringify(item.key), { key: item.key, reason: 'changed while the directory was being deleted' });
          }
      });
      // Each backup was taken at the listed ETag (copy-source-if-match): only that version may be deleted.
      await recordCopiedBatch(ctx, tx, tree, page);
      tree.batches = (tree.batches ?? 0) + 1;
      tree.cursor = page[page.length - 1].key;
      tree.done += page.length;
      await tx.save();
      await tx.step('batch-copied');
    }
    tree.phase = 'delete';
    tree.cursor = null;
    await tx.save();
  }
  if (tree.phase === 'delete') {
    // What was backed up goes, and only that version of it: a key written since stays (and shows);
    // one rewritten since refuses the delete, and undo puts back what already went.
    await deleteCopiedSources(ctx, tx, tree, signal);
    tree.phase = 'done';
    await tx.save();
    await tx.step('committed');
  }
  await keepParent(ctx, tx, path);
  return { op: 'delete', upserted: [], removed: [path], bytesWritten: 0 };
}
