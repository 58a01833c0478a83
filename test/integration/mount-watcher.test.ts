/**
 * The mount-watcher contract, on both backends (chokidar and @parcel/watcher), on real disk:
 * paths come mount-relative; Filestore's staging folder and scratch names are never reported; a
 * symlink out of the mount is never followed; directories made together with their contents —
 * `mkdir -p`, a tree moved in, a directory renamed — are watched all the way down, at their
 * current paths (parcel's inotify backend alone misses these: parcel-watcher.ts makes up for it);
 * an entry the crawl cannot read does not stop the watch.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { watcherErrors } from '../../src/metrics';
import { STAGING_DIR } from '../../src/paths';
import { MAX_SUBTREE_WATCHES, REPAIR_MIN_GAP_MS } from '../../src/watcher/parcel-watcher';
import { watchMount, type MountWatcher, type WatchBackend } from '../../src/watcher/mount-watcher';
import { WATCH_BACKENDS } from '../helpers/watch-backend';
import { waitFor } from '../helpers/wait';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let base: string;
let root: string;
let running: MountWatcher | null = null;

beforeEach(async () => {
  base = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'filestore-mw-')));
  root = path.join(base, 'mount');
  await fs.mkdir(root);
});
afterEach(async () => {
  await running?.close();
  running = null;
  execFileSync('rm', ['-rf', base]);
});

async function watch(backend: WatchBackend, mountId = `mw-${backend}`) {
  const events: Array<{ path: string; event: string }> = [];
  const errors: string[] = [];
  const scans: string[] = [];
  running = await watchMount(
    { mountId, rootReal: root, onEvent: (p, event) => events.push({ path: p, event }), onScan: (d) => scans.push(d), onError: (c) => errors.push(c) },
    backend,
  );
  const seen = (p: string) => events.some((e) => e.path === p);
  return { events, errors, scans, seen, waitSeen: (p: string, ms = 10_000) => waitFor(`an event on ${p}`, async () => seen(p), ms) };
}

describe.each(WATCH_BACKENDS)('%s', (backend) => {
  test('reports mount-relative paths; never the staging folder or cross-device scratch names', async () => {
    const w = await watch(backend);
    await fs.mkdir(path.join(root, STAGING_DIR, 'tx-1'), { recursive: true });
    await fs.writeFile(path.join(root, STAGING_DIR, 'tx-1', 'content.tmp'), 'staged');
    await fs.writeFile(path.join(root, STAGING_DIR, 'tx-1', 'plan.json'), '{}');
    await fs.mkdir(path.join(root, 'docs'));
    await fs.writeFile(path.join(root, 'docs', '.report.txt.filestore-xdev'), 'half a copy');
    await fs.mkdir(path.join(root, 'docs', '.tree.filestore-moved'));
    await fs.writeFile(path.join(root, 'docs', '.tree.filestore-moved', 'inside.txt'), 'renamed aside');
    await fs.writeFile(path.join(root, 'docs', 'report.txt'), 'the user\'s');
    // A user's names that merely look like Filestore's are the user's.
    await fs.writeFile(path.join(root, 'docs', 'report.txt.filestore-xdev'), 'user file');
    await w.waitSeen('docs/report.txt');
    await w.waitSeen('docs/report.txt.filestore-xdev');
    await sleep(1500);
    expect(w.events.filter((e) => e.path.startsWith(STAGING_DIR) || e.path.includes('.filestore-moved') || e.path.includes('.report.txt.filestore-'))).toEqual([]);
    expect(w.events.every((e) => !path.isAbsolute(e.path))).toBe(true);
    expect(w.errors).toEqual([]);
  });

  test('a symlink to a directory outside the mount is not followed', async () => {
    const outside = path.join(base, 'outside');
    await fs.mkdir(outside);
    await fs.symlink(outside, path.join(root, 'link-before'));
    const w = await watch(backend);
    await fs.symlink(outside, path.join(root, 'link-after'));
    await w.waitSeen('link-after');
    await fs.writeFile(path.join(outside, 'secret.txt'), 'not in the mount');
    await fs.mkdir(path.join(outside, 'sub'));
    await fs.writeFile(path.join(outside, 'sub', 'deeper.txt'), 'not in the mount either');
    await fs.writeFile(path.join(root, 'sentinel.txt'), 'in the mount');
    await w.waitSeen('sentinel.txt');
    await sleep(1500);
    expect(w.events.filter((e) => e.path.startsWith('link-before/') || e.path.startsWith('link-after/'))).toEqual([]);
    // The link itself is an entry of the mount, never a directory to descend into.
    expect(w.events.filter((e) => e.path === 'link-after').map((e) => e.event)).not.toContain('addDir');
  });

  test('directories made with their contents at once are watched all the way down, at their current paths', async () => {
    await fs.mkdir(path.join(root, 'old', 'sub', 'deeper'), { recursive: true });
    const elsewhere = path.join(base, 'elsewhere');
    await fs.mkdir(path.join(elsewhere, 'tree', 'nested'), { recursive: true });
    await fs.writeFile(path.join(elsewhere, 'tree', 'nested', 'came-along.txt'), 'moved in');
    const w = await watch(backend);

    await fs.mkdir(path.join(root, 'p', 'a', 'b', 'c'), { recursive: true });
    await fs.writeFile(path.join(root, 'p', 'a', 'b', 'c', 'at-once.txt'), 'written right after mkdir -p');
    await fs.rename(path.join(elsewhere, 'tree'), path.join(root, 'tree'));
    await fs.rename(path.join(root, 'old'), path.join(root, 'new'));
    // What was there before any watch could be added is reported too.
    // Under load the new directories' watches come late (their first scan then reports what they hold): the same allowance as below.
    await w.waitSeen('p/a/b/c/at-once.txt', REPAIR_MIN_GAP_MS + 10_000);
    await w.waitSeen('tree/nested/came-along.txt', REPAIR_MIN_GAP_MS + 10_000);

    // Later changes deep inside each, at their current paths.
    await sleep(1000);
    await fs.writeFile(path.join(root, 'p', 'a', 'b', 'c', 'later.txt'), 'x');
    await fs.writeFile(path.join(root, 'tree', 'nested', 'later.txt'), 'x');
    await fs.writeFile(path.join(root, 'new', 'sub', 'deeper', 'later.txt'), 'x');
    for (const p of ['p/a/b/c/later.txt', 'tree/nested/later.txt', 'new/sub/deeper/later.txt']) await w.waitSeen(p, REPAIR_MIN_GAP_MS + 10_000);
    expect(w.errors).toEqual([]);
  }, 60_000);

  test('removed files and directories are reported', async () => {
    await fs.mkdir(path.join(root, 'gone', 'inner'), { recursive: true });
    await fs.writeFile(path.join(root, 'gone', 'inner', 'f.txt'), 'x');
    await fs.writeFile(path.join(root, 'file.txt'), 'x');
    const w = await watch(backend);
    await fs.rm(path.join(root, 'file.txt'));
    await fs.rm(path.join(root, 'gone'), { recursive: true });
    await w.waitSeen('file.txt');
    await w.waitSeen('gone');
    expect(w.events.find((e) => e.path === 'file.txt')?.event).toBe('unlink');
    expect(['unlink', 'unlinkDir']).toContain(w.events.find((e) => e.path === 'gone')?.event);
  });

  test('an entry even root cannot read (a host path over PATH_MAX) does not stop the watch', async () => {
    // Made by relative mkdirs from inside the tree: the host path ends up over 4096 bytes.
    const seg = 'd'.repeat(250);
    execFileSync('bash', ['-c', 'mkdir "$1/deep" && cd "$1/deep" && for i in $(seq 1 $2); do mkdir "$3" && cd "$3"; done', 'mk', root, '18', seg]);
    const counted = async () =>
      (await watcherErrors.get()).values.filter((v) => v.labels.mount === `mw-deep-${backend}` && v.labels.code === 'ENAMETOOLONG').reduce((a, v) => a + v.value, 0);
    const before = await counted();
    const w = await watch(backend, `mw-deep-${backend}`);
    await fs.writeFile(path.join(root, 'still-watched.txt'), 'x');
    await w.waitSeen('still-watched.txt');
    // Counted and answered with a rescan (which reports the entry as unreadable), on both backends.
    expect(w.errors).toContain('ENAMETOOLONG');
    expect(await counted()).toBeGreaterThan(before);
  }, 30_000);
});

describe('parcel only', () => {
  test(`more trees moved in than ${MAX_SUBTREE_WATCHES} subtree watches: the whole mount is watched afresh, nothing missed`, async () => {
    const elsewhere = path.join(base, 'elsewhere');
    const n = MAX_SUBTREE_WATCHES + 20;
    for (let i = 0; i < n; i++) await fs.mkdir(path.join(elsewhere, `t${i}`, 'nested', 'leaf'), { recursive: true });
    const w = await watch('parcel');
    for (let i = 0; i < n; i++) await fs.rename(path.join(elsewhere, `t${i}`), path.join(root, `t${i}`));
    await w.waitSeen(`t${n - 1}/nested/leaf`, REPAIR_MIN_GAP_MS + 20_000);
    await w.waitSeen('t0/nested/leaf');
    await sleep(1000);
    for (const i of [0, MAX_SUBTREE_WATCHES - 1, n - 1]) await fs.writeFile(path.join(root, `t${i}`, 'nested', 'leaf', 'later.txt'), 'x');
    for (const i of [0, MAX_SUBTREE_WATCHES - 1, n - 1]) await w.waitSeen(`t${i}/nested/leaf/later.txt`, REPAIR_MIN_GAP_MS + 20_000);
    expect(w.errors).toEqual([]);
  }, 90_000);
});
