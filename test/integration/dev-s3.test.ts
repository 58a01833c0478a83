/**
 * The S3 side of `filestore dev` (src/dev/dev-s3.ts) on real MinIO processes: a private MinIO with
 * credentials generated once (0600) and kept across restarts, a leftover MinIO of a killed stack
 * replaced rather than orphaned, a server that already answers used as it is, and no S3 at all
 * when starting one is turned off.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ListBucketsCommand } from '@aws-sdk/client-s3';
import { loadConfig, type Config } from '../../src/config';
import { devS3Client, ensureBucket, ensureDevS3, type DevS3 } from '../../src/dev/dev-s3';
import { freePort } from '../../src/dev/free-port';

let stateDir: string;
const started: DevS3[] = [];

beforeEach(() => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'filestore-dev-s3-'));
});
afterEach(async () => {
  for (const s3 of started.splice(0)) await s3.server?.stop();
  fs.rmSync(stateDir, { recursive: true, force: true });
});

async function config(overrides: Partial<Config> = {}): Promise<Config> {
  const env = process.env.MINIO_PATH ? { MINIO_PATH: process.env.MINIO_PATH } : {};
  return loadConfig(env, { stateDir, s3Endpoint: `http://127.0.0.1:${await freePort()}`, minioConsolePort: await freePort(), ...overrides });
}

async function ensure(cfg: Config): Promise<DevS3> {
  const s3 = await ensureDevS3(cfg);
  if ('skipped' in s3) throw new Error(`skipped: ${s3.skipped}`);
  started.push(s3);
  return s3;
}

test('starts a private MinIO with credentials kept 0600 under <stateDir>/minio, and the same ones after a restart', async () => {
  const cfg = await config();
  const first = await ensure(cfg);
  expect(first.server).not.toBeNull();
  expect(first.endpoint).toBe(cfg.s3Endpoint);
  expect(first.consoleUrl).toBe(`http://127.0.0.1:${cfg.minioConsolePort}`);
  const file = path.join(stateDir, 'minio', 'credentials.json');
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(first.credentials);

  const client = devS3Client(first);
  expect(await ensureBucket(client, 'demo')).toBe('created');
  expect(await ensureBucket(client, 'demo')).toBe('existed');
  client.destroy();

  await first.server!.stop();
  started.length = 0;
  const second = await ensure(cfg);
  expect(second.credentials).toEqual(first.credentials);
  const again = devS3Client(second);
  const { Buckets } = await again.send(new ListBucketsCommand({}));
  expect(Buckets?.map((b) => b.Name)).toContain('demo'); // the data survived the restart
  again.destroy();
});

test('a MinIO left running by a killed dev stack is replaced, so Ctrl-C of the new stack stops it', async () => {
  const cfg = await config();
  const orphan = await ensure(cfg);
  started.length = 0; // as if its stack died with -9: nobody will stop it
  const next = await ensure(cfg);
  expect(next.server).not.toBeNull();
  expect(next.server!.process.pid).not.toBe(orphan.server!.process.pid);
  expect(orphan.server!.process.exitCode !== null || orphan.server!.process.signalCode !== null).toBe(true);
  expect(fs.readFileSync(path.join(stateDir, 'minio', 'minio.pid'), 'utf8').trim()).toBe(String(next.server!.process.pid));
});

test('an S3 server that already answers at FILESTORE_S3_ENDPOINT is used as it is, with the AWS credentials of the environment', async () => {
  const s3 = await ensure(await config({ s3Endpoint: process.env.FILESTORE_TEST_S3_ENDPOINT }));
  expect(s3.server).toBeNull();
  expect(s3.credentials).toBeNull();
  expect(fs.existsSync(path.join(stateDir, 'minio', 'credentials.json'))).toBe(false);
});

test('FILESTORE_DEV_START_MINIO=false: no server answers, none is started, the stack runs without S3', async () => {
  await expect(ensureDevS3(await config({ devStartMinio: false }))).resolves.toEqual({ skipped: expect.stringContaining('FILESTORE_DEV_START_MINIO=false') });
});
