/**
 * A private Filestore for one test file: a fresh database (created, migrated, dropped), a unique
 * task queue prefix on the shared Temporal dev server, temp dirs for mounts, an in-process worker
 * and a FilestoreClient.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { dropDatabase, runMigrations } from '../../db/client';
import type { createActivities, ActivityDeps } from '../../activities';
import { FilestoreClient } from '../../src/client';
import { loadConfig, type Config } from '../../src/config';
import { startWorker, type RunningWorker } from '../../src/worker';

export interface TestStack {
  config: Config;
  client: FilestoreClient;
  worker: RunningWorker | null;
  tmp: string;
  /** Creates a directory under the test's temp dir and registers it as a local mount. */
  addMount(id: string, opts?: { readOnly?: boolean }): Promise<string>;
  startWorker(activities?: (deps: ActivityDeps) => ReturnType<typeof createActivities>): Promise<RunningWorker>;
  teardown(): Promise<void>;
}

export function testDatabaseUrl(name: string): string {
  const base = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/filestore');
  base.pathname = `/${name}`;
  return base.toString();
}

export async function createTestStack(
  opts: { worker?: boolean; activities?: (deps: ActivityDeps) => ReturnType<typeof createActivities>; config?: Partial<Config> } = {},
): Promise<TestStack> {
  const id = `${process.pid}_${randomBytes(4).toString('hex')}`;
  const databaseUrl = testDatabaseUrl(`filestore_test_${id}`);
  await runMigrations(databaseUrl);
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'filestore-test-'));
  const config = loadConfig(process.env, {
    databaseUrl,
    temporalAddress: process.env.FILESTORE_TEST_TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
    taskQueue: `fs-test-${id}`,
    metricsPort: 0,
    mountRefreshMs: 500,
    stateDir: path.join(tmp, 'state'),
    logLevel: 'silent',
    // Tests put files from their temp dirs; anything outside these stays refused (SOURCE_NOT_ALLOWED).
    sourceRoots: [tmp, os.tmpdir()],
    ...opts.config,
  });
  const client = await FilestoreClient.connect(config);
  const stack: TestStack = {
    config,
    client,
    worker: null,
    tmp,
    async addMount(mountId, o = {}) {
      const root = path.join(tmp, 'mounts', mountId);
      await fs.mkdir(root, { recursive: true });
      await client.addLocalMount({ id: mountId, rootPath: root, readOnly: o.readOnly });
      await stack.worker?.refreshMounts();
      return fs.realpath(root);
    },
    async startWorker(activities) {
      await stack.worker?.shutdown();
      stack.worker = await startWorker(config, {
        workflowBundle: { codePath: process.env.FILESTORE_TEST_WORKFLOW_BUNDLE! },
        metrics: false,
        activities,
      });
      return stack.worker;
    },
    async teardown() {
      await stack.worker?.shutdown();
      await client.close();
      await dropDatabase(databaseUrl);
      await fs.rm(tmp, { recursive: true, force: true });
    },
  };
  if (opts.worker ?? true) await stack.startWorker(opts.activities);
  return stack;
}
