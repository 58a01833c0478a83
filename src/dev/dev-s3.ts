/**
 * The S3 side of `filestore dev`: use the S3 server at FILESTORE_S3_ENDPOINT when one answers,
 * otherwise run a private MinIO (data and generated credentials under `<stateDir>/minio`), and
 * make sure the `demo` bucket exists.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CreateBucketCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { s3PathStyle, type Config } from '../config';
import { findMinio, loadOrCreateMinioCredentials, s3EndpointAnswers, startMinioServer, type MinioCredentials, type MinioServer } from './minio-server';

/** Where `filestore dev` runs its MinIO when FILESTORE_S3_ENDPOINT is unset (MinIO's own default port). */
export const DEV_MINIO_ENDPOINT = 'http://127.0.0.1:9000';

/** Region the dev stack and the tests give MinIO's clients (MinIO accepts any; the SDK needs one). */
export const DEV_S3_REGION = 'us-east-1';

export interface DevS3 {
  endpoint: string;
  pathStyle: boolean;
  region: string;
  /** The key pair this stack uses; null when the standard AWS chain of the environment supplies it. */
  credentials: MinioCredentials | null;
  /** MinIO's console, when this checkout's MinIO serves the endpoint. */
  consoleUrl: string | null;
  /** The MinIO this call started (stop it with the stack); null when a server already answered. */
  server: MinioServer | null;
  /** One line for the dev stack's summary. */
  summary: string;
}

/**
 * An S3 server for the dev stack, or the reason there is none (`skipped`: the stack runs without
 * S3) when none answers and none may or can be started, or a foreign server holds the default address.
 */
export async function ensureDevS3(config: Config): Promise<DevS3 | { skipped: string }> {
  const endpoint = config.s3Endpoint ?? DEV_MINIO_ENDPOINT;
  const pathStyle = config.s3Endpoint === undefined ? true : s3PathStyle(config);
  const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? DEV_S3_REGION;
  const dir = path.join(config.stateDir, 'minio');
  const credentialsFile = path.join(dir, 'credentials.json');
  const consoleUrl = `http://${new URL(endpoint).hostname}:${config.minioConsolePort}`;
  const pidFile = path.join(dir, 'minio.pid');
  const dataDir = path.join(dir, 'data');
  // The MinIO of a dev stack that was killed with -9 would outlive this one's Ctrl-C: replace it.
  await stopStaleMinio(pidFile, dataDir);

  if (await s3EndpointAnswers(endpoint)) {
    // Our own MinIO left running (a dev stack killed with -9) still takes the stored key pair.
    const stored = fs.existsSync(credentialsFile) ? loadOrCreateMinioCredentials(credentialsFile) : null;
    if (stored && (await acceptsCredentials(endpoint, pathStyle, stored))) {
      return { endpoint, pathStyle, region: DEV_S3_REGION, credentials: stored, consoleUrl, server: null, summary: `this checkout's MinIO, already running at ${endpoint}` };
    }
    if (config.s3Endpoint === undefined) {
      return { skipped: `${endpoint} answers but is not this checkout's MinIO: set FILESTORE_S3_ENDPOINT (and AWS credentials) to use that server, or to a free loopback address for a private MinIO` };
    }
    return { endpoint, pathStyle, region, credentials: null, consoleUrl: null, server: null, summary: `using the S3 server at ${endpoint} (credentials from the AWS environment)` };
  }

  if (!config.devStartMinio) return { skipped: `no S3 server answers at ${endpoint} and FILESTORE_DEV_START_MINIO=false` };
  const url = new URL(endpoint);
  if (url.protocol !== 'http:' || !['127.0.0.1', 'localhost'].includes(url.hostname) || !url.port) {
    throw new Error(`no S3 server answers at ${endpoint}; a private MinIO starts only on a loopback http://127.0.0.1:<port> address`);
  }
  const binary = findMinio(config);
  if (!binary) return { skipped: 'MinIO not found: run scripts/bootstrap.sh (builds .tools/bin/minio) or set MINIO_PATH' };
  const credentials = loadOrCreateMinioCredentials(credentialsFile);
  const server = await startMinioServer({
    binary,
    dataDir,
    host: '127.0.0.1',
    port: Number(url.port),
    consolePort: config.minioConsolePort,
    credentials,
    logFile: path.join(config.stateDir, 'minio.log'),
  });
  fs.writeFileSync(pidFile, `${server.process.pid}\n`);
  server.process.once('exit', () => fs.rmSync(pidFile, { force: true }));
  return { endpoint, pathStyle, region: DEV_S3_REGION, credentials, consoleUrl: server.consoleUrl, server, summary: `private MinIO at ${endpoint} (${binary}), data in ${dataDir}` };
}

/** An S3 client for the dev stack's server (credentials: its MinIO's, else the default AWS chain). */
export function devS3Client(s3: Pick<DevS3, 'endpoint' | 'pathStyle' | 'region' | 'credentials'>, maxAttempts?: number): S3Client {
  return new S3Client({ endpoint: s3.endpoint, forcePathStyle: s3.pathStyle, region: s3.region, maxAttempts, ...(s3.credentials ? { credentials: { ...s3.credentials } } : {}) }); // a copy: the SDK annotates the object it is given
}

/** Creates `bucket` unless this account already owns it. */
export async function ensureBucket(client: S3Client, bucket: string): Promise<'created' | 'existed'> {
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    return 'created';
  } catch (err) {
    if ((err as Error).name === 'BucketAlreadyOwnedByYou') return 'existed';
    throw err;
  }
}

/**
 * Points this process's AWS SDK clients (the worker and watcher run in it) at the dev server: its
 * key pair when it is this checkout's MinIO — a session token or profile left in the shell would
 * otherwise be mixed with it — and FILESTORE_S3_ENDPOINT for mounts that name no endpoint.
 */
export function exportDevS3Environment(s3: DevS3): void {
  process.env.FILESTORE_S3_ENDPOINT = s3.endpoint;
  process.env.AWS_REGION = s3.region;
  if (!s3.credentials) return;
  process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
}

/**
 * Stops the MinIO recorded in `pidFile` if that process is still a MinIO serving `dataDir` (the pid
 * may have been reused by anything else since: then it is left alone).
 */
async function stopStaleMinio(pidFile: string, dataDir: string): Promise<void> {
  const pid = Number.parseInt(readOrEmpty(pidFile).trim(), 10) || 0;
  // /proc: Linux only; elsewhere a leftover MinIO is reused through its credentials instead.
  const cmdline = pid > 0 ? readOrEmpty(`/proc/${pid}/cmdline`).split('\0') : [];
  if (cmdline.length > 0 && path.basename(cmdline[0]).includes('minio') && cmdline.includes(dataDir)) {
    const alive = () => fs.existsSync(`/proc/${pid}`);
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
    if (alive()) process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 50 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
  }
  fs.rmSync(pidFile, { force: true });
}

function readOrEmpty(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

async function acceptsCredentials(endpoint: string, pathStyle: boolean, credentials: MinioCredentials): Promise<boolean> {
  const client = devS3Client({ endpoint, pathStyle, region: DEV_S3_REGION, credentials }, 1);
  try {
    await client.send(new ListBucketsCommand({}));
    return true;
  } catch {
    return false;
  } finally {
    client.destroy();
  }
}
