/**
 * The seekable side of a resumable multipart upload: how a file is cut into parts (within S3's
 * limits), the one sequential pass that hashes it before anything is sent, and reading one part
 * into a reused buffer.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { BackendLimitError, SourceChangedError } from '../../errors';

const MiB = 1024 * 1024;
/** S3's smallest part (every part but the last). */
export const S3_MIN_PART_BYTES = 5 * MiB;
/** S3's largest part. */
export const S3_MAX_PART_BYTES = 5 * 1024 * MiB;
/** S3's most parts per upload. */
export const S3_MAX_PARTS = 10_000;
/** S3's largest object. */
export const S3_MAX_OBJECT_BYTES = 5 * 1024 * 1024 * MiB;

/** How one object is cut: every part `partSize` bytes but the last (which may be shorter, or empty for an empty object). */
export interface PartLayout {
  size: number;
  partSize: number;
  count: number;
}

/**
 * The layout for `size` bytes with parts of (at least) `requested` bytes: raised to S3's 5 MiB
 * minimum, capped at 5 GiB, and grown (in whole MiB) when `size / requested` would need more
 * than 10,000 parts.
 */
export function partLayout(size: number, requested: number): PartLayout {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`object size ${size} is not a byte count`);
  if (size > S3_MAX_OBJECT_BYTES) {
    throw new BackendLimitError(`an S3 object holds at most ${S3_MAX_OBJECT_BYTES} bytes (5 TiB); this one would be ${size}`, { size });
  }
  let partSize = Math.min(Math.max(Math.floor(requested) || 0, S3_MIN_PART_BYTES), S3_MAX_PART_BYTES);
  if (Math.ceil(size / partSize) > S3_MAX_PARTS) partSize = Math.min(Math.ceil(size / S3_MAX_PARTS / MiB) * MiB, S3_MAX_PART_BYTES);
  return { size, partSize, count: Math.max(1, Math.ceil(size / partSize)) };
}

/**
 * The layout a checkpoint's part size gives for `size` bytes, or null when S3 would refuse it
 * (a part below 5 MiB or above 5 GiB, more than 10,000 parts).
 */
export function layoutIfValid(size: number, partSize: number): PartLayout | null {
  if (!Number.isSafeInteger(partSize) || partSize < S3_MIN_PART_BYTES || partSize > S3_MAX_PART_BYTES) return null;
  if (size > S3_MAX_OBJECT_BYTES || Math.ceil(size / partSize) > S3_MAX_PARTS) return null;
  return { size, partSize, count: Math.max(1, Math.ceil(size / partSize)) };
}

/** Byte range of part `n` (1-based). */
export function partRange(layout: PartLayout, n: number): { offset: number; length: number } {
  const offset = (n - 1) * layout.partSize;
  return { offset, length: Math.min(layout.partSize, layout.size - offset) };
}

/** The source's digests: the whole object's sha256 (hex) and, when asked for, each part's (raw 32 bytes). */
export interface SourceDigest {
  sha256: string;
  parts: Buffer[] | null;
}

/** Bytes per read of the hashing pass: large sequential reads, two buffers so the next read overlaps hashing. */
const HASH_CHUNK_BYTES = 8 * MiB;
/** How often (in chunks) the hashing pass checks the guard and the signal. */
const GUARD_EVERY_CHUNKS = 16;

/**
 * One sequential pass over `layout.size` bytes of `fh`: the whole-object sha256 and, with
 * `withParts`, each part's sha256 (needed to check parts found in S3 on a resume against the
 * source). A short read means the file shrank: SourceChangedError.
 */
export async function hashSource(
  fh: FileHandle,
  layout: PartLayout,
  opts: { withParts: boolean; guard: () => Promise<void>; signal?: AbortSignal },
): Promise<SourceDigest> {
  const whole = createHash('sha256');
  const parts: Buffer[] | null = opts.withParts ? [] : null;
  let part = opts.withParts ? createHash('sha256') : null;
  let partLeft = Math.min(layout.partSize, layout.size);
  const bufs = [Buffer.allocUnsafe(Math.min(HASH_CHUNK_BYTES, Math.max(layout.size, 1))), Buffer.allocUnsafe(Math.min(HASH_CHUNK_BYTES, Math.max(layout.size, 1)))];

  const readAt = (i: number, pos: number) => readFully(fh, bufs[i % 2], pos, Math.min(bufs[0].length, layout.size - pos));
  let pos = 0;
  let pending: Promise<Buffer> | null = layout.size > 0 ? readAt(0, 0) : null;
  for (let i = 0; pending; i++) {
    const chunk = await pending;
    pos += chunk.length;
    // Start the next read before hashing this chunk: the read runs on libuv's pool meanwhile.
    pending = pos < layout.size ? readAt(i + 1, pos) : null;
    whole.update(chunk);
    if (part) {
      for (let at = 0; at < chunk.length; ) {
        const n = Math.min(partLeft, chunk.length - at);
        part.update(chunk.subarray(at, at + n));
        at += n;
        partLeft -= n;
        if (partLeft === 0) {
          parts!.push(part.digest());
          part = createHash('sha256');
          partLeft = Math.min(layout.partSize, layout.size - (pos - chunk.length + at));
        }
      }
    }
    if (i % GUARD_EVERY_CHUNKS === GUARD_EVERY_CHUNKS - 1) {
      if (opts.signal?.aborted) {
        await pending?.catch(() => undefined);
        throw opts.signal.reason;
      }
      await opts.guard().catch(async (err) => {
        await pending?.catch(() => undefined);
        throw err;
      });
    }
  }
  // An empty object is one empty part.
  if (parts && layout.size === 0) parts.push(createHash('sha256').digest());
  return { sha256: whole.digest('hex'), parts };
}

/**
 * Reads exactly `length` bytes at `offset` into the start of `buf` (pread: safe to run for several
 * parts at once on one handle) and returns that slice. Fewer bytes means the file shrank.
 */
export async function readFully(fh: FileHandle, buf: Buffer, offset: number, length: number): Promise<Buffer> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
    if (bytesRead === 0) {
      throw new SourceChangedError(`the source file ended at byte ${offset + done}, before the ${offset + length} it had when the upload began`, {
        offset: offset + done,
      });
    }
    done += bytesRead;
  }
  return buf.subarray(0, length);
}

/** Identity of the source's content as the file system reports it; a change between passes means someone wrote the file meanwhile. */
export async function sourceStamp(fh: FileHandle): Promise<{ stamp: string; size: number }> {
  const st = await fh.stat({ bigint: true });
  return { stamp: `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`, size: Number(st.size) };
}
