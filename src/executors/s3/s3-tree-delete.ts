/**
 * The delete phase of a prefix delete or move: the sources of what the copy phase backed up or
 * copied go — each only while it is still the version that was copied.
 *
 * Between a batch's copy and its deletion an object can be rewritten outside Filestore; deleting
 * it then would destroy a version nobody kept. So the copy phase records, per batch, each key and
 * the ETag it copied in a manifest — a staging object (`<staging>/<txId>/batches/<n>.json`, at most
 * one listing page of keys, so the plan itself stays bounded and finalize drops them with the rest
 * of the staging) — and the delete phase, batch by batch, lists the sources again and compares:
 * a key whose ETag changed refuses the whole mutation (PRECONDITION_FAILED, permanent) before
 * anything of that batch is deleted, so undo puts back the batches already deleted and the
 * rewritten object stays as its writer left it. The ETag also rides on DeleteObjects (per object),
 * which AWS enforces; MinIO ignores delete conditions, hence the explicit comparison.
 */
import { createHash } from 'node:crypto';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { PreconditionFailedError } from '../../errors';
import { pathOfKey, stagingKey } from './s3-keys';
import type { TreeRecord } from './s3-plan';
import { type S3OpContext, type S3Tx, mapLimit } from './s3-steps';

/** One batch's sources as copied: where the batch's listing started, each key with the ETag copied. */
interface BatchManifest {
  /** The listing's StartAfter for this batch (the previous batch's last key), null for the first. */
  after: string | null;
  /** [key, ETag] in key order. */
  entries: Array<[string, string]>;
}

function manifestKey(ctx: S3OpContext, tx: S3Tx, n: number): string {
  return stagingKey(ctx.bucket.prefix, tx.plan.txId, `batches/${String(n).padStart(8, '0')}.json`);
}

/**
 * Copy phase, after a batch was copied and before its cursor is saved: records the batch's keys
 * and the ETags copied as manifest `tree.batches` (a retry of the batch rewrites the same one).
 * The caller then counts it (`tree.batches += 1`) in the same plan save as the cursor.
 */
export async function recordCopiedBatch(ctx: S3OpContext, tx: S3Tx, tree: TreeRecord, entries: Array<{ key: string; etag: string }>): Promise<void> {
  const manifest: BatchManifest = { after: tree.cursor, entries: entries.map((e) => [e.key, e.etag]) };
  const body = Buffer.from(JSON.stringify(manifest));
  await tx.guard();
  // Staging data: none of the mount's write settings (a cold storage class would make it unreadable).
  await ctx.bucket.put(manifestKey(ctx, tx, tree.batches ?? 0), body, createHash('sha256').update(body).digest('hex'), { txId: tx.plan.txId, writeSettings: false });
}

async function readManifest(ctx: S3OpContext, tx: S3Tx, n: number): Promise<BatchManifest> {
  const key = manifestKey(ctx, tx, n);
  const res = await ctx.bucket.send({ key }, () => ctx.bucket.client.send(new GetObjectCommand({ Bucket: ctx.bucket.name, Key: key })));
  return JSON.parse(await res.Body!.transformToString()) as BatchManifest;
}

/** S3 lists keys in UTF-8 byte order (not UTF-16 code-unit order, as `<` compares strings). */
const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** Current ETags of the manifest's keys, from a listing of the batch's key range (keys gone are absent). */
async function currentEtags(ctx: S3OpContext, tree: TreeRecord, manifest: BatchManifest): Promise<Map<string, string>> {
  const wanted = new Set(manifest.entries.map(([key]) => key));
  const last = manifest.entries[manifest.entries.length - 1][0];
  const now = new Map<string, string>();
  walk: for await (const page of ctx.bucket.walk(tree.srcPrefix, { startAfter: manifest.after })) {
    for (const item of page) {
      if (byteOrder(item.key, last) > 0) break walk;
      if (wanted.has(item.key)) now.set(item.key, item.etag);
    }
  }
  return now;
}

/**
 * Delete phase: for each recorded batch from `tree.deleted`, the sources still at the ETag copied
 * are deleted (DeleteObjects, ≤ 1,000, with that ETag); one rewritten since refuses the mutation
 * before anything of its batch goes. A source already gone (an earlier attempt of this phase, or
 * a delete from outside) is not sent. `tree.deleted` is saved after each batch.
 *
 * @throws PreconditionFailedError naming the first source rewritten since it was copied.
 */
export async function deleteCopiedSources(ctx: S3OpContext, tx: S3Tx, tree: TreeRecord, signal?: AbortSignal): Promise<void> {
  if (tree.batches === undefined) return deleteByCopies(ctx, tx, tree, signal);
  const batches = tree.batches;
  for (let n = tree.deleted ?? 0; n < batches; n++) {
    signal?.throwIfAborted();
    await tx.guard();
    const manifest = await readManifest(ctx, tx, n);
    if (manifest.entries.length > 0) {
      const now = await currentEtags(ctx, tree, manifest);
      const doomed: Array<{ key: string; etag: string }> = [];
      for (const [key, etag] of manifest.entries) {
        const current = now.get(key);
        if (current === undefined) continue;
        if (current !== etag) throw rewritten(ctx, key);
        doomed.push({ key, etag });
      }
      await tx.guard();
      await ctx.bucket.deleteKeys(doomed);
      tree.cursor = manifest.entries[manifest.entries.length - 1][0];
    }
    tree.deleted = n + 1;
    await tx.save();
    await tx.step('batch-deleted');
  }
}

function rewritten(ctx: S3OpContext, key: string): PreconditionFailedError {
  return new PreconditionFailedError(JSON.stringify(pathOfKey(ctx.bucket.prefix, key) ?? key), { key, reason: 'rewritten between its copy and its deletion' });
}

/**
 * A plan whose copy phase ran before batches were recorded: walks the copies (resuming at
 * `tree.cursor`, a key under `dstPrefix`) and deletes each source only while its ETag is the
 * copy's — copyExact keeps an object's ETag, so a different one means a rewrite (or an encrypted
 * copy, whose ETag is not the content's: refused too, which fails safe).
 */
async function deleteByCopies(ctx: S3OpContext, tx: S3Tx, tree: TreeRecord, signal?: AbortSignal): Promise<void> {
  for await (const page of ctx.bucket.walk(tree.dstPrefix, { startAfter: tree.cursor })) {
    signal?.throwIfAborted();
    await tx.guard();
    const sources = await mapLimit(page, 16, async (copy) => {
      const key = tree.srcPrefix + copy.key.slice(tree.dstPrefix.length);
      const head = await ctx.bucket.head(key);
      if (head && head.etag !== copy.etag) throw rewritten(ctx, key);
      return head ? { key, etag: head.etag } : null;
    });
    await tx.guard();
    await ctx.bucket.deleteKeys(sources.filter((s) => s !== null));
    tree.cursor = page[page.length - 1].key;
    await tx.save();
    await tx.step('batch-deleted');
  }
}
