/**
 * Integration tests share ONE Temporal dev server (the real CLI binary, with Filestore's search
 * attributes), ONE MinIO (a real S3 server; each test file makes its own buckets, see s3.ts) and
 * one pre-built workflow bundle for the run; each test file brings its own database, task queue
 * and temp dirs (see stack.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startTestMinio } from './minio-env';
import { bundleWorkflows, startTemporalTestServer } from './temporal-env';

export default async function globalSetup(): Promise<void> {
  // Jest workers inherit this process's environment, so what is set here reaches every test file.
  const [{ env, httpUrl }] = await Promise.all([startTemporalTestServer(), startTestMinio()]);
  (globalThis as { __temporalEnv?: TestWorkflowEnvironment }).__temporalEnv = env;
  process.env.FILESTORE_TEST_TEMPORAL_ADDRESS = env.address;
  process.env.FILESTORE_TEST_TEMPORAL_HTTP_URL = httpUrl;

  const code = await bundleWorkflows(path.join(__dirname, '..', '..', 'workflows', 'index.ts'));
  const bundlePath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'filestore-bundle-')), 'workflows.js');
  fs.writeFileSync(bundlePath, code);
  process.env.FILESTORE_TEST_WORKFLOW_BUNDLE = bundlePath;
}
