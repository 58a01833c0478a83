/**
 * mkdir and write on an S3 mount. A write below the multipart threshold is one PutObject carrying
 * the SHA-256 we computed (S3 checks it in flight) and the whole-object sha256 in its metadata;
 * above it, the resumable multipart upload (s3-multipart.ts), checkpointed into the plan before
 * any part is sent. Either way the request is conditional — `If-None-Match: *` for a create,
 * `If-Match: <etag seen when planning>` for an overwrite — so a writer that raced in since
 * planning is never clobbered.
 */
import { createHash } from 'node:crypto';
import { Readable, addAbortSignal } from 'node:stream';
import { AlreadyExistsError, InvalidRequestError, IsADirectoryError, PayloadTooLargeError, UnsupportedError } from '../../errors';
import { s3UploadedBytes } from '../../metrics';
import type { MkdirOptions, MutationOutcome, WriteOptions, WriteSource } from '../executor';
import { assertSourceUsable } from '../local/local-fs';
import { type OpenedSource, openWriteSource } from '../local/local-source';
import { isPreconditionFailed } from './s3-bucket';
import { dirMarkerKey, keyOf } from './s3-keys';
import { uploadMultipart } from './s3-multipart';
import { abortOtherUploads } from './s3-undo';
import { type S3DirState, type S3FileState, SHA256_META, TX_META, type WrittenObject } from './s3-plan';
import { dirMeta, missingParents, probeOne } from './s3-read';
import {
  EMPTY_SHA256,
  type S3OpContext,
  type S3Tx,
  countBytes,
  dirMetas,
  keepPrevious,
  landTarget,
  openStaging,
  ownWrite,
  progress,
  writtenMeta,
} from './s3-steps';

const q = (p: string): string => JSON.stringify(p);

/** mkdir, planning: what exists, which parents are missing, the marker to write. */
export async function prepareMkdir(ctx: S3OpContext, path: string, opts: MkdirOptions): Promise<S3DirState> {
  const parents = opts.parents ?? true;
  const p = await probeOne(ctx.bucket, path);
  if (p.file || (p.dir && !parents)) throw new AlreadyExistsError(q(path), { path });
  const versioned = await ctx.bucket.isVersioned();
  if (p.dir) return { kind: 'directory', versioned, createdDirs: [] };
  const createdDirs = [...(await missingParents(ctx.bucket, path, parents)), path];
  return { kind: 'directory', versioned, createdDirs, marker: { key: dirMarkerKey(ctx.bucket.prefix, path) } };
}

/** mkdir, applying: the `dir/` marker, create-only (someone else's marker there makes the directory just as well). */
export async function applyMkdir(ctx: S3OpContext, tx: S3Tx, path: string): Promise<MutationOutcome> {
  const state = tx.plan.state as S3DirState;
  const marker = state.marker;
  if (marker && !marker.etag) {
    await openStaging(ctx, tx);
    await tx.guard();
    try {
      marker.etag = (await ctx.bucket.put(marker.key, Buffer.alloc(0), EMPTY_SHA256, { txId: tx.plan.txId, condition: { ifNoneMatch: '*' } })).etag;
    } catch (err) {
      if (!isPreconditionFailed(err)) throw err;
      const own = await ctx.bucket.ownedBy(marker.key, tx.plan.txId);
      if (own) marker.etag = own.etag;
      else delete state.marker;
    }
    await tx.save();
    await tx.step('committed');
  }
  return { op: 'mkdir', upserted: state.createdDirs.length > 0 ? dirMetas(state.createdDirs) : [dirMeta(path)], removed: [], bytesWritten: 0 };
}

/** write, planning: target and parents checked, the source checked (under the source roots), the replaced object recorded. */
export async function prepareWrite(ctx: S3OpContext, path: string, source: WriteSource, opts: WriteOptions): Promise<S3FileState> {
  // S3 keeps no POSIX mode: a requested one would be silently dropped, so it is refused instead.
  if (opts.mode !== undefined) throw new UnsupportedError('S3 mounts keep no POSIX mode; write without one', { path });
  const key = keyOf(ctx.bucket.prefix, path);
  const p = await probeOne(ctx.bucket, path);
  if (p.dir) throw new IsADirectoryError(q(path), { path });
  if (p.file && !opts.overwrite) throw new AlreadyExistsError(q(path), { path });
  const createdDirs = await missingParents(ctx.bucket, path, opts.createParents ?? true);
  await assertSourceUsable(source, opts);
  const versioned = await ctx.bucket.isVersioned();
  const previous = p.file ? { etag: p.file.etag, versionId: p.file.versionId, size: p.file.size } : null;
  return { kind: 'file', versioned, createdDirs, key, previous };
}

/** Bytes of a source read up to the multipart threshold: all of it (`rest` null), or the start and the rest to stream. */
interface Buffered {
  head: Buffer;
  sha256: string | null;
  rest: AsyncIterator<unknown> | null;
}

function tooLarge(maxBytes: number): PayloadTooLargeError {
  return new PayloadTooLargeError(`content is larger than the limit of ${maxBytes} bytes`, { maxBytes });
}

/** Reads a stream until it ends or reaches `threshold` bytes (memory bounded by the threshold). */
async function bufferStream(stream: Readable, threshold: number, opts: WriteOptions): Promise<Buffered> {
  if (opts.signal) addAbortSignal(opts.signal, stream);
  const it = stream[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    opts.signal?.throwIfAborted();
    const next = await it.next();
    if (next.done) break;
    const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : Buffer.from(next.value as Uint8Array);
    size += chunk.byteLength;
    if (opts.maxBytes !== undefined && size > opts.maxBytes) {
      stream.destroy();
      throw tooLarge(opts.maxBytes);
    }
    chunks.push(chunk);
    if (size >= threshold) return { head: Buffer.concat(chunks), sha256: null, rest: it };
  }
  const head = Buffer.concat(chunks);
  return { head, sha256: createHash('sha256').update(head).digest('hex'), rest: null };
}

function checkExpected(sha256: string, opts: WriteOptions, path: string): void {
  if (opts.expectedSha256 !== undefined && sha256 !== opts.expectedSha256.toLowerCase()) {
    throw new InvalidRequestError(`content hashes to ${sha256}, not the expected ${opts.expectedSha256}`, { path });
  }
}

/** write, applying: keep the replaced object, then one conditional PutObject or a resumable multipart upload. */
export async function applyWrite(ctx: S3OpContext, tx: S3Tx, path: string, source: WriteSource, opts: WriteOptions): Promise<MutationOutcome> {
  const state = tx.plan.state as S3FileState;
  const { key, previous } = state;
  const resumed = state.opened === true;
  await openStaging(ctx, tx);
  if (previous) await keepPrevious(ctx, tx, key, previous);
  // A retry after a crash between the request and the plan save finds its own object there.
  if (resumed && !state.written) {
    const own = await ownWrite(ctx, tx.plan.txId, key);
    if (own && own.sha256) {
      state.written = own;
      if (state.upload) state.upload.closed = true;
      await tx.save();
    }
  }
  const written =
    state.written ??
    (await landTarget(ctx, tx, key, previous, async (condition) => {
      const threshold = ctx.settings.multipartThreshold;
      let opened: OpenedSource | null = null;
      try {
        let buffered: Buffered;
        if (source.kind === 'inline') {
          if (opts.maxBytes !== undefined && source.data.byteLength > opts.maxBytes) throw tooLarge(opts.maxBytes);
          buffered = { head: source.data, sha256: createHash('sha256').update(source.data).digest('hex'), rest: null };
        } else if (source.kind === 'file') {
          opened = await openWriteSource(source.path, { roots: opts.sourceRoots ?? [], maxBytes: opts.maxBytes });
          if (opened.size >= threshold) {
            return await multipart(ctx, tx, key, { kind: 'file', fh: opened.handle, size: opened.size }, condition, opts);
          }
          const data = Buffer.alloc(opened.size);
          let off = 0;
          while (off < opened.size) {
            const { bytesRead } = await opened.handle.read(data, off, opened.size - off, off);
            if (bytesRead === 0) break;
            off += bytesRead;
          }
          opened.assertComplete(off);
          buffered = { head: data, sha256: createHash('sha256').update(data).digest('hex'), rest: null };
        } else {
          buffered = await bufferStream(source.stream, threshold, opts);
        }
        if (buffered.rest) {
          const stream = Readable.from(chain(buffered.head, buffered.rest));
          return await multipart(ctx, tx, key, { kind: 'stream', stream }, condition, opts);
        }
        const sha256 = buffered.sha256!;
        checkExpected(sha256, opts, path);
        opts.signal?.throwIfAborted();
        // Reading the source may have taken long: the guard again, right before the request.
        await tx.guard();
        const ref = await ctx.bucket.put(key, buffered.head, sha256, { txId: tx.plan.txId, condition, metadata: { [SHA256_META]: sha256 }, signal: opts.signal });
        s3UploadedBytes.inc(buffered.head.byteLength);
        countBytes(ctx, buffered.head.byteLength);
        return { ...ref, size: buffered.head.byteLength, sha256 };
      } finally {
        await opened?.close().catch(() => undefined);
      }
    }));
  progress(opts, written.size);
  const file = await writtenMeta(ctx, path, key, written);
  return { op: 'write', upserted: [...dirMetas(state.createdDirs), file], removed: [], bytesWritten: written.size };
}

async function* chain(head: Buffer, rest: AsyncIterator<unknown>): AsyncGenerator<Buffer> {
  yield head;
  for (;;) {
    const next = await rest.next();
    if (next.done) return;
    yield typeof next.value === 'string' ? Buffer.from(next.value) : Buffer.from(next.value as Uint8Array);
  }
}

/** The resumable multipart upload, its checkpoint saved into the plan (and reported) before any part is sent. */
async function multipart(
  ctx: S3OpContext,
  tx: S3Tx,
  key: string,
  source: { kind: 'file'; fh: import('node:fs/promises').FileHandle; size: number } | { kind: 'stream'; stream: Readable },
  condition: { ifNoneMatch: '*' } | { ifMatch: string },
  opts: WriteOptions,
): Promise<WrittenObject> {
  const state = tx.plan.state as S3FileState;
  if (source.kind === 'stream' && !state.streamed) {
    // lib-storage reports no upload id: undo and finalize look for this key's uploads instead.
    state.streamed = true;
    await tx.save();
  }
  const result = await uploadMultipart({
    client: ctx.bucket.client,
    bucket: ctx.bucket.name,
    key,
    source,
    partSize: ctx.settings.partSize,
    concurrency: ctx.settings.concurrency,
    checkpoint:
      state.upload && !state.upload.closed
        ? { uploadId: state.upload.uploadId, partSize: state.upload.partSize, key: state.upload.key, ...(state.upload.sha256 ? { sha256: state.upload.sha256 } : {}) }
        : null,
    saveCheckpoint: async (cp) => {
      // The sha256 too: a retry after the file was rewritten (same size) must not complete the new bytes under the old hash.
      state.upload = { uploadId: cp.uploadId, partSize: cp.partSize, key: cp.key, ...(cp.sha256 ? { sha256: cp.sha256 } : {}) };
      await tx.save();
      opts.onCheckpoint?.({ uploadId: cp.uploadId, partSize: cp.partSize });
    },
    putParams: { ...ctx.bucket.writeParams(), Metadata: { [TX_META]: tx.plan.txId } },
    condition: 'ifNoneMatch' in condition ? { ifNoneMatch: '*' } : { ifMatch: condition.ifMatch },
    expectedSha256: opts.expectedSha256,
    maxBytes: opts.maxBytes,
    guard: tx.guard,
    signal: opts.signal,
    onProgress: opts.onProgress,
  });
  // Only what this attempt sent (parts kept from an earlier attempt were counted by it).
  countBytes(ctx, result.bytesSent);
  // Uploads of this key other than the one just completed are this transaction's too — a
  // CreateMultipartUpload that S3 applied but whose answer was lost, then retried by the SDK, or a
  // dead attempt's. Aborted now, while the PENDING entry still locks the path: after commit
  // (finalize) a new transaction on the same path may already own an upload there.
  await abortOtherUploads(ctx, tx, key);
  return { etag: result.etag.replace(/^"|"$/g, ''), versionId: result.versionId, size: result.size, sha256: result.sha256 };
}
