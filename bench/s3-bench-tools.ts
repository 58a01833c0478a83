/**
 * The uploaders bench/s3-bench.ts compares Filestore with, each in a process of its own:
 *  - rclone: Debian's `rclone` package (installed with apt-get when missing and we may),
 *    configured only through the environment (remote `bench:`), copying one file to the run's
 *    bucket with its defaults or with the mount's part size, concurrency and multipart threshold;
 *  - `@aws-sdk/lib-storage` `Upload` in a child (bench/s3-bench-upload-child.ts).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { log } from './bench-util';
import type { S3Server } from './s3-bench-stack';
import type { S3Tuning } from './s3-bench-s3';

/**
 * Starts a child running a lib-storage `Upload` of `file` to `bucket`/`key` at `endpoint` with
 * the mount's part size and concurrency; it prints `{ "seconds": … }` (its own timing) on stdout.
 */
export function startUploadChild(endpoint: string, bucket: string, key: string, file: string, tuning: S3Tuning): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 's3-bench-upload-child.ts')], {
    cwd: path.join(__dirname, '..'),
    env: {
      ...process.env,
      BENCH_S3_ENDPOINT: endpoint,
      BENCH_S3_BUCKET: bucket,
      BENCH_S3_KEY: key,
      BENCH_S3_FILE: file,
      BENCH_S3_PART_SIZE: String(tuning.partSize),
      BENCH_S3_QUEUE_SIZE: String(tuning.concurrency),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export interface Rclone {
  /** `rclone v1.60.1`, or null when rclone is not available (then `why` says why). */
  version: string | null;
  why: string | null;
}

function rcloneVersion(): string | null {
  const r = spawnSync('rclone', ['version'], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  return r.stdout.split('\n')[0]?.trim() || 'rclone';
}

/** Finds rclone, installing Debian's package first when it is missing and this process is root. */
export function findRclone(): Rclone {
  let version = rcloneVersion();
  if (version) return { version, why: null };
  if (process.getuid?.() !== 0) return { version: null, why: 'not installed (and not root to apt-get install it)' };
  log('rclone: not found, apt-get install -y rclone');
  const r = spawnSync('apt-get', ['install', '-y', 'rclone'], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  version = rcloneVersion();
  return version ? { version, why: null } : { version: null, why: `apt-get install rclone failed (exit ${r.status ?? r.signal})` };
}

/** rclone's size syntax: a bare number means KiB there, so always give a unit. */
const size = (bytes: number) => (bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)}Mi` : `${bytes}B`);

/** The flags that give rclone the mount's part size, concurrency and multipart threshold. */
export function matchedFlags(t: S3Tuning): string[] {
  return ['--s3-chunk-size', size(t.partSize), '--s3-upload-concurrency', String(t.concurrency), '--s3-upload-cutoff', size(t.multipartThreshold)];
}

/**
 * Starts `rclone copyto <file> bench:<bucket>/<key> [flags]` against `endpoint` (the server, or a
 * counting proxy in front of it). The remote lives only in the environment: nothing is read from,
 * or written to, a config file.
 */
export function startRcloneCopy(s3: S3Server, endpoint: string, file: string, bucket: string, key: string, flags: string[]): ChildProcess {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    RCLONE_CONFIG: '/dev/null',
    RCLONE_CONFIG_BENCH_TYPE: 's3',
    RCLONE_CONFIG_BENCH_PROVIDER: 'Minio',
    RCLONE_CONFIG_BENCH_ENDPOINT: endpoint,
    RCLONE_CONFIG_BENCH_REGION: s3.region,
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: s3.accessKeyId,
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: s3.secretAccessKey,
    RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
  };
  // rclone's AWS SDK refuses AWS_CA_BUNDLE with its own HTTP transport ("LoadCustomCABundleError");
  // a plain-http endpoint needs no CA anyway.
  if (endpoint.startsWith('http://')) delete env.AWS_CA_BUNDLE;
  // --s3-no-check-bucket: the bucket exists; otherwise rclone tries to create it before every copy.
  return spawn('rclone', ['copyto', file, `bench:${bucket}/${key}`, '--s3-no-check-bucket', ...flags], { env, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Waits for a child; resolves with its stdout, rejects with the end of its stderr when it fails. */
export function waitChild(child: ChildProcess, what: string): Promise<string> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => (code === 0 ? resolve(stdout) : reject(new Error(`${what} exited with ${code ?? signal}: ${stderr.trim()}`))));
  });
}
