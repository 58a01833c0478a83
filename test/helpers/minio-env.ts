/**
 * One MinIO for a test run (global-setup.ts) or a benchmark: the project's binary on random free
 * loopback ports, data in a temp dir, fresh credentials exported the way the AWS SDK reads them.
 * A run pointed at another server with FILESTORE_TEST_S3_ENDPOINT (and AWS credentials) starts none.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { DEV_S3_REGION } from '../../src/dev/dev-s3';
import { findMinio, startMinioServer, type MinioServer } from '../../src/dev/minio-server';

interface RunningMinio {
  server: MinioServer;
  dir: string;
}

const slot = globalThis as { __testMinio?: RunningMinio };

/**
 * Starts the run's MinIO unless FILESTORE_TEST_S3_ENDPOINT is set, and sets FILESTORE_TEST_S3_ENDPOINT,
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION in process.env; null when none was started.
 */
export async function startTestMinio(): Promise<MinioServer | null> {
  if (process.env.FILESTORE_TEST_S3_ENDPOINT) {
    process.env.AWS_REGION ??= DEV_S3_REGION;
    return null;
  }
  const binary = findMinio(loadConfig());
  if (!binary) {
    throw new Error('MinIO not found: run scripts/bootstrap.sh (npm test does; it builds .tools/bin/minio), set MINIO_PATH, or point FILESTORE_TEST_S3_ENDPOINT (with AWS credentials) at an S3 server');
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'filestore-minio-'));
  const server = await startMinioServer({ binary, dataDir: path.join(dir, 'data'), logFile: path.join(dir, 'minio.log') });
  slot.__testMinio = { server, dir };
  process.env.FILESTORE_TEST_S3_ENDPOINT = server.endpoint;
  process.env.AWS_ACCESS_KEY_ID = server.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = server.secretAccessKey;
  process.env.AWS_REGION = DEV_S3_REGION;
  // A session token or profile from the caller's shell would be mixed with this key pair.
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
  return server;
}

/** Stops the MinIO startTestMinio started (if any) and removes its data. */
export async function stopTestMinio(): Promise<void> {
  const running = slot.__testMinio;
  if (!running) return;
  slot.__testMinio = undefined;
  await running.server.stop();
  fs.rmSync(running.dir, { recursive: true, force: true });
}
