import fs from 'node:fs';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __temporalEnv?: TestWorkflowEnvironment }).__temporalEnv?.teardown();
  const bundle = process.env.FILESTORE_TEST_WORKFLOW_BUNDLE;
  if (bundle) fs.rmSync(path.dirname(bundle), { recursive: true, force: true });
}
