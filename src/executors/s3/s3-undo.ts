/**
 * Undo and staging cleanup of S3 transactions, driven only by what the plan recorded.
 *
 * Undo puts back what the transaction changed — and only where the bucket still holds what the
 * transaction left there: an object is ours when it carries this transaction's tag (and, once
 * recorded, the ETag we wrote); the previous one comes back from its staging copy or its version,
 * with a condition on our ETag (If-Match) or on nothing being there (If-None-Match: *), so a
 * write that raced in meanwhile is never replaced. An object that is neither ours nor the
 * previous one is someone else's: it is left as it is and its key recorded in the plan
 * (`leftAlone`) for an operator. Each step checks the bucket before acting and the guard before
 * each request, so a crash half-way through undo is finished by the next undo.
 */
import { abortMultipart, listUploadsForKey } from './s3-multipart';
import { type ObjectHead, isPreconditionFailed } from './s3-bucket';
import { stagingTxPrefix } from './s3-keys';
import { copyExact } from './s3-copy-exact';
import { type MarkerRecord, type PreviousObject, type S3DeleteFileState, type S3DirState, type S3FileState, TX_META, type UploadRecord } from './s3-plan';
import { type S3OpContext, type S3Tx, mapLimit, openMarkerKey } from './s3-steps';

/** Notes a key undo left alone because someone else wrote it. */
function leaveAlone(tx: S3Tx, key: string): void {
  const state = tx.plan.state;
  state.leftAlone = [...new Set([...(state.leftAlone ?? []), key])];
}

/** A copy source undo can put back: a staging backup (by its head), or a version of the key itself. */
type PutBackSource = { backup: ObjectHead } | { key: string; versionId: string };

/** The previous object's copy source: its staging backup when one was taken, else its version. */
async function previousSource(ctx: S3OpContext, key: string, previous: PreviousObject): Promise<PutBackSource | null> {
  const backup = previous.backupKey ? await ctx.bucket.head(previous.backupKey) : null;
  if (backup) return { backup };
  if (previous.versionId && (await ctx.bucket.head(key, previous.versionId))) return { key, versionId: previous.versionId };
  return null;
}

/**
 * Copies `from` back to `key` — a backup exactly (metadata and ETag kept, s3-copy-exact.ts) —
 * under `condition`; a 412 means someone else's write is there now, which stays.
 */
async function putBack(ctx: S3OpContext, tx: S3Tx, from: PutBackSource, key: string, condition: { ifMatch: string } | { ifNoneMatch: '*' }): Promise<boolean> {
  await tx.guard();
  try {
    if ('backup' in from) await copyExact(ctx, tx, from.backup, key, { condition });
    else await ctx.bucket.copy(from, key, { condition });
    return true;
  } catch (err) {
    if (!isPreconditionFailed(err)) throw err;
    leaveAlone(tx, key);
    return false;
  }
}

/**
 * Deletes `head` (ours) only while it is still that version. In a versioned bucket its version is
 * deleted for good: what was current before it (if anything) is current again, with its own
 * version id — exactly the object the catalog still records.
 */
async function removeOwn(ctx: S3OpContext, tx: S3Tx, head: ObjectHead): Promise<boolean> {
  await tx.guard();
  if (head.versionId) {
    await ctx.bucket.deleteVersion(head.key, head.versionId);
    return true;
  }
  try {
    await ctx.bucket.deleteKey(head.key, { ifMatch: head.etag });
    return true;
  } catch (err) {
    if (!isPreconditionFailed(err)) throw err;
    leaveAlone(tx, head.key);
    return false;
  }
}

/** Copies our object `head` back to `srcKey` (a move's source), without our tag, create-only. */
async function copyBack(ctx: S3OpContext, tx: S3Tx, head: ObjectHead, srcKey: string): Promise<boolean> {
  const { [TX_META]: _tag, ...metadata } = head.metadata;
  await tx.guard();
  try {
    await copyExact(ctx, tx, head, srcKey, { metadata, tag: false, condition: { ifNoneMatch: '*' } });
    return true;
  } catch (err) {
    if (!isPreconditionFailed(err)) throw err;
    leaveAlone(tx, srcKey);
    return false;
  }
}

/** Removes a `dir/` marker this transaction wrote, while still ours; a parent marker only once something else keeps the parent. */
async function removeMarker(ctx: S3OpContext, tx: S3Tx, marker: MarkerRecord | undefined, onlyIfNotAlone: boolean): Promise<boolean> {
  if (!marker?.etag) return false;
  const own = await ctx.bucket.ownedBy(marker.key, tx.plan.txId);
  if (!own || own.etag !== marker.etag) return false;
  if (onlyIfNotAlone) {
    const page = await ctx.bucket.listPage({ prefix: marker.key, maxKeys: 2 });
    if ((page.Contents ?? []).filter((o) => o.Key !== marker.key).length === 0) return false;
  }
  return removeOwn(ctx, tx, own);
}

async function revertFile(ctx: S3OpContext, tx: S3Tx, state: S3FileState): Promise<boolean> {
  let changed = false;
  const { key, previous, source } = state;
  await abortUploads(ctx, tx, true);
  const cur = await ctx.bucket.head(key);
  const ours = !!cur && cur.metadata[TX_META] === tx.plan.txId && (!state.written || cur.etag === state.written.etag);
  if (tx.plan.op === 'move' && source && !(await ctx.bucket.head(source.key))) {
    // The source went after its copy was verified: it comes back from that copy, if still ours.
    // If it cannot come back (someone wrote there since), our copy is the only one left: it stays.
    if (!ours || !(await copyBack(ctx, tx, cur!, source.key))) {
      leaveAlone(tx, source.key);
      return false;
    }
    changed = true;
  }
  if (ours) {
    const from = previous ? await previousSource(ctx, key, previous) : null;
    if (previous?.versionId && cur!.versionId && from && 'versionId' in from && from.versionId === previous.versionId) {
      // Versioned: dropping our version makes the previous one current again, version id and all.
      changed = (await removeOwn(ctx, tx, cur!)) || changed;
    } else if (from) changed = (await putBack(ctx, tx, from, key, { ifMatch: cur!.etag })) || changed;
    else if (!previous) changed = (await removeOwn(ctx, tx, cur!)) || changed;
    else leaveAlone(tx, key);
  } else if (cur && cur.etag !== previous?.etag && (state.written || cur.metadata[TX_META] !== undefined)) {
    leaveAlone(tx, key);
  }
  return changed;
}

async function revertDeleteFile(ctx: S3OpContext, tx: S3Tx, state: S3DeleteFileState): Promise<boolean> {
  if (await ctx.bucket.head(state.key)) return false; // never deleted, or someone wrote there since
  if (state.deleteMarker) {
    // Versioned: our delete marker goes, and the version it hid is current again, as it was.
    await tx.guard();
    await ctx.bucket.deleteVersion(state.key, state.deleteMarker);
    const back = await ctx.bucket.head(state.key);
    if (back?.etag === state.previous.etag) return true;
    if (back) {
      leaveAlone(tx, state.key);
      return true;
    }
  }
  const from = await previousSource(ctx, state.key, state.previous);
  if (!from) return false;
  return putBack(ctx, tx, from, state.key, { ifNoneMatch: '*' });
}

async function revertTree(ctx: S3OpContext, tx: S3Tx, state: S3DirState): Promise<boolean> {
  const tree = state.tree!;
  const op = tx.plan.op;
  let changed = false;
  await abortUploads(ctx, tx, true);
  // copy / move: what lies at the destination and is ours. delete: the backups in staging.
  for await (const page of ctx.bucket.walk(tree.dstPrefix)) {
    const heads = await mapLimit(page, 16, (item) => ctx.bucket.head(item.key));
    const mine: ObjectHead[] = [];
    for (const head of heads) {
      if (!head) continue;
      const srcKey = tree.srcPrefix + head.key.slice(tree.dstPrefix.length);
      if (op === 'delete') {
        if (!(await ctx.bucket.head(srcKey)) && (await putBack(ctx, tx, { backup: head }, srcKey, { ifNoneMatch: '*' }))) changed = true;
        continue;
      }
      if (head.metadata[TX_META] !== tx.plan.txId) {
        leaveAlone(tx, head.key);
        continue;
      }
      if (op === 'move' && !(await ctx.bucket.head(srcKey))) {
        // Our copy is the only one left when the source cannot come back: it stays.
        if (!(await copyBack(ctx, tx, head, srcKey))) continue;
        changed = true;
      }
      mine.push(head);
    }
    if (mine.length > 0) {
      await tx.guard();
      await ctx.bucket.deleteKeys(mine.map((h) => h.key));
      changed = true;
    }
  }
  return changed;
}

/**
 * Reverses what an S3 plan did, from whatever point it reached. Returns whether anything visible
 * in the mount changed.
 */
export async function revertS3(ctx: S3OpContext, tx: S3Tx): Promise<boolean> {
  const state = tx.plan.state;
  let changed = false;
  switch (state.kind) {
    case 'file':
      changed = await revertFile(ctx, tx, state);
      break;
    case 'delete-file':
      changed = await revertDeleteFile(ctx, tx, state);
      break;
    case 'directory':
      if (state.tree) changed = await revertTree(ctx, tx, state);
      if (await removeMarker(ctx, tx, state.marker, false)) changed = true;
      break;
  }
  // The parent kept by a marker needs it no longer once what was removed is back.
  await removeMarker(ctx, tx, state.parentMarker, true);
  return changed;
}

/** The multipart uploads the plan recorded: a file op's own, and every part copy (tree copies, backups, undo's restores). */
function uploadsOf(tx: S3Tx): UploadRecord[] {
  const state = tx.plan.state;
  return [...(state.kind === 'file' && state.upload ? [state.upload] : []), ...(state.partCopies ?? [])];
}

/**
 * Aborts every unfinished upload of `key` (the path lock makes them this transaction's, or a dead
 * earlier attempt's): a CreateMultipartUpload applied by S3 whose answer was lost is retried by the
 * SDK and the first upload id never seen; lib-storage never reports its upload id at all. Only
 * while the transaction's PENDING entry still holds the path — never from finalize, which runs
 * after commit released it.
 */
export async function abortOtherUploads(ctx: S3OpContext, tx: S3Tx, key: string): Promise<void> {
  for (const u of await listUploadsForKey(ctx.bucket.client, ctx.bucket.name, key)) {
    await tx.guard();
    await abortMultipart(ctx.bucket.client, ctx.bucket.name, key, u.uploadId);
  }
}

/**
 * Aborts the multipart uploads the plan started and did not close. With `byKey` (undo: the path
 * is still locked) also every other upload on a key where the plan started one or streamed one.
 */
async function abortUploads(ctx: S3OpContext, tx: S3Tx, byKey: boolean): Promise<void> {
  const state = tx.plan.state;
  const uploads = uploadsOf(tx);
  let aborted = false;
  for (const u of uploads.filter((u) => !u.closed)) {
    await tx.guard();
    await abortMultipart(ctx.bucket.client, ctx.bucket.name, u.key, u.uploadId);
    u.closed = true;
    aborted = true;
  }
  if (byKey) {
    const keys = new Set(uploads.map((u) => u.key));
    if (state.kind === 'file' && state.streamed) keys.add(state.key);
    for (const key of keys) await abortOtherUploads(ctx, tx, key);
  }
  if (aborted) await tx.save();
}

/**
 * Drops transaction `txId`'s staging: unfinished uploads are aborted, every object under
 * `<prefix>/.filestore-staging/<txId>/` deleted in batches, the `open` marker last (so a crash
 * half-way leaves the transaction listed as pending).
 */
export async function dropS3Staging(ctx: S3OpContext, txId: string, tx: S3Tx | null): Promise<void> {
  // A committed transaction (finalize) no longer holds its path: only its own recorded uploads.
  if (tx) await abortUploads(ctx, tx, !tx.plan.applied || tx.plan.undone !== undefined);
  const open = openMarkerKey(ctx.bucket, txId);
  for await (const page of ctx.bucket.walk(stagingTxPrefix(ctx.bucket.prefix, txId))) {
    const keys = page.map((i) => i.key).filter((k) => k !== open);
    if (keys.length === 0) continue;
    await tx?.guard();
    await ctx.bucket.deleteKeys(keys);
  }
  await tx?.guard();
  await ctx.bucket.deleteKey(open);
}
