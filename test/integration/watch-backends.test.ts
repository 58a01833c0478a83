/**
 * The watcher service's choice of watch backend and parcel's snapshots, on real disk, Postgres,
 * Redis and Temporal: `auto` picks parcel above FILESTORE_WATCH_AUTO_THRESHOLD (by the catalog,
 * or by the disk when the catalog knows little), chokidar at or below; a parcel watcher reports
 * what changed while the watcher was down from its snapshot (the startup scan runs as well); a
 * snapshot that does not match its manifest is not trusted.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { and, eq } from 'drizzle-orm';
import { driftEvents, nodes } from '../../db/schema';
import { loadConfig, type Config } from '../../src/config';
import { driftRescans, watcherEvents } from '../../src/metrics';
import { startWatcherService, type RunningWatcher } from '../../src/watcher/watcher-service';
import { createTestStack, type TestStack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';
import { dropQueueKeys } from '../helpers/redis';

let stack: TestStack;
let config: Config;
let watcher: RunningWatcher | null = null;

async function startWatcher(overrides: Partial<Config> = {}): Promise<RunningWatcher> {
  watcher = await startWatcherService({ ...config, ...overrides }, { metrics: false });
  return watcher;
}
async function stopWatcher(): Promise<void> {
  await watcher?.shutdown();
  watcher = null;
}

async function nodeState(mountId: string, p: string): Promise<string | null> {
  const [row] = await stack.client.db.select({ state: nodes.state }).from(nodes).where(and(eq(nodes.mountId, mountId), eq(nodes.path, p)));
  return row?.state ?? null;
}

async function rescans(mountId: string, reason: string): Promise<number> {
  return (await driftRescans.get()).values.filter((v) => v.labels.mount === mountId && v.labels.reason === reason).reduce((a, v) => a + v.value, 0);
}

/** Events the mount's watcher reported (a snapshot's replay included; scans report none here). */
async function watchEvents(mountId: string): Promise<number> {
  return (await watcherEvents.get()).values.filter((v) => v.labels.mount === mountId).reduce((a, v) => a + v.value, 0);
}

async function addMount(id: string): Promise<string> {
  const dir = path.join(stack.tmp, 'mounts', id);
  await fs.mkdir(dir, { recursive: true });
  await stack.client.addLocalMount({ id, rootPath: dir, watch: true });
  return fs.realpath(dir);
}

beforeAll(async () => {
  stack = await createTestStack();
  config = loadConfig(process.env, {
    ...stack.config,
    enableWatchers: true,
    driftQueue: `drift-wb-${randomBytes(4).toString('hex')}`,
    driftDebounceMs: 200,
    driftMaxWaitMs: 600,
    driftRecheckMs: 300,
    driftJobsKept: 50,
    watcherMetricsPort: 0,
  });
}, 60_000);
afterEach(stopWatcher);
afterAll(async () => {
  if (config) await dropQueueKeys(config.redisUrl, config.driftQueue);
  await stack?.teardown();
});

describe('auto', () => {
  test('parcel above the threshold, chokidar at or below it; by the catalog, and by the disk when the catalog knows little', async () => {
    const small = await addMount('auto-small');
    for (let i = 0; i < 4; i++) await fs.writeFile(path.join(small, `f${i}.txt`), 'x');
    const onDisk = await addMount('auto-disk');
    for (let i = 0; i < 9; i++) await fs.writeFile(path.join(onDisk, `f${i}.txt`), 'x');
    // Catalogued by Filestore, then gone from disk: only the catalog can say this mount is big.
    await addMount('auto-catalog');
    await stack.worker!.refreshMounts();
    for (let i = 0; i < 6; i++) await (await stack.client.put('auto-catalog', `c${i}.txt`, { content: 'x' })).result();
    for (let i = 0; i < 6; i++) await fs.rm(path.join(stack.tmp, 'mounts', 'auto-catalog', `c${i}.txt`));

    const w = await startWatcher({ watchBackend: 'auto', watchAutoThreshold: 5 });
    expect(w.watcherBackend('auto-small')).toBe('chokidar');
    expect(w.watcherBackend('auto-disk')).toBe('parcel');
    expect(w.watcherBackend('auto-catalog')).toBe('parcel');
    await stopWatcher();

    // Exactly at the threshold is not above it.
    const w2 = await startWatcher({ watchBackend: 'auto', watchAutoThreshold: 9 });
    expect(w2.watcherBackend('auto-disk')).toBe('chokidar');
    await stopWatcher();
    // An explicit setting wins over the size.
    expect((await startWatcher({ watchBackend: 'chokidar', watchAutoThreshold: 0 })).watcherBackend('auto-disk')).toBe('chokidar');
    await stopWatcher();
    expect((await startWatcher({ watchBackend: 'parcel' })).watcherBackend('auto-small')).toBe('parcel');
  }, 120_000);
});

describe('parcel snapshots', () => {
  const snapshotFile = (mountId: string) => path.join(config.stateDir, 'watch-snapshots', `${mountId}.parcel-snapshot`);

  test('a change made while the watcher was down is reported from the snapshot (and the startup scan still runs)', async () => {
    const root = await addMount('snap');
    await stack.worker!.refreshMounts();
    await (await stack.client.put('snap', 'kept.txt', { content: 'catalogued' })).result();
    await (await stack.client.put('snap', 'dir/removed.txt', { content: 'catalogued too' })).result();
    await (await stack.client.put('snap', 'untouched.txt', { content: 'left alone' })).result();
    await startWatcher({ watchBackend: 'parcel' });
    await waitFor('the first startup scan to run', async () => (await rescans('snap', 'startup')) > 0, 10_000);
    await stopWatcher();
    await expect(fs.stat(snapshotFile('snap'))).resolves.toBeTruthy();

    // Nobody watching now.
    await fs.writeFile(path.join(root, 'kept.txt'), 'changed while nobody watched');
    await fs.writeFile(path.join(root, 'new.txt'), 'made while nobody watched');
    await fs.rm(path.join(root, 'dir/removed.txt'));
    const startupScans = await rescans('snap', 'startup');
    const eventsBefore = (await stack.client.db.select().from(driftEvents).where(eq(driftEvents.mountId, 'snap'))).length;
    const watchEventsBefore = await watchEvents('snap');

    const w = await startWatcher({ watchBackend: 'parcel' });
    // The snapshot was trusted and replayed: its three changes were reported by the watcher itself
    // at start (nothing touched the mount since), not only found by the startup scan.
    expect(w.watcherCaughtUp('snap')).toBe(true);
    expect((await watchEvents('snap')) - watchEventsBefore).toBeGreaterThanOrEqual(3);
    for (const p of ['kept.txt', 'new.txt', 'dir/removed.txt']) {
      await waitFor(`${p} INCONSISTENT`, async () => (await nodeState('snap', p)) === 'INCONSISTENT', 15_000);
    }
    // The startup scan runs anyway: it closes the window of parcel's start-up crawl.
    expect(await rescans('snap', 'startup')).toBe(startupScans + 1);
    const events = (await stack.client.db.select().from(driftEvents).where(eq(driftEvents.mountId, 'snap'))).slice(eventsBefore);
    expect(events.map((e) => `${e.kind} ${e.path}`).sort()).toEqual(['added new.txt', 'modified kept.txt', 'removed dir/removed.txt']);
    expect(await nodeState('snap', 'untouched.txt')).toBe('ACTIVE');
  }, 120_000);

  test('a snapshot that does not match its manifest is not trusted: the startup scan runs instead', async () => {
    const root = await addMount('snap-bad');
    await stack.worker!.refreshMounts();
    await (await stack.client.put('snap-bad', 'kept.txt', { content: 'catalogued' })).result();
    await startWatcher({ watchBackend: 'parcel' });
    await stopWatcher();
    // Altered to hide a file: it is listed in the snapshot as if it had always been there.
    const hidden = path.join(root, 'hidden.txt');
    await fs.writeFile(hidden, 'made while nobody watched');
    const st = await fs.stat(hidden, { bigint: true });
    const entry = `${Buffer.byteLength(hidden)}${hidden}${st.mtimeNs} 0\n`;
    const text = await fs.readFile(snapshotFile('snap-bad'), 'utf8');
    const [count, ...rest] = text.split('\n');
    await fs.writeFile(snapshotFile('snap-bad'), [String(Number(count) + 1), entry.trimEnd(), ...rest].join('\n'));
    const startupScans = await rescans('snap-bad', 'startup');

    const w = await startWatcher({ watchBackend: 'parcel' });
    expect(w.watcherCaughtUp('snap-bad')).toBe(false);
    expect(await rescans('snap-bad', 'startup')).toBe(startupScans + 1);
    await waitFor('hidden.txt INCONSISTENT', async () => (await nodeState('snap-bad', 'hidden.txt')) === 'INCONSISTENT', 15_000);
  }, 120_000);
});
