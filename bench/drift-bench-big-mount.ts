/**
 * Phase 3 of bench/drift-bench.ts, big mount: BENCH_BIG_MOUNT_FILES files in 100 directories,
 * created before a fresh watcher service starts on them; time to chokidar ready and to the startup
 * scan done, steady RSS after a forced GC and inotify watches, next to chokidar alone in a fresh
 * node (see the entry's header).
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { addLocalMount, setMountOptions } from '../src/catalog/mounts';
import { PROJECT_DIR } from '../src/config';
import { driftJobs } from '../src/metrics';
import { startWatcherService } from '../src/watcher/watcher-service';
import { BIG_MOUNT, MOUNT, pad, type Ctx } from './drift-bench-context';
import { forceGc, inotifyWatchesOfThisProcess, intEnv, log, mib, now, rawChokidarFootprint, readSysctl, round, rssSampler, sleep, waitFor, writeFiles } from './drift-bench-helpers';
import { completedJobs, counterDelta, counterSnapshot, inconsistentFilesLike, jobsKey, queueIdle } from './drift-bench-probes';

export const BIG_FILES = intEnv('BENCH_BIG_MOUNT_FILES', 100_000);
const BIG_DIRS = Math.min(100, BIG_FILES);
const BIG_BATCH = 1000;
const RSS_TARGET_MB = 300;

export async function benchBigMount(ctx: Ctx) {
  log('big: stopping the first watcher service and turning off watch on its mount');
  await ctx.watcher!.shutdown();
  ctx.watcher = null;
  await setMountOptions(ctx.catalog.db, MOUNT, { watch: false });

  log(`big: creating ${BIG_FILES} files in ${BIG_DIRS} directories (untimed)`);
  const perDir = Math.ceil(BIG_FILES / BIG_DIRS);
  for (let d = 0; d < BIG_DIRS; d++) await fsp.mkdir(path.join(ctx.bigRoot, `d-${pad(d, 3)}`), { recursive: true });
  const tc = now();
  await writeFiles(BIG_FILES, BIG_BATCH, (i) => path.join(ctx.bigRoot, `d-${pad(Math.floor(i / perDir), 3)}`, `f-${pad(i, 6)}.txt`), (i) => `big mount file ${i}\n`);
  log(`big: created in ${((now() - tc) / 1000).toFixed(1)} s`);
  await addLocalMount(ctx.catalog.db, { id: BIG_MOUNT, rootPath: ctx.bigRoot, watch: true });

  const gc = forceGc();
  await sleep(500);
  const rssBaseline = process.memoryUsage.rss();
  const heapBaseline = process.memoryUsage().heapUsed;
  log('big: reference — chokidar alone on the same tree, in a fresh node process');
  const raw = await rawChokidarFootprint(ctx.bigRoot, PROJECT_DIR).catch((err: Error) => {
    log(`big: the raw chokidar probe failed: ${err.message}`);
    return null;
  });
  if (raw) log(`big: raw chokidar ready after ${(raw.readyMs / 1000).toFixed(1)} s, RSS ${mib(raw.rssBytes)} MiB (from ${mib(raw.rssBeforeBytes)}), heap ${mib(raw.heapUsedBytes)} MiB`);
  const jobs0 = await counterSnapshot(driftJobs, jobsKey);
  const sampler = rssSampler(50);
  log('big: starting a fresh watcher service (resolves once chokidar is ready)');
  const t0 = now();
  ctx.watcher = await startWatcherService(ctx.config, { metrics: false, logger: ctx.logger });
  const tReady = now();
  log(`big: chokidar ready after ${((tReady - t0) / 1000).toFixed(1)} s; waiting for the startup scan`);
  let lastLog = now();
  const allAt = await waitFor(
    async () => {
      const n = await inconsistentFilesLike(ctx, BIG_MOUNT, '%');
      if (now() - lastLog > 5000) {
        lastLog = now();
        log(`big: ${n}/${BIG_FILES} INCONSISTENT after ${((now() - t0) / 1000).toFixed(1)} s, RSS ${mib(process.memoryUsage.rss())} MiB`);
      }
      return n >= BIG_FILES ? now() : null;
    },
    900_000,
    250,
  );
  log(`big: startup scan ${allAt === null ? 'did NOT finish' : `done after ${((allAt - t0) / 1000).toFixed(1)} s`}; waiting for the queue to drain`);
  const drainedAt = await waitFor(async () => ((await queueIdle(ctx.watcher!.queue)) ? now() : null), 600_000, 250);
  const peakRss = sampler.stop();
  if (drainedAt === null) log('big: the queue did NOT drain within 600 s');

  forceGc();
  const steady: number[] = [];
  for (let i = 0; i < 20; i++) {
    await sleep(100);
    steady.push(process.memoryUsage.rss());
  }
  const rssSteady = Math.max(...steady);
  const heapSteady = process.memoryUsage().heapUsed;
  const inotify = inotifyWatchesOfThisProcess();
  const jobs = counterDelta(jobs0, await counterSnapshot(driftJobs, jobsKey));
  const scans = (await completedJobs(ctx.watcher.queue)).filter((j) => j.data.mountId === BIG_MOUNT);
  return {
    files: BIG_FILES,
    directories: BIG_DIRS,
    chokidarReadySeconds: round((tReady - t0) / 1000, 2),
    startupScanDoneSeconds: allAt === null ? null : round((allAt - t0) / 1000, 2),
    queueDrainedSeconds: drainedAt === null ? null : round((drainedAt - t0) / 1000, 2),
    jobCounters: jobs,
    jobsRun: scans.map((j) => ({ kind: j.data.kind, reason: j.data.reason ?? (j.data.kind === 'scan' ? 'startup' : 'event'), scope: j.data.kind === 'scan' ? `scan '${j.data.dir}'` : `${j.data.paths?.length ?? 0} paths`, waitMs: j.waitMs, runMs: j.runMs, detected: j.returnvalue?.detected ?? null, deferred: j.returnvalue?.deferred ?? null })),
    rssBaselineBytes: rssBaseline,
    rssSteadyBytes: rssSteady,
    rssDeltaBytes: rssSteady - rssBaseline,
    peakRssBytes: peakRss,
    heapUsedBaselineBytes: heapBaseline,
    heapUsedSteadyBytes: heapSteady,
    gc: gc.how,
    rawChokidar: raw && {
      readySeconds: round(raw.readyMs / 1000, 2),
      rssBeforeBytes: raw.rssBeforeBytes,
      rssBytes: raw.rssBytes,
      rssDeltaBytes: raw.rssBytes - raw.rssBeforeBytes,
      heapUsedBytes: raw.heapUsedBytes,
      inotifyWatches: raw.inotifyWatches,
    },
    inotifyWatches: inotify?.watches ?? null,
    inotifyInstances: inotify?.instances ?? null,
    maxUserWatches: readSysctl('/proc/sys/fs/inotify/max_user_watches'),
    targetMB: RSS_TARGET_MB,
    met: rssSteady <= RSS_TARGET_MB * 1e6,
  };
}

export type BigMountFigures = Awaited<ReturnType<typeof benchBigMount>>;
