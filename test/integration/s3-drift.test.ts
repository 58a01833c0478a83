/**
 * Drift on an S3 mount, found by listing: a real MinIO bucket, Filestore's own writes through the
 * workflow (Temporal, Postgres), out-of-band PutObject / DeleteObject / overwrite with a plain S3
 * client, and scans triggered directly (the scanner itself, then the watcher service's queue and
 * processor on Redis) instead of waiting for FILESTORE_S3_SCAN_INTERVAL_MS.
 */
import { randomBytes } from 'node:crypto';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { and, eq } from 'drizzle-orm';
import { createActivities } from '../../activities';
import { driftEvents, nodes } from '../../db/schema';
import { addS3Mount } from '../../src/catalog/mounts';
import { loadConfig, type Config } from '../../src/config';
import { ExecutorRegistry } from '../../src/executor-registry';
import { driftRescans } from '../../src/metrics';
import { processDriftJob } from '../../src/watcher/drift-queue';
import { scanS3Mount, type S3ScanResult } from '../../src/watcher/s3-scanner';
import { startWatcherService, type RunningWatcher } from '../../src/watcher/watcher-service';
import { createTestBucket, type TestBucket } from '../helpers/s3';
import { createTestStack, type TestStack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';
import { dropQueueKeys } from '../helpers/redis';

const MOUNT = 's3-watched';
const PREFIX = 'estate';

let stack: TestStack;
let bucket: TestBucket;
let registry: ExecutorRegistry;
let config: Config;
let watcher: RunningWatcher | null = null;

const limits = { batchSize: 2, mountRescanThreshold: 100 };

async function scan(threshold = limits.mountRescanThreshold): Promise<S3ScanResult> {
  const executor = await registry.get(MOUNT);
  return scanS3Mount({ db: stack.client.db, executors: registry }, executor, { kind: 'scan', mountId: MOUNT, dir: '', firstEventAt: Date.now() }, 'test-scan', {
    ...limits,
    mountRescanThreshold: threshold,
  });
}

async function put(path: string, content: string): Promise<void> {
  const handle = await stack.client.put(MOUNT, path, { content });
  await handle.result();
}

const outOfBand = {
  put: (path: string, body: string) => bucket.client.send(new PutObjectCommand({ Bucket: bucket.bucket, Key: `${PREFIX}/${path}`, Body: body })),
  delete: (path: string) => bucket.client.send(new DeleteObjectCommand({ Bucket: bucket.bucket, Key: `${PREFIX}/${path}` })),
};

async function openEvents(): Promise<string[]> {
  const rows = await stack.client.db.select().from(driftEvents).where(eq(driftEvents.mountId, MOUNT));
  return rows.map((e) => `${e.kind} ${e.path}`).sort();
}

async function states(): Promise<Record<string, string>> {
  const rows = await stack.client.db.select({ path: nodes.path, state: nodes.state }).from(nodes).where(eq(nodes.mountId, MOUNT));
  return Object.fromEntries(rows.map((r) => [r.path, r.state]));
}

async function nodeState(path: string): Promise<string | null> {
  const [row] = await stack.client.db.select({ state: nodes.state }).from(nodes).where(and(eq(nodes.mountId, MOUNT), eq(nodes.path, path)));
  return row?.state ?? null;
}

/** Test seam in the worker's activities: runs before verify of a request whose path starts with `inflight/`. */
let beforeVerify: (() => Promise<void>) | null = null;

beforeAll(async () => {
  stack = await createTestStack({
    activities: (deps) => {
      const real = createActivities(deps);
      return {
        ...real,
        verifyMutation: (async (...args: unknown[]) => {
          const req = (args[0] as { request: { path: string } }).request;
          if (req.path.startsWith('inflight/') && beforeVerify) await beforeVerify();
          return (real.verifyMutation as (...a: unknown[]) => Promise<unknown>)(...args);
        }) as typeof real.verifyMutation,
      };
    },
  });
  bucket = await createTestBucket('s3-drift');
  await addS3Mount(stack.client.db, { id: MOUNT, bucket: bucket.bucket, prefix: PREFIX, endpoint: bucket.endpoint, pathStyle: true, watch: true });
  await stack.worker!.refreshMounts();
  registry = new ExecutorRegistry(stack.client.db);
  config = loadConfig(process.env, {
    ...stack.config,
    driftQueue: `s3-drift-test-${randomBytes(4).toString('hex')}`,
    driftDebounceMs: 100,
    driftMaxWaitMs: 300,
    driftRecheckMs: 300,
    driftBatchSize: 2,
    s3ScanIntervalMs: 3_600_000,
    watcherMetricsPort: 0,
  });
}, 120_000);

afterEach(async () => {
  await watcher?.shutdown();
  watcher = null;
});

afterAll(async () => {
  if (config) await dropQueueKeys(config.redisUrl, config.driftQueue);
  await bucket?.cleanup();
  await stack?.teardown();
});

describe('scanning an S3 mount', () => {
  test('Filestore’s own writes are not drift', async () => {
    await put('keep.txt', 'kept as written');
    await put('over.txt', 'original');
    await put('victim.txt', 'to be deleted out of band');
    await put('dir/a.txt', 'a');
    await put('dir/sub/b.txt', 'b');
    // Overwritten through Filestore: a new ETag, recorded by its commit.
    const handle = await stack.client.put(MOUNT, 'keep.txt', { content: 'kept, rewritten' }, { overwrite: true });
    await handle.result();

    const result = await scan();
    expect(result).toMatchObject({ mode: 'streamed', detected: 0, suspects: 0, deferred: [] });
    expect(result.listed).toBe(7); // 5 files, dir, dir/sub
    expect(await openEvents()).toEqual([]);
    expect(Object.values(await states()).every((s) => s === 'ACTIVE')).toBe(true);
  }, 120_000);

  test('out-of-band PutObject, overwrite and DeleteObject become drift events and INCONSISTENT nodes', async () => {
    await outOfBand.put('added.txt', 'nobody told Filestore');
    // Same size as what Filestore wrote: only the ETag tells.
    await outOfBand.put('over.txt', 'ORIGINAL');
    await outOfBand.delete('victim.txt');
    // The last key below dir/sub goes: the directory (a prefix) goes with it.
    await outOfBand.delete('dir/sub/b.txt');

    const result = await scan();
    expect(result.mode).toBe('streamed');
    expect(result.detected).toBe(5);
    expect(await openEvents()).toEqual(['added added.txt', 'modified over.txt', 'removed dir/sub', 'removed dir/sub/b.txt', 'removed victim.txt']);
    const now = await states();
    expect(now).toMatchObject({
      'added.txt': 'INCONSISTENT',
      'over.txt': 'INCONSISTENT',
      'victim.txt': 'INCONSISTENT',
      'dir/sub': 'INCONSISTENT',
      'dir/sub/b.txt': 'INCONSISTENT',
      'keep.txt': 'ACTIVE',
      dir: 'ACTIVE',
      'dir/a.txt': 'ACTIVE',
    });
    const [over] = await stack.client.db.select().from(driftEvents).where(and(eq(driftEvents.mountId, MOUNT), eq(driftEvents.path, 'over.txt')));
    expect(over.observed).toMatchObject({ kind: 'file', size: 8 });
    expect((over.observed as { etag?: string }).etag).toMatch(/^[0-9a-f]{32}$/);
    expect((over.catalog as { etag?: string }).etag).not.toBe((over.observed as { etag?: string }).etag);

    // A second scan finds the same differences and records nothing new.
    const again = await scan();
    expect(again.detected).toBe(0);
    expect(await openEvents()).toHaveLength(5);
  }, 120_000);

  test('a write in flight (its object already replaced, its journal entry PENDING) is deferred, never drift', async () => {
    await put('inflight/f.txt', 'first version');
    let paused!: () => void;
    const reachedVerify = new Promise<void>((r) => (paused = r));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    beforeVerify = async () => {
      paused();
      await released;
    };
    try {
      const handle = await stack.client.put(MOUNT, 'inflight/f.txt', { content: 'second version, longer' }, { overwrite: true });
      await reachedVerify;
      const during = await scan();
      expect(during.deferred).toContain('inflight/f.txt');
      expect(await nodeState('inflight/f.txt')).toBe('ACTIVE');
      release();
      await handle.result();
    } finally {
      beforeVerify = null;
      release();
    }
    const after = await scan();
    expect(after.deferred).not.toContain('inflight/f.txt');
    expect(await nodeState('inflight/f.txt')).toBe('ACTIVE');
    expect((await openEvents()).filter((e) => e.includes('inflight'))).toEqual([]);
  }, 120_000);

  test('past the threshold the scan falls back to one plain listing against the catalog, with the same verdicts', async () => {
    await outOfBand.put('more/x.txt', 'x');
    await outOfBand.put('more/y.txt', 'y');
    const before = await driftRescans.get();
    const count = (m: typeof before) => m.values.filter((v) => v.labels.mount === MOUNT && v.labels.reason === 's3-many-changes').reduce((a, v) => a + v.value, 0);
    const result = await scan(1);
    expect(result.mode).toBe('full');
    expect(count(await driftRescans.get())).toBe(count(before) + 1);
    expect(await openEvents()).toEqual(
      expect.arrayContaining(['added more', 'added more/x.txt', 'added more/y.txt', 'added added.txt', 'modified over.txt', 'removed victim.txt']),
    );
    // The earlier detections were repeats: one event each still.
    expect((await openEvents()).filter((e) => e === 'modified over.txt')).toHaveLength(1);
    expect(await nodeState('more/x.txt')).toBe('INCONSISTENT');
  }, 120_000);
});

describe('the watcher service', () => {
  test('serves a watched S3 mount with a scanner: periodic scan at FILESTORE_S3_SCAN_INTERVAL_MS, scans on request through the drift queue', async () => {
    watcher = await startWatcherService(config, { metrics: false });
    expect(watcher.watchedMounts()).toContain(MOUNT);
    const schedulers = await watcher.queue.getJobSchedulers();
    expect(schedulers.find((s) => s.key === `periodic-scan:${MOUNT}`)).toMatchObject({ every: config.s3ScanIntervalMs });

    await outOfBand.put('late/arrival.txt', 'after the watcher started');
    await watcher.scanNow(MOUNT);
    await waitFor(
      'the out-of-band object and its directory to become drift',
      async () => (await nodeState('late/arrival.txt')) === 'INCONSISTENT' && (await nodeState('late')) === 'INCONSISTENT',
      30_000,
    );
    expect(await openEvents()).toEqual(expect.arrayContaining(['added late', 'added late/arrival.txt']));
  }, 120_000);

  test('processDriftJob routes a whole-mount scan of an S3 mount to the scanner', async () => {
    await put('routed.txt', 'through the workflow');
    const result = await processDriftJob(config, { db: stack.client.db, executors: registry }, { kind: 'scan', mountId: MOUNT, dir: '', firstEventAt: Date.now() }, 'routed');
    expect((result as S3ScanResult).mode).toBe('streamed');
    expect(await nodeState('routed.txt')).toBe('ACTIVE');
  }, 120_000);
});
