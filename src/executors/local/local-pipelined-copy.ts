/**
 * Copying an opened source file into a destination descriptor while hashing it, in one pass, at the
 * pace of the slowest of reading, hashing and writing rather than their sum.
 *
 * A fixed pool of large buffers circulates: each chunk is read with pread into a free buffer, then
 * hashed (in order) and written with pwrite at the same offset — both from that buffer at once —
 * and the buffer is read into again once both are done. Reads and writes are libuv file-system
 * requests, which run on its thread pool; a large file is hashed on a worker thread of its own
 * (local-chunk-hasher.ts), a small one here. So while chunk i is hashed, the chunks after it are
 * being read and the ones before it written. Positional I/O lets several of them be in flight on
 * the same descriptors.
 *
 * Memory is the pool and nothing else — `depth × chunkBytes`, whatever the file size — and no
 * buffer is allocated per chunk (the stream this replaces allocated a fresh 4 MiB buffer per
 * chunk: page faults and GC work on the hashing thread). The event loop never blocks for more than
 * one small chunk's hash, so timers (the activity's heartbeat) keep running.
 *
 * Early writeback: dirty pages of the destination would otherwise all reach the disk in the final
 * fsync, after everything else is done (the kernel starts background writeback only at
 * vm.dirty_background_ratio, gigabytes on a large machine): 0.64–0.70 s of a 1 GiB copy here.
 * Every `writebackEveryBytes` a fdatasync of what has been written so far starts on the thread
 * pool, concurrently with the copy (one at a time: if one is still running the disk is the
 * bottleneck anyway), so the final fsync — the caller's, the one that makes the file durable — has
 * only the tail left (0.05 s at 64 MiB, 0.10 s at 128 MiB, 0.2 s at 256 MiB). Their errors are
 * not dropped: an early sync that fails fails the copy (Linux reports a writeback error to one
 * fsync per descriptor, so ignoring it could let the final fsync succeed).
 */
import type { FileHandle } from 'node:fs/promises';
import { PayloadTooLargeError } from '../../errors';
import { createChunkHasher } from './local-chunk-hasher';
import type { OpenedSource } from './local-source';

/**
 * Bytes per read / write / hash step. 8 MiB rather than 4: half the hand-overs to the hash worker,
 * each of which wakes this thread (1 GiB, 8 interleaved rounds on the shared 2-core machine: best
 * 1.08 s, median 1.21 s at 8 MiB; 1.14 s and 1.29 s at 4 MiB; 16 MiB and deeper pools no better).
 */
export const PIPE_CHUNK_BYTES = 8 * 1024 * 1024;
/** Buffers in circulation: one being hashed, the others being read ahead or written behind. */
export const PIPE_DEPTH = 4;
/** Start writing back dirty destination pages every this many bytes (0: only the caller's final fsync). */
export const PIPE_WRITEBACK_EVERY_BYTES = 64 * 1024 * 1024;
/** Sources this large hash on a worker thread of their own (see local-chunk-hasher.ts). */
export const HASH_ON_WORKER_FROM_BYTES = 32 * 1024 * 1024;
/** onProgress fires at most once per this many bytes. */
const PROGRESS_STEP_BYTES = 4 * 1024 * 1024;

/** Tuning and callbacks of {@link copyHashed}; the defaults are the constants above. */
export interface PipelineOptions {
  /** @defaultValue {@link PIPE_CHUNK_BYTES} */
  chunkBytes?: number;
  /** @defaultValue {@link PIPE_DEPTH} */
  depth?: number;
  /** @defaultValue {@link PIPE_WRITEBACK_EVERY_BYTES} */
  writebackEveryBytes?: number;
  /** Hash on a worker thread. @defaultValue true from {@link HASH_ON_WORKER_FROM_BYTES} on */
  hashOnWorker?: boolean;
  /** Refuse a source larger than this (PayloadTooLargeError), before a byte is read. */
  maxBytes?: number;
  /** Called with the bytes read and handed to the hash and the write so far, at most once per 4 MiB (not at the end: the caller knows when it is done). */
  onProgress?: (bytesDone: number) => void;
  /** Checked between chunks; the copy stops with its reason. */
  signal?: AbortSignal;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? Object.assign(new Error('the operation was aborted'), { name: 'AbortError' });
}

const ignore = () => undefined;

/** Marks a promise as handled (its rejection is still seen by whoever awaits it later), so a read ahead that fails while an earlier chunk is hashed is not an unhandled rejection. */
function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(ignore);
  return p;
}

async function writeFully(fh: FileHandle, buf: Buffer, length: number, position: number): Promise<void> {
  for (let off = 0; off < length; ) {
    const { bytesWritten } = await fh.write(buf, off, length - off, position + off);
    off += bytesWritten;
  }
}

/**
 * Reads `source` — bytes `[0, source.size)`, the size it had when opened — hashes them, and writes
 * them to `dest` at the same offsets (`dest` null: hash only). Does not fsync `dest` at the end
 * (the caller does, once), nor close either side.
 *
 * @throws SourceChangedError when the source ends before its size at open (it shrank);
 *   PayloadTooLargeError beyond `maxBytes`; the signal's reason once aborted; any I/O error. Every
 *   read, write and sync it started has settled by the time it throws.
 * @returns the bytes copied (always `source.size`) and their hex sha256.
 */
export async function copyHashed(source: OpenedSource, dest: FileHandle | null, opts: PipelineOptions = {}): Promise<{ bytes: number; sha256: string }> {
  const { signal, onProgress, maxBytes } = opts;
  const chunkBytes = opts.chunkBytes ?? PIPE_CHUNK_BYTES;
  const writebackEvery = dest ? (opts.writebackEveryBytes ?? PIPE_WRITEBACK_EVERY_BYTES) : 0;
  const size = source.size;
  signal?.throwIfAborted();
  if (maxBytes !== undefined && size > maxBytes) {
    throw new PayloadTooLargeError(`content is ${size} bytes, more than the limit of ${maxBytes}`, { maxBytes, size });
  }
  const chunks = Math.ceil(size / chunkBytes);
  // A small file gets one buffer of its own size, not the whole pool.
  const depth = Math.min(opts.depth ?? PIPE_DEPTH, chunks);
  const hasher = createChunkHasher({ count: depth, bytes: Math.min(chunkBytes, size) }, opts.hashOnWorker ?? size >= HASH_ON_WORKER_FROM_BYTES);
  const pool = hasher.pool;
  const reads: Array<Promise<void>> = new Array(depth);
  /** Per slot: the hash and the write of the chunk in it; the slot is free again once both are done. */
  const busy: Array<Promise<unknown> | undefined> = new Array(depth);
  // The early sync in flight, if any; `settled` tells whether awaiting it would wait.
  let writeback: { promise: Promise<void>; settled: boolean } | null = null;
  let writebackAt = 0;
  const lengthOf = (i: number) => Math.min(chunkBytes, size - i * chunkBytes);
  // Chunk i goes through buffer i % depth, once the chunk that used it before is hashed and written.
  const startRead = (i: number) => {
    const slot = i % depth;
    const before = busy[slot];
    const read = () => source.readAt(pool[slot], i * chunkBytes, lengthOf(i));
    reads[slot] = handled(before ? before.then(read) : read());
  };

  let nextProgress = PROGRESS_STEP_BYTES;
  let done = 0;
  let sha256: string;
  try {
    for (let i = 0; i < depth; i++) startRead(i);
    for (let i = 0; i < chunks; i++) {
      const slot = i % depth;
      await reads[slot];
      if (signal?.aborted) throw abortReason(signal);
      const length = lengthOf(i);
      // The hash and the write read the same buffer at the same time; neither changes it.
      const hashed = hasher.update(slot, length);
      const written = dest ? writeFully(dest, pool[slot], length, i * chunkBytes) : undefined;
      busy[slot] = handled(Promise.all([hashed, written]));
      if (i + depth < chunks) startRead(i + depth);
      done += length;
      if (writebackEvery > 0 && done - writebackAt >= writebackEvery && done < size) {
        // One at a time: a sync still running means the disk is the bottleneck already. A settled
        // one is awaited, so its error (if any) fails the copy.
        if (writeback?.settled) {
          await writeback.promise;
          writeback = null;
        }
        if (!writeback) {
          writebackAt = done;
          const started: { promise: Promise<void>; settled: boolean } = { promise: handled(dest!.datasync()), settled: false };
          started.promise.then(
            () => (started.settled = true),
            () => (started.settled = true),
          );
          writeback = started;
        }
      }
      if (onProgress && done >= nextProgress) {
        onProgress(done);
        nextProgress = done + PROGRESS_STEP_BYTES;
      }
    }
    await Promise.all(busy);
    await writeback?.promise;
    sha256 = await hasher.digest();
  } catch (err) {
    // Nothing may still be reading into or writing from the pool, nor using the descriptors the
    // caller is about to close, when this returns.
    await Promise.allSettled([...reads, ...busy, writeback?.promise]);
    throw err;
  } finally {
    await hasher.close();
  }
  return { bytes: done, sha256 };
}
