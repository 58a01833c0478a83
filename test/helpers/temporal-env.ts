/**
 * One Temporal dev server (the real CLI binary, with Filestore's search attributes) and a workflow
 * bundle built once — shared by the integration tests' global setup and the benchmarks.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import { loadConfig } from '../../src/config';
import { freePort } from '../../src/dev/free-port';
import { findTemporalCli } from '../../src/dev/temporal-dev-server';
import { SEARCH_ATTRIBUTES } from '../../src/search-attributes';

/**
 * The dev server, with its HTTP API on a known port: `httpUrl` is what FILESTORE_TEMPORAL_HTTP_URL
 * gives the CLI (tests and benches run the CLI's HTTP start path against it).
 */
export async function startTemporalTestServer(): Promise<{ env: TestWorkflowEnvironment; httpUrl: string }> {
  const cli = findTemporalCli(loadConfig());
  if (!cli) throw new Error('Temporal CLI not found: run scripts/bootstrap.sh (npm test and the benches do) or set TEMPORAL_CLI_PATH');
  const httpPort = await freePort();
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: cli },
      ip: '127.0.0.1',
      searchAttributes: Object.values(SEARCH_ATTRIBUTES),
      log: { format: 'pretty', level: 'error' },
      extraArgs: ['--http-port', String(httpPort)],
    },
  });
  return { env, httpUrl: `http://127.0.0.1:${httpPort}` };
}

const quiet = { info() {}, warn() {}, error: console.error, debug() {}, trace() {}, log() {} };

/** Bundles the workflows under `workflowsPath` once (webpack takes seconds) and returns the code. */
export async function bundleWorkflows(workflowsPath: string): Promise<string> {
  return (await bundleWorkflowCode({ workflowsPath, logger: quiet as never })).code;
}
