/**
 * A private MinIO (a real S3 server) for `filestore dev` and the tests: found the way the Temporal
 * CLI is (MINIO_PATH, then the project's .tools/bin, then PATH), started with generated root
 * credentials on loopback ports, and stopped with its parent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config';
import { stopChild } from './child-process';
import { freePort } from './free-port';
import { TOOLS_BIN } from './temporal-dev-server';

/** Root credentials of a private MinIO; they double as the AWS access key pair S3 clients use. */
export interface MinioCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface MinioServer extends MinioCredentials {
  /** S3 endpoint URL, e.g. `http://127.0.0.1:9000` (path-style addressing). */
  endpoint: string;
  /** MinIO's web console. */
  consoleUrl: string;
  dataDir: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** MINIO_PATH, then .tools/bin/minio (scripts/bootstrap.sh builds it), then `minio` on PATH; null when none exists. */
export function findMinio(config: Pick<Config, 'minioPath'>): string | null {
  if (config.minioPath) return fs.existsSync(config.minioPath) ? config.minioPath : null;
  const local = path.join(TOOLS_BIN, 'minio');
  if (fs.existsSync(local)) return local;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'minio');
    if (dir && fs.existsSync(candidate)) return candidate;
  }
  return null;
}

/** True when an S3 server answers HTTP at `endpoint` (any status: AWS and other servers have no MinIO health route). */
export async function s3EndpointAnswers(endpoint: string, timeoutMs = 2000): Promise<boolean> {
  try {
    await fetch(endpoint, { method: 'HEAD', signal: AbortSignal.timeout(timeoutMs) });
    return true;
  } catch {
    return false;
  }
}

/** True when MinIO's liveness probe at `endpoint` answers 200. */
export async function minioLive(endpoint: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const res = await fetch(new URL('/minio/health/live', endpoint), { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok;
  } catch {
    return false;
  }
}

/** A fresh AWS-shaped key pair: MinIO wants a user of ≥ 3 and a password of ≥ 8 characters. */
export function generateMinioCredentials(): MinioCredentials {
  const alnum = (n: number) => {
    const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
    return Array.from(randomBytes(n), (b) => abc[b % abc.length]).join('');
  };
  return { accessKeyId: `FS${alnum(18)}`, secretAccessKey: randomBytes(30).toString('base64url') };
}

/**
 * The credentials kept in `file` (0600), generated and written on first use, so a dev MinIO keeps
 * its data readable across restarts (MinIO's root credentials are part of its stored state).
 */
export function loadOrCreateMinioCredentials(file: string): MinioCredentials {
  try {
    const stored = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<MinioCredentials>;
    if (typeof stored.accessKeyId === 'string' && typeof stored.secretAccessKey === 'string') return { accessKeyId: stored.accessKeyId, secretAccessKey: stored.secretAccessKey };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read MinIO credentials from ${file}: ${(err as Error).message}`);
  }
  const creds = generateMinioCredentials();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  // 'wx': two dev stacks starting at once must not each write (and then use) different keys.
  try {
    fs.writeFileSync(file, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateMinioCredentials(file);
    throw err;
  }
  return creds;
}


export interface StartMinioOptions {
  binary: string;
  dataDir: string;
  /** S3 API port; 0 (default) picks a free one. */
  port?: number;
  /** Console port; 0 (default) picks a free one. */
  consolePort?: number;
  host?: string;
  /** Root credentials; generated when absent. */
  credentials?: MinioCredentials;
  /** MinIO's stdout and stderr; default `<dataDir>/../minio.log`. */
  logFile?: string;
  timeoutMs?: number;
}

/**
 * Starts `minio server <dataDir>` on loopback and resolves once `/minio/health/live` answers.
 * With picked (0) ports, a bind lost to another process is retried on new ports.
 */
export async function startMinioServer(opts: StartMinioOptions): Promise<MinioServer> {
  const picked = !opts.port || !opts.consolePort;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      if (!picked || attempt >= 3 || !(err instanceof PortInUse)) throw err;
    }
  }
}

class PortInUse extends Error {}

async function startOnce(opts: StartMinioOptions): Promise<MinioServer> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port || (await freePort(host));
  const consolePort = opts.consolePort || (await freePort(host));
  const creds = opts.credentials ?? generateMinioCredentials();
  const logFile = opts.logFile ?? path.join(path.dirname(path.resolve(opts.dataDir)), 'minio.log');
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const endpoint = `http://${host}:${port}`;
  if (await s3EndpointAnswers(endpoint, 500)) throw new PortInUse(`something already answers at ${endpoint}`);

  // A MINIO_* variable of the caller's (another server's settings) must not leak into this one.
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MINIO_')));
  Object.assign(env, {
    MINIO_ROOT_USER: creds.accessKeyId,
    MINIO_ROOT_PASSWORD: creds.secretAccessKey,
    MINIO_UPDATE: 'off', // no phoning home for updates (and no internet here)
    MINIO_BROWSER_REDIRECT: 'off',
  });
  const log = fs.openSync(logFile, 'a');
  const logStart = fs.fstatSync(log).size;
  const child = spawn(opts.binary, ['server', opts.dataDir, '--address', `${host}:${port}`, '--console-address', `${host}:${consolePort}`, '--quiet'], {
    stdio: ['ignore', log, log],
    env,
  });
  fs.closeSync(log);
  let exited: string | null = null;
  child.once('exit', (code, signal) => (exited = `exited with ${signal ?? code}`));
  child.once('error', (err) => (exited = `failed to start: ${err.message}`));
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  while (!(await minioLive(endpoint, 1000))) {
    if (exited) {
      const tail = readFrom(logFile, logStart);
      if (/address already in use/i.test(tail)) throw new PortInUse(`MinIO could not bind ${host}:${port} or ${consolePort}`);
      throw new Error(`MinIO ${exited}; see ${logFile}${tail ? `:\n${tail.slice(-2000)}` : ''}`);
    }
    if (Date.now() > deadline) {
      await stopChild(child, 1000);
      throw new Error(`MinIO did not answer at ${endpoint} within ${Math.round((opts.timeoutMs ?? 60_000) / 1000)} s; see ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    ...creds,
    endpoint,
    consoleUrl: `http://${host}:${consolePort}`,
    dataDir: opts.dataDir,
    process: child,
    stop: () => stopChild(child),
  };
}

function readFrom(file: string, offset: number): string {
  try {
    return fs.readFileSync(file).subarray(offset).toString('utf8').trim();
  } catch {
    return '';
  }
}
