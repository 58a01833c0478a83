import fs from 'node:fs';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { stopTestMinio } from './minio-env';

export default async function globalTeardown(): Promise<void> {
  await Promise.all([(globalThis as { __temporalEnv?: TestWorkflowEnvironment }).__temporalEnv?.teardown(), stopTestMinio()]);
  const bundle = process.env.FILESTORE_TEST_WORKFLOW_BUNDLE;
  if (bundle) fs.rmSync(path.dirname(bundle), { recursive: true, force: true });
}
