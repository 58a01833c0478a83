/**
 * What `filestore get` and `cat` run: a file read back through its mount's executor
 * (src/operations/read-file.ts), written to a local file or to stdout. Loaded only inside those
 * verbs' actions — it pulls in the backends (the AWS SDK for S3 mounts) — and kept out of the CLI
 * bundle (scripts/bundle-cli.js LAZY_PROJECT_MODULES).
 *
 * A destination file is never half-written: the bytes go to a temp file next to it, which is
 * fsynced and renamed into place only when the byte count matches the size the backend reported
 * (and, for a version the catalog committed, the sha256 matches the catalog's).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Db } from '../../db/client';
import type { Config } from '../config';
import { AlreadyExistsError, IsADirectoryError, SourceChangedError } from '../errors';
import { ExecutorRegistry } from '../executor-registry';
import { s3OptionsOf } from '../executors/index';
import { openCurrentFile, type FileReaderDeps, type FileVersion } from '../operations/read-file';

/** What a finished `get` reports (`--json`). */
export interface DownloadResult {
  mount: string;
  path: string;
  bytes: number;
  etag: string;
  /** Hex sha256 of the bytes written. */
  sha256: string;
  /** Absolute path of the written file; `-` for stdout. */
  file: string;
}

export interface DownloadOptions {
  overwrite?: boolean;
  /** Called once the size is known; returns the byte counter of a progress bar, or nothing. */
  onStart?: (size: number) => { update(done: number): void; stop(): void } | undefined;
}

/** The executors of this process (config's S3 settings), for one verb. */
export function readerDeps(db: Db, cfg: Config): FileReaderDeps {
  // The AWS SDK's advice about Node versions is for Filestore's maintainers, not for the person at
  // the terminal: it would break the CLI's promise of one clear line on stderr.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return { db, executors: new ExecutorRegistry(db, {}, s3OptionsOf(cfg)) };
}

/**
 * Counts and hashes what passes through; after the end, `check()` refuses a stream whose length or
 * (when the catalog knows it) hash is not the version that was stat'ed — a file changed between
 * stat and read is never delivered as that version.
 */
function verifier(version: FileVersion, onBytes?: (n: number) => void): Transform & { bytes(): number; sha256(): string; check(): void } {
  const hash = createHash('sha256');
  let bytes = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      hash.update(chunk);
      onBytes?.(bytes);
      cb(null, chunk);
    },
  }) as Transform & { bytes(): number; sha256(): string; check(): void };
  let digest: string | undefined;
  t.bytes = () => bytes;
  t.sha256 = () => (digest ??= hash.digest('hex'));
  t.check = () => {
    const where = `${version.mountId}:${version.path}`;
    if (bytes !== version.meta.size) {
      throw new SourceChangedError(`${where} changed while it was read: got ${bytes} bytes, expected ${version.meta.size}`, { mountId: version.mountId, path: version.path });
    }
    // A strong ETag is the catalog's sha256 of this size and mtime: the content must be it.
    const strong = /^"([0-9a-f]{64})"$/.exec(version.etag);
    if (strong && t.sha256() !== strong[1]) {
      throw new SourceChangedError(`${where} changed while it was read: its sha256 is not the catalog's ${strong[1]}`, { mountId: version.mountId, path: version.path });
    }
  };
  return t;
}

/** Streams `mount:filePath` to stdout. EPIPE (a reader like `head` that stopped early) ends quietly. */
export async function downloadToStdout(deps: FileReaderDeps, mount: string, filePath: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  // The version stat'ed is the version opened (re-stated if it changed in between).
  const opened = await openCurrentFile(deps, mount, filePath, () => ({}));
  const version = opened.version;
  const source = opened.stream!;
  const bar = opts.onStart?.(version.meta.size);
  const check = verifier(version, bar ? (n) => bar.update(n) : undefined);
  try {
    try {
      await pipeline(source, check, process.stdout, { end: false });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPIPE') return resultOf(version, check, '-');
      throw err;
    }
  } finally {
    bar?.stop();
  }
  check.check();
  return resultOf(version, check, '-');
}

/**
 * Downloads `mount:filePath` to `dest` (a file, or an existing directory to put it in under its
 * own name). Refuses an existing destination unless `overwrite`.
 */
export async function downloadToFile(deps: FileReaderDeps, mount: string, filePath: string, dest: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  // The version stat'ed is the version opened (re-stated if it changed in between).
  const opened = await openCurrentFile(deps, mount, filePath, () => ({}));
  const version = opened.version;
  const source: Readable = opened.stream!;
  let target = path.resolve(dest);
  let replaced: fs.Stats | null = null;
  try {
    const existing = await fs.promises.stat(target).catch(() => null);
    if (existing?.isDirectory()) {
      target = path.join(target, path.posix.basename(version.path));
      const inside = await fs.promises.stat(target).catch(() => null);
      if (inside?.isDirectory()) throw new IsADirectoryError(target, { file: target });
      if (inside && !opts.overwrite) throw new AlreadyExistsError(target, { file: target });
      replaced = inside;
    } else if (existing && !opts.overwrite) {
      throw new AlreadyExistsError(target, { file: target });
    } else {
      replaced = existing;
    }
  } catch (err) {
    source.destroy();
    throw err;
  }
  // Next to the target: same file system, so the rename below is atomic.
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.filestore-get-${randomBytes(6).toString('hex')}.tmp`);
  const dropTmp = () => {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // Already renamed into place, or never created.
    }
  };
  // Ctrl-C mid-download leaves neither the destination nor the temp file behind.
  const onSignal = (signal: NodeJS.Signals) => {
    dropTmp();
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const bar = opts.onStart?.(version.meta.size);
  const check = verifier(version, bar ? (n) => bar.update(n) : undefined);
  try {
    // flush: fsync before close, so what gets renamed into place is on disk. (A FileHandle stream
    // with autoClose off would leave the handle unusable after pipeline's end: sync never settles.)
    await pipeline(source, check, fs.createWriteStream(tmp, { flags: 'wx', mode: 0o666, flush: true }));
    check.check();
    // A replaced file keeps its permissions: a private (0600) destination never becomes readable by others.
    if (replaced) await fs.promises.chmod(tmp, replaced.mode & 0o7777);
    if (opts.overwrite) {
      await fs.promises.rename(tmp, target);
    } else {
      // link() fails if a file appeared at the target meanwhile: never replaces what it must not.
      try {
        await fs.promises.link(tmp, target);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw new AlreadyExistsError(target, { file: target });
        // A file system without hard links: check, then rename (a narrow window, but no half file).
        if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes(code ?? '')) throw err;
        if (await fs.promises.stat(target).then(() => true, () => false)) throw new AlreadyExistsError(target, { file: target });
        await fs.promises.rename(tmp, target);
      }
    }
    // The rename itself durable: the directory entry reaches the disk too.
    const dir = await fs.promises.open(path.dirname(target), 'r');
    await dir
      .sync()
      .catch((err: NodeJS.ErrnoException) => {
        // Some file systems cannot fsync a directory; the data itself was fsynced above.
        if (err.code !== 'EINVAL' && err.code !== 'ENOTSUP') throw err;
      })
      .finally(() => dir.close());
  } finally {
    source.destroy();
    bar?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    dropTmp();
  }
  return resultOf(version, check, target);
}

function resultOf(version: FileVersion, check: ReturnType<typeof verifier>, file: string): DownloadResult {
  return { mount: version.mountId, path: version.path, bytes: check.bytes(), etag: version.etag, sha256: check.sha256(), file };
}

