/**
 * Server-side copies that keep an object's ETag. CopyObject writes a single-part object, so a
 * copy of an object that was uploaded in parts gets another ETag (`md5` instead of
 * `md5-of-part-md5s-N`) — and a backup put back after an undo would then look changed to drift
 * detection, which compares ETags with the catalog. Copying such an object part by part with its
 * own part size (HeadObject ?partNumber=1) reproduces its ETag exactly; single-part objects keep
 * theirs through CopyObject anyway (unless SSE-KMS is on). Every part copy is recorded in the
 * plan before its first part, so undo and finalize abort what a crash left unfinished.
 */
import type { WriteCondition } from './s3-bucket';
import { MAX_COPY_OBJECT_BYTES, copyInParts } from './s3-part-copy';
import { type ObjectRef, TX_META, type UploadRecord } from './s3-plan';
import type { S3OpContext, S3Tx } from './s3-context';

/** Whether an object of `size` bytes is over the part-copy threshold (CopyObject's 5 GiB; lower only in tests). */
export function copiesInParts(ctx: S3OpContext, size: number): boolean {
  return size > Math.min(ctx.settings.partCopyAbove ?? MAX_COPY_OBJECT_BYTES, MAX_COPY_OBJECT_BYTES);
}

/** How a copy lands. */
export interface ExactCopyOptions {
  /** New user metadata (this transaction's tag added when `tag`); absent keeps the source's. */
  metadata?: Record<string, string>;
  /** Tag the copy as this transaction's own. @defaultValue true when `metadata` is given */
  tag?: boolean;
  condition?: WriteCondition;
  /** Send the mount's storage class / ACL / encryption. @defaultValue true */
  writeSettings?: boolean;
  signal?: AbortSignal;
  /** Where the part-copy upload is recorded (a file op's `upload`); absent: the plan's `partCopies`. */
  upload?: { current(key: string): UploadRecord | null; record(u: UploadRecord): Promise<void> };
}

/** Records part copies in the plan's `partCopies` (closed once complete). */
function partCopyRecorder(tx: S3Tx): NonNullable<ExactCopyOptions['upload']> {
  return {
    current: (key) => (tx.plan.state.partCopies ?? []).find((u) => u.key === key && !u.closed) ?? null,
    record: async (u) => {
      (tx.plan.state.partCopies ??= []).push(u);
      await tx.save();
    },
  };
}

/**
 * Copies `src` (at its ETag) to `dst`: part by part with the source's own part size when it was
 * uploaded in parts (or is over the part-copy threshold), else one CopyObject.
 */
export async function copyExact(ctx: S3OpContext, tx: S3Tx, src: { key: string; etag: string; size: number }, dst: string, opts: ExactCopyOptions = {}): Promise<ObjectRef> {
  const tag = opts.tag ?? opts.metadata !== undefined;
  const ownPartSize = await ctx.bucket.partSizeOf(src.key, src.etag);
  await tx.guard();
  if (ownPartSize === null && !copiesInParts(ctx, src.size)) {
    const metadata = opts.metadata ?? (tag ? (await ctx.bucket.head(src.key))?.metadata : undefined);
    return ctx.bucket.copy(src, dst, { txId: tag ? tx.plan.txId : undefined, metadata, condition: opts.condition, writeSettings: opts.writeSettings, signal: opts.signal });
  }
  // CreateMultipartUpload takes the metadata: the source's own, unless new metadata was given.
  const base = opts.metadata ?? (await ctx.bucket.head(src.key))?.metadata ?? {};
  const recorder = opts.upload ?? partCopyRecorder(tx);
  const ref = await copyInParts(ctx.bucket, src, dst, {
    metadata: tag ? { ...base, [TX_META]: tx.plan.txId } : base,
    condition: opts.condition ?? null,
    partSize: ownPartSize ?? ctx.settings.partSize,
    concurrency: ctx.settings.concurrency,
    existing: recorder.current(dst),
    record: recorder.record,
    guard: tx.guard,
    signal: opts.signal,
    writeSettings: opts.writeSettings,
  });
  for (const u of tx.plan.state.partCopies ?? []) if (u.key === dst) u.closed = true;
  return ref;
}
