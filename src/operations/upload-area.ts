/**
 * The upload area: where a body of any size that reaches Filestore as a stream (an HTTP upload, an
 * SDK put from a Buffer or a stream) waits as a file until the write mutation has read it. The
 * workers read it like any file source (the area is always one of their source roots), so the
 * bytes never travel through Temporal's history.
 *
 * Invariants:
 * - Nothing half-received is ever a source: a body is written to `.part-<uuid>` and renamed to its
 *   final name only once it arrived whole (length as declared, within the size limit).
 * - The final name is derived from the mutation's workflow id and the content's sha256, so a retry
 *   of the same upload under the same idempotency key names the same file — the same request to
 *   the journal — while different content under that key is a different request (refused as
 *   IDEMPOTENCY_KEY_REUSED).
 * - A file is removed once its run has ended (the caller's job, see `release`), and the sweep
 *   removes what a crash left behind: parts and files older than the grace period whose run is
 *   no longer running.
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FilestoreError, IncompleteBodyError, InternalError, InvalidRequestError, PayloadTooLargeError } from '../errors';

/** What an upload area stored. */
export interface ReceivedUpload {
  /** What {@link UploadStore.release} takes: the file's path, or the object's name. */
  ref: string;
  /** The write's source: a file of the directory area, or an object of the S3 area. */
  source: { file: string; checkSource: false } | { upload: string };
  size: number;
  sha256: string;
}

export interface ReceiveOptions {
  /** The run that will read it (names the file, marks the object, for the sweep). */
  workflowId: string;
  maxBytes: number;
  expectedBytes?: number;
  signal?: AbortSignal;
}

/** An upload area: the directory one here, or the S3 prefix one (object-upload-area.ts). */
export interface UploadStore {
  /**
   * Streams `body` into the area. Refuses, leaving nothing behind: more than `maxBytes`
   * (PAYLOAD_TOO_LARGE, as soon as it is exceeded), fewer or more bytes than `expectedBytes`
   * (INCOMPLETE_BODY), and any error of the body stream (a client that went away).
   */
  receive(body: Readable, opts: ReceiveOptions): Promise<ReceivedUpload>;
  /** Removes an upload once its run has ended; absent ones are fine. */
  release(ref: string): Promise<void>;
  /** Removes an upload whose own start failed, unless another run may read it (see each area). */
  releaseUnlessRunning(ref: string, workflowId: string, isRunning: (workflowId: string) => Promise<boolean>): Promise<void>;
  /** Removes what crashes left, older than `graceMs`, whose run `isRunning` says has ended. */
  sweep(graceMs: number, isRunning: (workflowId: string) => Promise<boolean>): Promise<number>;
}

/** Sidecar of an upload file: which run reads it, so the sweep can ask whether it still runs. */
interface UploadSidecar {
  workflowId: string;
}

const PART_PREFIX = '.part-';
const SIDECAR_SUFFIX = '.json';

export class UploadArea implements UploadStore {
  private ready: Promise<void> | null = null;

  /** @param dir - the area's directory (see `uploadDirOf`); created 0700 on first use. */
  constructor(readonly dir: string) {}

  private ensure(): Promise<void> {
    this.ready ??= (async () => {
      await fs.promises.mkdir(this.dir, { recursive: true, mode: 0o700 });
      // Uploads wait here as files the workers will commit: a directory others can write (or a
      // symlink to one) would let them swap what gets committed.
      const st = await fs.promises.lstat(this.dir);
      const uid = process.getuid?.();
      if (!st.isDirectory() || (st.mode & 0o022) !== 0 || (uid !== undefined && st.uid !== uid)) {
        throw new InternalError(`the upload area ${this.dir} must be a directory (not a symlink) owned by this user and writable by nobody else; fix it or set FILESTORE_UPLOAD_DIR`);
      }
    })();
    this.ready.catch(() => (this.ready = null));
    return this.ready;
  }

  /**
   * Refuses an upload area inside a local mount's root or holding one: mount readers could fetch
   * in-flight uploads, the watcher would report them as drift, and a mutation could rewrite them.
   */
  static assertApart(dir: string, mountRoots: readonly string[]): void {
    const inside = (a: string, b: string) => a === b || a.startsWith(b.endsWith(path.sep) ? b : b + path.sep);
    const clash = mountRoots.find((root) => inside(path.resolve(dir), path.resolve(root)) || inside(path.resolve(root), path.resolve(dir)));
    if (clash !== undefined) {
      throw new InvalidRequestError(`the upload area ${dir} and the mount root ${clash} overlap; set FILESTORE_UPLOAD_DIR outside every mount`);
    }
  }

  /** See {@link UploadStore.receive}; the file is named by the run's workflow id and the content's hash. */
  async receive(body: Readable, opts: ReceiveOptions): Promise<ReceivedUpload> {
    await this.ensure();
    if (opts.expectedBytes !== undefined && opts.expectedBytes > opts.maxBytes) {
      body.resume();
      throw new PayloadTooLargeError(`the body is ${opts.expectedBytes} bytes; the limit is ${opts.maxBytes} (FILESTORE_MAX_FILE_BYTES)`);
    }
    const part = path.join(this.dir, `${PART_PREFIX}${randomUUID()}`);
    const meter = bodyMeter(opts.maxBytes);
    try {
      // 'wx' + 0600: a fresh file only we can read or replace; the part name is never reused.
      await pipeline(body, meter.stream, fs.createWriteStream(part, { flags: 'wx', mode: 0o600 }), opts.signal ? { signal: opts.signal } : {});
      meter.checkLength(opts.expectedBytes);
      const { size, sha256 } = meter;
      const file = path.join(this.dir, `${createHash('sha256').update(opts.workflowId).digest('hex').slice(0, 32)}-${sha256}`);
      // The sidecar too is written under a fresh part name ('wx': never through something planted) and renamed.
      const sidecarPart = `${part}${SIDECAR_SUFFIX}`;
      await fs.promises.writeFile(sidecarPart, JSON.stringify({ workflowId: opts.workflowId } satisfies UploadSidecar), { mode: 0o600, flag: 'wx' });
      await fs.promises.rename(sidecarPart, file + SIDECAR_SUFFIX);
      await fs.promises.rename(part, file);
      return { ref: file, source: { file, checkSource: false }, size, sha256 };
    } catch (err) {
      await fs.promises.rm(part, { force: true });
      await fs.promises.rm(`${part}${SIDECAR_SUFFIX}`, { force: true });
      throw asBodyError(err);
    }
  }

  /** Removes an upload file (and its sidecar) once its run has ended; absent files are fine. */
  async release(file: string): Promise<void> {
    if (path.dirname(file) !== this.dir) return;
    await fs.promises.rm(file, { force: true });
    await fs.promises.rm(file + SIDECAR_SUFFIX, { force: true });
  }

  /**
   * Removes an upload file whose own start failed, unless a run of `workflowId` is going: the same
   * key and content name the same file, so an earlier identical request's run may be reading it
   * (that run's caller releases it when it ends, or the sweep does).
   */
  async releaseUnlessRunning(file: string, workflowId: string, isRunning: (workflowId: string) => Promise<boolean>): Promise<void> {
    if (!(await isRunning(workflowId))) await this.release(file);
  }

  /**
   * Removes what crashes left: parts older than `graceMs`, and upload files older than `graceMs`
   * whose run `isRunning` says has ended (or that have no sidecar). Returns how many it removed.
   */
  async sweep(graceMs: number, isRunning: (workflowId: string) => Promise<boolean>): Promise<number> {
    await this.ensure();
    let removed = 0;
    const cutoff = Date.now() - graceMs;
    const names = await fs.promises.readdir(this.dir);
    const present = new Set(names);
    for (const name of names) {
      if (name.endsWith(SIDECAR_SUFFIX)) {
        // A sidecar whose file is gone (a crash between the two removals or the two renames).
        const orphan = !present.has(name.slice(0, -SIDECAR_SUFFIX.length));
        const st = orphan ? await fs.promises.lstat(path.join(this.dir, name)).catch(() => null) : null;
        if (st && st.mtimeMs <= cutoff) {
          await fs.promises.rm(path.join(this.dir, name), { force: true });
          removed += 1;
        }
        continue;
      }
      const file = path.join(this.dir, name);
      const st = await fs.promises.lstat(file).catch(() => null);
      if (!st || st.mtimeMs > cutoff) continue;
      if (!name.startsWith(PART_PREFIX)) {
        const sidecar = await fs.promises
          .readFile(file + SIDECAR_SUFFIX, 'utf8')
          .then((s) => JSON.parse(s) as UploadSidecar)
          .catch(() => null);
        if (sidecar && typeof sidecar.workflowId === 'string' && (await isRunning(sidecar.workflowId))) continue;
      }
      await this.release(file).catch(() => undefined);
      if (name.startsWith(PART_PREFIX)) await fs.promises.rm(file, { force: true });
      removed += 1;
    }
    return removed;
  }
}

/** A body stream's own failure (the client went away, the connection reset) → INCOMPLETE_BODY; typed errors pass. */
export function asBodyError(err: unknown): unknown {
  if (err instanceof FilestoreError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ECONNRESET' || e?.code === 'ERR_STREAM_PREMATURE_CLOSE' || e?.name === 'AbortError' || e?.message === 'aborted') {
    return new IncompleteBodyError('the client closed the connection before the body was complete; nothing was stored');
  }
  return err;
}

/**
 * Counts and hashes a body on its way into an area, failing it with PAYLOAD_TOO_LARGE as soon as it
 * passes `maxBytes`; `checkLength` refuses a complete body of another length than declared.
 */
export function bodyMeter(maxBytes: number): { stream: Transform; readonly size: number; readonly sha256: string; checkLength(expected: number | undefined): void } {
  const hash = createHash('sha256');
  let size = 0;
  let digest: string | null = null;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (size > maxBytes) return done(new PayloadTooLargeError(`the body is larger than the limit of ${maxBytes} bytes (FILESTORE_MAX_FILE_BYTES)`));
      hash.update(chunk);
      done(null, chunk);
    },
  });
  return {
    stream,
    get size() {
      return size;
    },
    get sha256() {
      return (digest ??= hash.digest('hex'));
    },
    checkLength(expected) {
      if (expected !== undefined && size !== expected) throw new IncompleteBodyError(`the body has ${size} bytes; ${expected} were declared`, { received: size, declared: expected });
    },
  };
}
