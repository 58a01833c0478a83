/**
 * Choosing a mount's watch backend (FILESTORE_WATCH_BACKEND, auto threshold), the bounded entry
 * count behind `auto`, parcel error codes, and the parcel snapshot store's refusal of snapshots
 * that are not this mount's or not intact.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { MOUNT_MARKER, STAGING_DIR } from '../../src/paths';
import { SnapshotStore } from '../../src/watcher/parcel-snapshot';
import { parcelErrorCode } from '../../src/watcher/parcel-watcher';
import { chooseWatchBackend, countEntriesUpTo, type MountSizeProbe } from '../../src/watcher/watch-backend';

let tmp: string;
beforeEach(async () => {
  tmp = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'filestore-wb-')));
});
afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

function probe(catalogued: number, onDisk: number) {
  const calls: string[] = [];
  const p: MountSizeProbe = {
    catalogued: async (limit) => {
      calls.push(`catalogued ${limit}`);
      return Math.min(catalogued, limit);
    },
    onDisk: async (limit) => {
      calls.push(`onDisk ${limit}`);
      return Math.min(onDisk, limit);
    },
  };
  return { p, calls };
}

describe('chooseWatchBackend', () => {
  test('the configuration defaults to auto with a threshold of 10,000 entries', () => {
    const config = loadConfig({});
    expect(config.watchBackend).toBe('auto');
    expect(config.watchAutoThreshold).toBe(10_000);
    expect(loadConfig({ FILESTORE_WATCH_BACKEND: 'parcel' }).watchBackend).toBe('parcel');
    expect(() => loadConfig({ FILESTORE_WATCH_BACKEND: 'fsevents' })).toThrow(/FILESTORE_WATCH_BACKEND/);
  });

  test('an explicit backend is used as is, without counting anything', async () => {
    for (const backend of ['chokidar', 'parcel'] as const) {
      const { p, calls } = probe(1_000_000, 1_000_000);
      expect((await chooseWatchBackend(backend, 10, p)).backend).toBe(backend);
      expect(calls).toEqual([]);
    }
  });

  test('auto: parcel above the threshold of catalogued nodes, without walking the disk', async () => {
    const { p, calls } = probe(10_001, 0);
    expect(await chooseWatchBackend('auto', 10_000, p)).toMatchObject({ backend: 'parcel' });
    expect(calls).toEqual(['catalogued 10001']);
  });

  test('auto: parcel above the threshold of entries on disk when the catalog knows few (a mount added over an existing tree)', async () => {
    const { p, calls } = probe(3, 50_000);
    expect(await chooseWatchBackend('auto', 10_000, p)).toMatchObject({ backend: 'parcel' });
    expect(calls).toEqual(['catalogued 10001', 'onDisk 10001']);
  });

  test('auto: chokidar at or below the threshold', async () => {
    expect((await chooseWatchBackend('auto', 10_000, probe(10_000, 10_000).p)).backend).toBe('chokidar');
    expect((await chooseWatchBackend('auto', 10_000, probe(0, 0).p)).backend).toBe('chokidar');
    expect((await chooseWatchBackend('auto', 0, probe(0, 1).p)).backend).toBe('parcel');
  });
});

describe('countEntriesUpTo', () => {
  test('counts files, directories and links, stops at the limit, and leaves out Filestore\'s own names and what links point to', async () => {
    await fs.mkdir(path.join(tmp, STAGING_DIR, 'tx'), { recursive: true });
    await fs.writeFile(path.join(tmp, STAGING_DIR, 'tx', 'big.tmp'), 'x');
    await fs.writeFile(path.join(tmp, MOUNT_MARKER), '{}');
    const outside = await fs.mkdtemp(path.join(os.tmpdir(), 'filestore-wb-outside-'));
    try {
      for (let i = 0; i < 50; i++) await fs.writeFile(path.join(outside, `o${i}`), 'x');
      await fs.symlink(outside, path.join(tmp, 'link'));
      await fs.mkdir(path.join(tmp, 'a', 'b'), { recursive: true });
      for (let i = 0; i < 5; i++) await fs.writeFile(path.join(tmp, 'a', 'b', `f${i}`), 'x');
      // link, a, a/b and 5 files.
      expect(await countEntriesUpTo(tmp, 1000)).toBe(8);
      expect(await countEntriesUpTo(tmp, 3)).toBe(3);
    } finally {
      await fs.rm(outside, { recursive: true, force: true });
    }
  });
});

test('parcelErrorCode names the errno behind parcel\'s strerror messages', () => {
  expect(parcelErrorCode(new Error("inotify_add_watch on '/m/a' failed: No space left on device"))).toBe('ENOSPC');
  expect(parcelErrorCode(new Error('File name too long'))).toBe('ENAMETOOLONG');
  expect(parcelErrorCode(new Error('Permission denied'))).toBe('EACCES');
  expect(parcelErrorCode(Object.assign(new Error('x'), { code: 'EMFILE' }))).toBe('EMFILE');
  expect(parcelErrorCode(new Error('something else entirely'))).toBe('UNKNOWN');
});

describe('SnapshotStore', () => {
  const id = (root: string) => ({ mountId: 'big', instanceId: '7b1c0d8e-0000-4000-8000-000000000001', rootReal: root });

  async function committedStore(root: string) {
    const store = await SnapshotStore.open(path.join(tmp, 'state'), id(root));
    const t = store.tempPath();
    await fs.writeFile(t, '1\n12/m/big/a.txt1700000000000000000 0\n');
    await store.commit(t);
    return store;
  }

  test('a committed snapshot is used; none yet, or one altered or truncated afterwards, is not', async () => {
    const root = path.join(tmp, 'mount');
    const fresh = await SnapshotStore.open(path.join(tmp, 'state'), id(root));
    expect(await fresh.committed()).toEqual({ unusable: 'no snapshot yet' });
    const store = await committedStore(root);
    expect(await store.committed()).toEqual({ path: store.snapshotPath });
    expect((await fs.stat(store.snapshotPath)).mode & 0o777).toBe(0o600);
    expect((await fs.stat(path.join(tmp, 'state'))).mode & 0o777).toBe(0o700);
    await fs.appendFile(store.snapshotPath, '12/m/big/b.txt1700000000000000000 0\n');
    expect(await store.committed()).toMatchObject({ unusable: expect.stringMatching(/does not match/) });
    await fs.truncate(store.snapshotPath, 5);
    expect(await store.committed()).toMatchObject({ unusable: expect.stringMatching(/does not match/) });
  });

  test('a snapshot of another instance of the mount id, or of another root, is not used', async () => {
    const root = path.join(tmp, 'mount');
    await committedStore(root);
    const readd = await SnapshotStore.open(path.join(tmp, 'state'), { ...id(root), instanceId: '7b1c0d8e-0000-4000-8000-000000000002' });
    expect(await readd.committed()).toEqual({ unusable: 'snapshot of another mount instance' });
    const moved = await SnapshotStore.open(path.join(tmp, 'state'), id(path.join(tmp, 'elsewhere')));
    expect(await moved.committed()).toMatchObject({ unusable: expect.stringMatching(/another root/) });
  });

  test('a snapshot folder inside the mount is refused (its users could forge the snapshot)', async () => {
    const root = path.join(tmp, 'mount');
    await fs.mkdir(root);
    await expect(SnapshotStore.open(path.join(root, '.state'), id(root))).rejects.toThrow(/inside mount big/);
  });

  test('sweep removes what a watcher that died left behind, not the committed snapshot', async () => {
    const root = path.join(tmp, 'mount');
    const store = await committedStore(root);
    await fs.writeFile(store.tempPath(), 'half written');
    await fs.mkdir(`${store.snapshotPath}.repair-abc`);
    await store.sweep();
    expect((await fs.readdir(path.join(tmp, 'state'))).sort()).toEqual(['big.parcel-snapshot', 'big.parcel-snapshot.json']);
    expect(await store.committed()).toEqual({ path: store.snapshotPath });
  });
});
