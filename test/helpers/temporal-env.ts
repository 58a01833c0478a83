/**
 * One Temporal dev server (the real CLI binary, with Filestore's search attributes) and a workflow
 * bundle built once — shared by the integration tests' global setup and the benchmarks.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import { loadConfig } from '../../src/config';
import { findTemporalCli } from '../../src/dev/temporal-dev-server';
import { SEARCH_ATTRIBUTES } from '../../src/mutations';

export async function startTemporalTestServer(): Promise<TestWorkflowEnvironment> {
  const cli = findTemporalCli(loadConfig());
  if (!cli) throw new Error('Temporal CLI not found: run scripts/bootstrap.sh (npm test and the benches do) or set TEMPORAL_CLI_PATH');
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: cli },
      ip: '127.0.0.1',
      searchAttributes: Object.values(SEARCH_ATTRIBUTES),
      log: { format: 'pretty', level: 'error' },
    },
  });
}

const quiet = { info() {}, warn() {}, error: console.error, debug() {}, trace() {}, log() {} };

/** Bundles the workflows under `workflowsPath` once (webpack takes seconds) and returns the code. */
export async function bundleWorkflows(workflowsPath: string): Promise<string> {
  return (await bundleWorkflowCode({ workflowsPath, logger: quiet as never })).code;
}
