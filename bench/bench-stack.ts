/**
 * A private Filestore for one benchmark run, built from the same pieces the integration tests use:
 * ONE Temporal dev server (the real CLI binary), one workflow bundle (bench/bare-workflows.ts:
 * the real workflows plus the bare baseline), a fresh database `filestore_bench_<random>`, a temp
 * dir (on the disk of os.tmpdir()) holding the mount, the Filestore worker in-process, a
 * FilestoreClient, and the two workers that serve the bare baseline. `teardown()` releases
 * whatever was acquired, in reverse, also when setup failed halfway.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { dropDatabase, runMigrations } from '../db/client';
import { FilestoreClient } from '../src/client';
import { loadConfig, type Config } from '../src/config';
import { startWorker, type RunningWorker } from '../src/worker';
import { testDatabaseUrl } from '../test/helpers/stack';
import { log } from './bench-util';

export { log } from './bench-util';
import { bundleWorkflows, startTemporalTestServer } from '../test/helpers/temporal-env';

/** The bare baseline's activities: no work, small results, like a mutation's steps minus Filestore. */
export function createBareActivities() {
  const step = async (input: { payload?: string; step?: number }) => ({ step: (input.step ?? 0) + 1 });
  return { bareBegin: step, bareExecute: step, bareVerify: step, bareCommit: step, bareFinalize: step, barePublish: step };
}

export interface BenchStack {
  config: Config;
  client: FilestoreClient;
  worker: RunningWorker;
  /** Temp dir of the run (same disk as os.tmpdir()); the mount lives below it. */
  tmp: string;
  mountId: string;
  /** Real path of the mount's root. */
  mountRoot: string;
  /** Task queues of the bare baseline: workflows + begin/commit, and execute/verify/finalize. */
  bare: { taskQueue: string; secondTaskQueue: string };
  teardown(): Promise<void>;
}

export async function createBenchStack(): Promise<BenchStack> {
  // Before anything touches the Runtime (createLocal does): SDK logs at WARN, on stderr.
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // installed already
  }

  const cleanups: Array<{ what: string; fn: () => Promise<unknown> }> = [];
  const teardown = async () => {
    while (cleanups.length) {
      const { what, fn } = cleanups.pop()!;
      await fn().catch((err: Error) => log(`teardown: ${what} failed: ${err.message}`));
    }
  };

  try {
    const id = `${process.pid}_${randomBytes(4).toString('hex')}`;
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'filestore-bench-'));
    cleanups.push({ what: 'remove temp dir', fn: () => fs.rm(tmp, { recursive: true, force: true }) });

    log('starting the Temporal dev server');
    const { env, httpUrl } = await startTemporalTestServer();
    cleanups.push({ what: 'stop the Temporal dev server', fn: () => env.teardown() });

    log('bundling workflows');
    const bundle = { code: await bundleWorkflows(path.join(__dirname, 'bare-workflows.ts')) };
    const bundlePath = path.join(tmp, 'workflows.js');
    await fs.writeFile(bundlePath, bundle.code);

    const databaseUrl = testDatabaseUrl(`filestore_bench_${id}`);
    log(`creating database ${new URL(databaseUrl).pathname.slice(1)}`);
    cleanups.push({ what: 'drop the database', fn: () => dropDatabase(databaseUrl) });
    await runMigrations(databaseUrl);

    const config = loadConfig(process.env, {
      databaseUrl,
      temporalAddress: env.address,
      // The CLI figure's `put` starts over the server's HTTP API, as `filestore dev`'s CLI does.
      temporalHttpUrl: httpUrl,
      temporalNamespace: 'default',
      taskQueue: `fs-bench-${id}`,
      metricsPort: 0,
      stateDir: path.join(tmp, 'state'),
      logLevel: 'warn',
      // The large-file bench puts its source from the run's temp dir.
      sourceRoots: [tmp],
    });
    const client = await FilestoreClient.connect(config);
    cleanups.push({ what: 'close the client', fn: () => client.close() });

    const mountId = 'bench';
    const root = path.join(tmp, 'mounts', mountId);
    await fs.mkdir(root, { recursive: true });
    await client.addLocalMount({ id: mountId, rootPath: root });
    const mountRoot = await fs.realpath(root);

    log('starting the Filestore worker (in-process)');
    const worker = await startWorker(config, { workflowBundle: { codePath: bundlePath }, metrics: false });
    cleanups.push({ what: 'stop the Filestore worker', fn: () => worker.shutdown() });
    await worker.refreshMounts();
    if (!worker.servedMounts().includes(mountId)) throw new Error(`the worker does not serve mount ${mountId}`);

    // The baseline's workers: the same Worker options as startWorker's (connection, namespace,
    // queue, bundle, activities, default tuning), one workflow+activity worker on the base queue
    // and one activity-only worker on the second queue, sharing one connection.
    const bare = { taskQueue: `${config.taskQueue}-bare`, secondTaskQueue: `${config.taskQueue}-bare-mount` };
    const connection = await NativeConnection.connect({ address: config.temporalAddress });
    cleanups.push({ what: 'close the bare workers connection', fn: () => connection.close() });
    const activities = createBareActivities();
    const bareWorkers = [
      await Worker.create({ connection, namespace: config.temporalNamespace, taskQueue: bare.taskQueue, workflowBundle: { codePath: bundlePath }, activities }),
      await Worker.create({ connection, namespace: config.temporalNamespace, taskQueue: bare.secondTaskQueue, activities }),
    ];
    const bareRuns = bareWorkers.map((w) => w.run());
    cleanups.push({
      what: 'stop the bare workers',
      fn: async () => {
        for (const w of bareWorkers) if (w.getState() === 'RUNNING') w.shutdown();
        await Promise.allSettled(bareRuns);
      },
    });

    return { config, client, worker, tmp, mountId, mountRoot, bare, teardown };
  } catch (err) {
    await teardown();
    throw err;
  }
}
