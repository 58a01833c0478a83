/**
 * Integration tests share ONE Temporal dev server (the real CLI binary, with Filestore's search
 * attributes) and one pre-built workflow bundle for the run; each test file brings its own
 * database, task queue and temp dirs (see stack.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import { loadConfig } from '../../src/config';
import { findTemporalCli } from '../../src/dev/temporal-dev-server';
import { SEARCH_ATTRIBUTES } from '../../src/mutations';

export default async function globalSetup(): Promise<void> {
  const cli = findTemporalCli(loadConfig());
  if (!cli) throw new Error('Temporal CLI not found: run scripts/bootstrap.sh (npm test does) or set TEMPORAL_CLI_PATH');
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: cli },
      ip: '127.0.0.1',
      searchAttributes: Object.values(SEARCH_ATTRIBUTES),
      log: { format: 'pretty', level: 'error' },
    },
  });
  (globalThis as { __temporalEnv?: TestWorkflowEnvironment }).__temporalEnv = env;
  process.env.FILESTORE_TEST_TEMPORAL_ADDRESS = env.address;

  const bundle = await bundleWorkflowCode({
    workflowsPath: path.join(__dirname, '..', '..', 'workflows', 'index.ts'),
    logger: { info() {}, warn() {}, error: console.error, debug() {}, trace() {}, log() {} } as never,
  });
  const bundlePath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'filestore-bundle-')), 'workflows.js');
  fs.writeFileSync(bundlePath, bundle.code);
  process.env.FILESTORE_TEST_WORKFLOW_BUNDLE = bundlePath;
}
