/**
 * Child process of bench/s3-bench.ts's resume part: ONE Filestore worker (the real startWorker,
 * configured from the environment as `filestore worker` is, see test/helpers/cli.ts `stackEnv`),
 * on the bench's pre-built workflow bundle (BENCH_WORKFLOW_BUNDLE) so it starts in a second, with
 * its /metrics endpoint on. It prints one JSON line `{ "metricsUrl": … }` on stdout once it polls,
 * and runs until it is killed — the bench kills it with SIGKILL in the middle of an upload.
 *
 * usage: node --import tsx bench/s3-bench-worker.ts
 */
import { loadConfig } from '../src/config';
import { startWorker } from '../src/worker';

async function main(): Promise<void> {
  const bundle = process.env.BENCH_WORKFLOW_BUNDLE;
  if (!bundle) throw new Error('BENCH_WORKFLOW_BUNDLE is not set');
  const worker = await startWorker(loadConfig(process.env), { workflowBundle: { codePath: bundle }, metrics: true });
  await worker.refreshMounts();
  process.stdout.write(`${JSON.stringify({ metricsUrl: worker.metricsUrl, mounts: worker.servedMounts() })}\n`);
  process.once('SIGTERM', () => void worker.shutdown());
  await worker.done;
}

main().catch((err: Error) => {
  process.stderr.write(`bench worker: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
