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
import { addS3Mount } from '../../src/catalog/mounts';
import { FilestoreClient } from '../../src/client';
import { loadConfig, type Config } from '../../src/config';
import { startWorker, type RunningWorker } from '../../src/worker';
import { createTestBucket, type TestBucket } from './s3';

/** How {@link TestStack.addS3Mount} registers its mount. */
export interface TestS3MountOptions {
  /** Key prefix of the mount in the bucket. @defaultValue '' (the whole bucket) */
  prefix?: string;
  /** Use this bucket instead of creating one (the caller cleans it up). */
  bucket?: TestBucket;
  /** Endpoint the mount names (e.g. a proxy in front of the run's MinIO). @defaultValue the run's MinIO */
  endpoint?: string;
  storageClass?: string;
  /** A profile of the shared AWS files (AWS_SHARED_CREDENTIALS_FILE) the worker takes credentials from. */
  profile?: string;
  readOnly?: boolean;
  watch?: boolean;
}

export interface TestStack {
  config: Config;
  client: FilestoreClient;
  worker: RunningWorker | null;
  tmp: string;
  /** Creates a directory under the test's temp dir and registers it as a local mount. */
  addMount(id: string, opts?: { readOnly?: boolean }): Promise<string>;
  /**
   * Creates a unique bucket on the run's MinIO (unless `opts.bucket` is given) and registers it as
   * S3 mount `id` (path style, no probe); the buckets it created are emptied and deleted by teardown.
   */
  addS3Mount(id: string, opts?: TestS3MountOptions): Promise<TestBucket>;
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
    // The CLI the tests spawn (stackEnv) starts mutations over the run's HTTP API.
    temporalHttpUrl: process.env.FILESTORE_TEST_TEMPORAL_HTTP_URL ?? 'off',
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
  const buckets: TestBucket[] = [];
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
    async addS3Mount(mountId, o = {}) {
      let bucket = o.bucket;
      if (!bucket) {
        bucket = await createTestBucket(`fs-${mountId}`);
        buckets.push(bucket);
      }
      await addS3Mount(client.db, {
        id: mountId,
        bucket: bucket.bucket,
        prefix: o.prefix,
        endpoint: o.endpoint ?? bucket.endpoint,
        pathStyle: true,
        storageClass: o.storageClass,
        profile: o.profile,
        readOnly: o.readOnly,
        watch: o.watch,
      });
      await stack.worker?.refreshMounts();
      return bucket;
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
      for (const b of buckets.splice(0)) await b.cleanup();
      await client.close();
      await dropDatabase(databaseUrl);
      await fs.rm(tmp, { recursive: true, force: true });
    },
  };
  if (opts.worker ?? true) await stack.startWorker(opts.activities);
  return stack;
}
