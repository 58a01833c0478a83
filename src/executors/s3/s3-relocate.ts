/**
 * copy and move on an S3 mount. S3 has no rename: a move is a copy (only while the source is the
 * version planned: x-amz-copy-source-if-match), a check that the copy is in place (HeadObject),
 * then the source's deletion (`capabilities().atomicRename` is false). Objects are copied server
 * side — CopyObject up to 5 GiB, part copies above — and a directory in bounded batches in key
 * order, the plan's cursor saved after each batch so a retry resumes where the last attempt
 * stopped.
 */
import { createHash } from 'node:crypto';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { AlreadyExistsError, IsADirectoryError, NotFoundError, PreconditionFailedError, TreeTooLargeError } from '../../errors';
import type { CopyOptions, KnownContent, MoveOptions, MutationOutcome, NodeMeta } from '../executor';
import { type ObjectHead, type WriteCondition, isPreconditionFailed } from './s3-bucket';
import { assertKeyLength, entryOfKey, keyOf, listPrefixOf, pathOfKey } from './s3-keys';
import { type ExactCopyOptions, copyExact } from './s3-copy-exact';
import { type S3DirState, type S3FileState, SHA256_META, type SourceObject, TX_META, type UploadRecord, type WrittenObject } from './s3-plan';
import { dirMeta, fileMeta, listPath, missingParents, probeOne, storedSha256 } from './s3-read';
import { type S3OpContext, type S3Tx, dirMetas, mapLimit, progress, keepParent, keepPrevious, landTarget, openStaging, ownWrite, writtenMeta } from './s3-steps';
import { deleteCopiedSources, recordCopiedBatch } from './s3-tree-delete';

const q = (p: string): string => JSON.stringify(p);
/** Objects copied at once within a batch. */
const COPY_CONCURRENCY = 8;

/** Hex sha256 of one object version, streamed (only while it is still that version). */
async function hashObject(ctx: S3OpContext, key: string, etag: string, signal?: AbortSignal): Promise<string> {
  const res = await ctx.bucket.send({ key }, () =>
    ctx.bucket.client.send(new GetObjectCommand({ Bucket: ctx.bucket.name, Key: key, IfMatch: `"${etag}"` }), { abortSignal: signal }),
  );
  const hash = createHash('sha256');
  for await (const chunk of res.Body as AsyncIterable<Buffer>) hash.update(chunk);
  return hash.digest('hex');
}

/** The source object as a copy needs it; its sha256 from its metadata or the catalog (else null: read when applying). */
function sourceOf(head: ObjectHead, known: KnownContent | undefined): SourceObject {
  const { [TX_META]: _tag, ...metadata } = head.metadata;
  const catalogued = known && known.size === head.size && known.mtime === head.lastModified.toISOString() ? known.sha256.toLowerCase() : null;
  return { key: head.key, etag: head.etag, versionId: head.versionId, size: head.size, sha256: storedSha256(head) ?? catalogued, metadata };
}

/** copy / move, planning: source and destination checked as on a disk, the replaced object recorded. */
export async function prepareRelocate(ctx: S3OpContext, op: 'copy' | 'move', from: string, to: string, opts: CopyOptions | MoveOptions): Promise<S3FileState | S3DirState> {
  const src = await probeOne(ctx.bucket, from);
  if (!src.file && !src.dir) throw new NotFoundError(`${op} source ${q(from)}`, { path: from });
  const isDir = src.dir;
  const recursive = (opts as CopyOptions).recursive ?? false;
  if (op === 'copy' && isDir && !recursive) throw new IsADirectoryError(`${q(from)} (pass recursive to copy a directory)`, { path: from });
  const dst = await probeOne(ctx.bucket, to);
  const dstThere = dst.file !== null || dst.dir;
  if (op === 'copy' && dstThere && (isDir || dst.dir)) {
    throw isDir ? new AlreadyExistsError(q(to), { path: to }) : new IsADirectoryError(`copy destination ${q(to)}`, { path: to });
  }
  if (dstThere && (!opts.overwrite || dst.dir || isDir)) throw new AlreadyExistsError(q(to), { path: to });
  const createdDirs = await missingParents(ctx.bucket, to, opts.createParents ?? true);
  const versioned = await ctx.bucket.isVersioned();
  if (!isDir) {
    const previous = dst.file ? { etag: dst.file.etag, versionId: dst.file.versionId, size: dst.file.size } : null;
    return { kind: 'file', versioned, createdDirs, key: keyOf(ctx.bucket.prefix, to), previous, source: sourceOf(src.file!, (opts as CopyOptions).known?.['']) };
  }
  const srcPrefix = listPrefixOf(ctx.bucket.prefix, from);
  if (op === 'copy' && (opts as CopyOptions).maxEntries !== undefined) {
    const limit = (opts as CopyOptions).maxEntries!;
    let entries = 0;
    for await (const _ of listPath(ctx.bucket, from, { recursive: true })) {
      // The root counts as one entry, as on a disk.
      if (++entries + 1 > limit) throw new TreeTooLargeError(from, limit);
    }
  }
  return { kind: 'directory', versioned, createdDirs, tree: { srcPrefix, dstPrefix: listPrefixOf(ctx.bucket.prefix, to), phase: 'copy', cursor: null, done: 0 } };
}

/**
 * Copies one object server side to `dstKey` under `condition`, with `metadata` (sha256 included)
 * and this transaction's tag, keeping its ETag where it was uploaded in parts (s3-copy-exact.ts).
 */
async function copyOne(
  ctx: S3OpContext,
  tx: S3Tx,
  src: { key: string; etag: string; size: number },
  dstKey: string,
  metadata: Record<string, string>,
  condition: WriteCondition,
  upload: ExactCopyOptions['upload'],
  signal?: AbortSignal,
): Promise<WrittenObject> {
  const ref = await copyExact(ctx, tx, src, dstKey, { metadata, condition, upload, signal });
  return { ...ref, size: src.size, sha256: metadata[SHA256_META] ?? '' };
}

/** copy / move of one file: keep the replaced object, copy conditionally, and for a move verify then delete the source. */
export async function applyRelocateFile(ctx: S3OpContext, tx: S3Tx, op: 'copy' | 'move', from: string, to: string, opts: CopyOptions | MoveOptions): Promise<MutationOutcome> {
  const state = tx.plan.state as S3FileState;
  const source = state.source!;
  const resumed = state.opened === true;
  await openStaging(ctx, tx);
  if (state.previous) await keepPrevious(ctx, tx, state.key, state.previous);
  if (resumed && !state.written) {
    const own = await ownWrite(ctx, tx.plan.txId, state.key);
    if (own) {
      state.written = own;
      await tx.save();
    }
  }
  if (!state.written && source.sha256 === null) {
    source.sha256 = await hashObject(ctx, source.key, source.etag, opts.signal);
    await tx.save();
  }
  const uploads = {
    current: () => (state.upload && !state.upload.closed ? state.upload : null),
    record: async (u: UploadRecord) => {
      state.upload = u;
      await tx.save();
    },
  };
  const written = await landTarget(ctx, tx, state.key, state.previous, (condition) =>
    copyOne(ctx, tx, source, state.key, { ...source.metadata, [SHA256_META]: source.sha256! }, condition, uploads, opts.signal),
  );
  const file = await writtenMeta(ctx, to, state.key, written);
  progress(opts, written.size);
  if (op === 'copy') return { op: 'copy', upserted: [...dirMetas(state.createdDirs), file], removed: [], bytesWritten: written.size };
  if (!state.sourceDeleted) {
    // The copy must be in place, as written, before the source goes.
    if (file.etag !== written.etag) throw new PreconditionFailedError(q(to), { key: state.key, reason: 'the copy was replaced before the source was deleted' });
    await tx.guard();
    try {
      await ctx.bucket.deleteKey(source.key, { ifMatch: source.etag });
    } catch (err) {
      if (isPreconditionFailed(err)) throw new PreconditionFailedError(`move source ${q(from)}`, { key: source.key });
      throw err;
    }
    state.sourceDeleted = true;
    await tx.save();
    await tx.step('source-deleted');
  }
  await keepParent(ctx, tx, from);
  return { op: 'move', moved: { from, to }, removed: [from], upserted: [...dirMetas(state.createdDirs), file], bytesWritten: written.size };
}

/**
 * copy / move of a directory, in batches of one listing page (≤ 1,000 keys) in key order: copy
 * every object below the source (create-only at the destination, which was empty when planned),
 * then, for a move, delete the sources of what was copied. The cursor is saved after each batch.
 */
export async function applyRelocateTree(ctx: S3OpContext, tx: S3Tx, op: 'copy' | 'move', from: string, to: string, opts: CopyOptions | MoveOptions): Promise<MutationOutcome> {
  const state = tx.plan.state as S3DirState;
  const tree = state.tree!;
  await openStaging(ctx, tx);
  let bytes = 0;
  if (tree.phase === 'copy') {
    for await (const page of ctx.bucket.walk(tree.srcPrefix, { startAfter: tree.cursor })) {
      opts.signal?.throwIfAborted();
      const copied = await mapLimit(page, COPY_CONCURRENCY, async (item): Promise<{ key: string; etag: string; size: number } | null> => {
        const rel = item.key.slice(tree.srcPrefix.length);
        // Keys no mount path spells (`a//b`) are not part of the tree; the directory's own marker is.
        if (rel !== '' && !entryOfKey(ctx.bucket.prefix, item.key)) return null;
        const dstKey = assertKeyLength(tree.dstPrefix + rel, { path: to });
        const head = await ctx.bucket.head(item.key);
        if (!head) return null; // deleted since it was listed: not part of the copy
        const src = sourceOf(head, (opts as CopyOptions).known?.[rel]);
        const sha256 = rel === '' || rel.endsWith('/') ? null : (src.sha256 ?? (await hashObject(ctx, head.key, head.etag, opts.signal)));
        const metadata = sha256 ? { ...src.metadata, [SHA256_META]: sha256 } : src.metadata;
        try {
          await copyOne(ctx, tx, src, dstKey, metadata, { ifNoneMatch: '*' }, undefined, opts.signal);
        } catch (err) {
          const own = isPreconditionFailed(err) ? await ctx.bucket.ownedBy(dstKey, tx.plan.txId) : null;
          if (!own) throw err;
          // An earlier attempt copied it: if the source was rewritten since, the copy holds the old
          // content and the source — not what was copied — must not be deleted.
          if (op === 'move' && own.etag !== head.etag && (own.metadata[SHA256_META] ?? null) !== sha256) {
            throw new PreconditionFailedError(`move source ${q(pathOfKey(ctx.bucket.prefix, head.key) ?? head.key)}`, { key: head.key, reason: 'rewritten after it was copied' });
          }
        }
        return { key: head.key, etag: head.etag, size: src.size };
      });
      const done = copied.filter((c) => c !== null);
      bytes += done.reduce((a, c) => a + c.size, 0);
      progress(opts, bytes);
      if (op === 'move') {
        // The ETag each source was copied at (copy-source-if-match): only that version may be deleted.
        await recordCopiedBatch(ctx, tx, tree, done);
        tree.batches = (tree.batches ?? 0) + 1;
      }
      tree.cursor = page[page.length - 1].key;
      tree.done += page.length;
      await tx.save();
      await tx.step('batch-copied');
    }
    tree.phase = op === 'move' ? 'delete' : 'done';
    tree.cursor = null;
    await tx.save();
  }
  if (tree.phase === 'delete') {
    // Only the sources of what was copied go, each only while it is the version copied (a key that
    // appeared since stays, and shows; one rewritten since refuses the move, which is undone).
    await deleteCopiedSources(ctx, tx, tree, opts.signal);
    tree.phase = 'done';
    await tx.save();
    await keepParent(ctx, tx, from);
  } else if (op === 'move') {
    await keepParent(ctx, tx, from);
  }
  const upserted = [...dirMetas(state.createdDirs), dirMeta(to), ...(await treeMetas(ctx, to))];
  const bytesWritten = upserted.reduce((n, m) => n + (m.kind === 'file' ? m.size : 0), 0) || bytes;
  if (op === 'copy') return { op: 'copy', upserted, removed: [], bytesWritten };
  return { op: 'move', moved: { from, to }, removed: [from], upserted, bytesWritten };
}

/** Every node below `dir` with its metadata (HeadObject per file, for the sha256 the copy stored). */
async function treeMetas(ctx: S3OpContext, dir: string): Promise<NodeMeta[]> {
  const listed: NodeMeta[] = [];
  for await (const meta of listPath(ctx.bucket, dir, { recursive: true })) listed.push(meta);
  return mapLimit(listed, 16, async (meta) => {
    if (meta.kind !== 'file') return meta;
    const head = await ctx.bucket.head(keyOf(ctx.bucket.prefix, meta.path));
    return head ? fileMeta(meta.path, head) : meta;
  });
}
