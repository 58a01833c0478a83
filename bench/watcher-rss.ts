/**
 * Smoke measurement of a mount watcher's memory: for each backend, a fresh process that only
 * starts src/watcher/mount-watcher.ts's watchMount on a generated tree (DIRS directories × FILES
 * files, made once under BENCH_TREE_DIR and reused), and reports time to ready, RSS before and
 * after (a forced GC once ready), peak RSS (VmHWM) and its inotify watches. `parcel+replay` is
 * parcel's second start with a snapshot committed by the first (replaying it loads the snapshot
 * beside the live tree: the peak of a restart). Not the drift bench: no Redis, Postgres or drift
 * processing — the watcher's own footprint.
 *
 *   npx tsx bench/watcher-rss.ts                       # 100 × 1,000 files, both backends
 *   BENCH_DIRS=1000 BACKENDS=parcel npx tsx bench/watcher-rss.ts   # 1,000,000 files, parcel only
 *
 * Prints a table, then one JSON line.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gc, inotifyWatches, peakRss } from './proc-stats';

const CHILD = process.argv[2] === '--child';

interface Footprint {
  backend: string;
  entries: number;
  readyMs: number;
  rssBeforeBytes: number;
  rssBytes: number;
  peakRssBytes: number;
  inotifyWatches: number | null;
}

async function child(label: string, root: string, entries: number, snapshotDir: string): Promise<void> {
  const { watchMount } = await import('../src/watcher/mount-watcher');
  const backend = label.startsWith('parcel') ? 'parcel' : 'chokidar';
  const snapshot = backend === 'parcel' ? { dir: snapshotDir, instanceId: 'rss', everyMs: 3_600_000, handedOver: async () => true } : undefined;
  gc();
  const rssBeforeBytes = process.memoryUsage.rss();
  const t0 = performance.now();
  const w = await watchMount({ mountId: 'rss', rootReal: root, onEvent: () => undefined, onError: () => undefined, snapshot }, backend);
  const readyMs = performance.now() - t0;
  gc();
  await new Promise((r) => setTimeout(r, 1000));
  gc();
  if (label === 'parcel+replay' && !w.caughtUp) throw new Error('the snapshot was not replayed');
  const out: Footprint = { backend: label, entries, readyMs, rssBeforeBytes, rssBytes: process.memoryUsage.rss(), peakRssBytes: peakRss(), inotifyWatches: inotifyWatches() };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  await w.close();
  process.exit(0);
}

function makeTree(root: string, dirs: number, files: number): void {
  const done = path.join(root, '.complete');
  if (fs.existsSync(done)) return;
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(root, { recursive: true });
  for (let d = 0; d < dirs; d++) {
    const dir = path.join(root, `d${d}`);
    fs.mkdirSync(dir);
    // touch(1) in batches: far faster than a syscall round trip per file from node.
    execFileSync('bash', ['-c', `cd "$1" && seq -f "f%g.txt" 0 ${files - 1} | xargs touch`, 'mk', dir]);
  }
  fs.writeFileSync(done, '');
}

function measure(backend: string, root: string, entries: number, snapshotDir: string): Promise<Footprint> {
  return new Promise((resolve, reject) => {
    const tsx = path.join(__dirname, '..', 'node_modules', 'tsx', 'dist', 'loader.mjs');
    const p = spawn(process.execPath, ['--expose-gc', '--import', tsx, __filename, '--child', backend, root, String(entries), snapshotDir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1)!) as Footprint) : reject(new Error(`${backend} probe exited with ${code}`))));
  });
}

async function main(): Promise<void> {
  const dirs = Number(process.env.BENCH_DIRS ?? 100);
  const files = Number(process.env.BENCH_FILES ?? 1000);
  const backends = (process.env.BACKENDS ?? 'chokidar,parcel').split(',');
  const root = path.join(process.env.BENCH_TREE_DIR ?? os.tmpdir(), `filestore-rss-${dirs}x${files}`);
  const t0 = performance.now();
  makeTree(root, dirs, files);
  console.error(`tree ${root}: ${dirs} × ${files} files ready after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const results: Footprint[] = [];
  const snapshotDir = fs.mkdtempSync(path.join(os.tmpdir(), 'filestore-rss-snapshots-'));
  try {
    for (const b of backends) {
      results.push(await measure(b, root, dirs * files, snapshotDir));
      if (b === 'parcel') results.push(await measure('parcel+replay', root, dirs * files, snapshotDir));
    }
  } finally {
    fs.rmSync(snapshotDir, { recursive: true, force: true });
  }
  const mib = (n: number) => (n / 1048576).toFixed(0);
  console.log('| backend | files | ready s | RSS before MiB | RSS ready MiB | delta MiB | peak RSS MiB | inotify watches |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    console.log(`| ${r.backend} | ${r.entries} | ${(r.readyMs / 1000).toFixed(1)} | ${mib(r.rssBeforeBytes)} | ${mib(r.rssBytes)} | ${mib(r.rssBytes - r.rssBeforeBytes)} | ${mib(r.peakRssBytes)} | ${r.inotifyWatches} |`);
  }
  console.log(JSON.stringify({ bench: 'watcher-rss', dirs, files, results }));
}

if (CHILD) void child(process.argv[3], process.argv[4], Number(process.argv[5]), process.argv[6]);
else void main();
