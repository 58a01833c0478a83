/**
 * Drift-detection benchmark (`npm run bench:drift`): how fast and how cheaply `filestore watcher`
 * notices changes made behind Filestore's back, with the DEFAULT drift settings (debounce 500 ms,
 * max wait 2000 ms, …). No Temporal (no mutations): a fresh database `filestore_bench_drift_<random>`,
 * a temp mount under os.tmpdir() registered with `watch: true`, a private BullMQ queue, and the
 * watcher service (chokidar → EventAggregator → BullMQ → drift processor) in this process, so its
 * memory is this process's RSS and its prom-client counters can be read directly.
 *
 *   1. Single-change latency: BENCH_DRIFT_CHANGES changes, one at a time, spaced more than max wait
 *      apart, cycling create (a new path each time) / modify / delete (of files catalogued
 *      beforehand: created, detected, then set ACTIVE with their drift events resolved in SQL, as
 *      reconciliation would). Latency = from the fs call returning to the node read back
 *      INCONSISTENT (Postgres polled every 10 ms). Reference: a raw chokidar listener (same options)
 *      on the same directory, fs call → its event. Target: p95 ≤ debounce + 1 s.
 *   2. Burst: BENCH_BURST_FILES files written into one directory (500 writeFile in flight). Time
 *      from the first write until every one is INCONSISTENT (target ≤ 10 s) and until the last drift
 *      job finished (watched on the in-process counters, so no probe of ours touches Redis), drift
 *      jobs enqueued (+ deferred re-checks), Redis commands over the burst — INFO commandstats of the
 *      WHOLE server before/after (shared with whoever else uses it; the idle rate measured just
 *      before is the reference) and, exactly, the commands this process sent through ioredis — and
 *      this process's peak RSS (sampled every 50 ms).
 *   3. Big mount: BENCH_BIG_MOUNT_FILES files in 100 directories, created before a fresh watcher
 *      service starts on them (the first mount's `watch` is turned off so only this one is
 *      watched); time to chokidar ready and to the startup scan having marked every file
 *      INCONSISTENT; then the steady RSS after a forced GC (target ≤ 300 MB, judged on the whole
 *      process's RSS) and the inotify watches this process holds. Reference: chokidar alone, same
 *      options, on the same tree in a fresh `node --expose-gc` (time to ready, RSS and heap).
 *
 * Environment:
 *   BENCH_DRIFT_CHANGES    single changes timed (create/modify/delete in turn)  @defaultValue 40
 *   BENCH_BURST_FILES      files in the burst                                    @defaultValue 10000
 *   BENCH_BIG_MOUNT_FILES  files in the big mount                                @defaultValue 100000
 *   plus DATABASE_URL / REDIS_URL. FILESTORE_DRIFT_*, FILESTORE_ENABLE_WATCHERS and
 *   FILESTORE_LOCAL_MOUNTS are ignored (the figures are for the defaults; the queue is private).
 *
 * GC: `global.gc` when node runs with --expose-gc (NODE_OPTIONS=--expose-gc works on Node 20.20);
 * scripts/bench.sh runs plain `npx tsx <file>`, so otherwise the flag is set at run time with
 * v8.setFlagsFromString and `gc` taken from vm.runInNewContext (see forceGc); the JSON says which.
 *
 * Output: a table, then ONE JSON line with every figure as the last line of stdout (or of the file
 * BENCH_REPORT_FILE, as scripts/bench.sh sets). Progress goes to stderr. A missed target is
 * reported (`met: false`), never an exit code. Everything acquired (watchers, database, the queue's
 * Redis keys `bull:<queue>:*`, temp dirs) is released at the end, also after an error or a signal.
 */
import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Queue } from 'bullmq';
import { watch, type FSWatcher } from 'chokidar';
import { Redis } from 'ioredis';
import { Client as PgClient } from 'pg';
import { dropDatabase, openCatalog, runMigrations, type Catalog } from '../db/client';
import { addLocalMount, setMountOptions } from '../src/catalog/mounts';
import { loadConfig, PROJECT_DIR, type Config } from '../src/config';
import { createLogger } from '../src/logger';
import { driftDetectionLatency, driftJobs, watcherEvents } from '../src/metrics';
import { startWatcherService, type RunningWatcher } from '../src/watcher/watcher-service';
import { testDatabaseUrl } from '../test/helpers/stack';
import {
  commandDelta,
  countRedisCommands,
  deleteKeys,
  forceGc,
  inotifyWatchesOfThisProcess,
  intEnv,
  log,
  mib,
  rawChokidarFootprint,
  now,
  readSysctl,
  redisCommandCalls,
  round,
  rssSampler,
  sleep,
  stats,
  table,
  waitFor,
  withTimeout,
  writeFiles,
} from './drift-bench-helpers';

const CHANGES = intEnv('BENCH_DRIFT_CHANGES', 40);
const BURST_FILES = intEnv('BENCH_BURST_FILES', 10_000);
const BIG_FILES = intEnv('BENCH_BIG_MOUNT_FILES', 100_000);
const BIG_DIRS = Math.min(100, BIG_FILES);
const BURST_BATCH = 500;
const BIG_BATCH = 1000;
/** Postgres polling period while timing one change. */
const POLL_MS = 10;
const DETECT_TIMEOUT_MS = 15_000;
const BURST_TARGET_S = 10;
const RSS_TARGET_MB = 300;
const MOUNT = 'drift';
const BIG_MOUNT = 'big';

interface Ctx {
  config: Config;
  catalog: Catalog;
  /** Our own connection for polling and resets (the watcher has its own pool). */
  pg: PgClient;
  /** Our own connection for INFO and key clean-up. */
  redis: Redis;
  tmp: string;
  root: string;
  bigRoot: string;
  logger: ReturnType<typeof createLogger>;
  watcher: RunningWatcher | null;
  raw: FSWatcher | null;
  /** Commands this process sent through ioredis, the bench's own connection excluded. */
  sent: ReturnType<typeof countRedisCommands>;
}

const pad = (i: number, n = 5) => String(i).padStart(n, '0');

// ---- catalog / queue probes ----------------------------------------------------------------------

async function stateOf(ctx: Ctx, mountId: string, p: string): Promise<string | null> {
  const r = await ctx.pg.query<{ state: string }>({ name: 'bench-state', text: 'SELECT state FROM nodes WHERE mount_id = $1 AND path = $2', values: [mountId, p] });
  return r.rows[0]?.state ?? null;
}

async function inconsistentAmong(ctx: Ctx, mountId: string, paths: string[]): Promise<number> {
  const r = await ctx.pg.query<{ n: number }>(`SELECT count(*)::int AS n FROM nodes WHERE mount_id = $1 AND state = 'INCONSISTENT' AND path = ANY($2)`, [mountId, paths]);
  return r.rows[0].n;
}

async function inconsistentFilesLike(ctx: Ctx, mountId: string, like: string): Promise<number> {
  const r = await ctx.pg.query<{ n: number }>({
    name: 'bench-count',
    text: `SELECT count(*)::int AS n FROM nodes WHERE mount_id = $1 AND state = 'INCONSISTENT' AND kind = 'file' AND path LIKE $2`,
    values: [mountId, like],
  });
  return r.rows[0].n;
}

/** No job waiting or running, and nothing delayed but the schedulers' next periodic scans. */
async function queueIdle(queue: Queue): Promise<boolean> {
  const c = await queue.getJobCounts('waiting', 'active', 'prioritized');
  if (c.waiting + c.active + c.prioritized > 0) return false;
  return (await queue.getDelayed()).every((j) => (j.data as { reason?: string }).reason === 'periodic');
}

/** Lets the aggregator's window close (max wait) and the queue drain. */
async function settle(ctx: Ctx, timeoutMs = 120_000): Promise<boolean> {
  await sleep(ctx.config.driftMaxWaitMs + 250);
  return (await waitFor(() => queueIdle(ctx.watcher!.queue), timeoutMs, 100)) !== null;
}

/** Time of the last change of any drift-job counter, once none moved for `quietMs` (null after `timeoutMs`). */
async function jobsQuiet(quietMs: number, timeoutMs: number): Promise<number | null> {
  const deadline = now() + timeoutMs;
  let last = -1;
  let lastChange = now();
  for (;;) {
    const total = Object.values(await counterSnapshot(driftJobs, jobsKey)).reduce((a, v) => a + v, 0);
    if (total !== last) {
      last = total;
      lastChange = now();
    }
    if (now() - lastChange >= quietMs) return lastChange;
    if (now() > deadline) return null;
    await sleep(20);
  }
}

type Labels = Partial<Record<string, string | number>>;
async function counterSnapshot(metric: { get(): Promise<{ values: Array<{ value: number; labels: Labels }> }> }, key: (l: Labels) => string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await metric.get()).values) out[key(v.labels)] = (out[key(v.labels)] ?? 0) + v.value;
  return out;
}
const jobsKey = (l: Labels) => `${l.kind}/${l.stage}`;
const eventKey = (l: Labels) => `${l.event}`;
function counterDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}
const sumWhere = (d: Record<string, number>, pred: (k: string) => boolean) => Object.entries(d).reduce((s, [k, v]) => (pred(k) ? s + v : s), 0);

async function latencyHistogram(mountId: string): Promise<{ sum: number; count: number }> {
  let sum = 0;
  let count = 0;
  for (const v of (await driftDetectionLatency.get()).values) {
    if (v.labels.mount !== mountId) continue;
    if (v.metricName?.endsWith('_sum')) sum += v.value;
    if (v.metricName?.endsWith('_count')) count += v.value;
  }
  return { sum, count };
}

/** Completed jobs still kept by BullMQ (driftJobsKept), with their timings. */
async function completedJobs(queue: Queue) {
  const jobs = await queue.getJobs(['completed'], 0, -1);
  return jobs.map((j) => {
    const data = j.data as { kind: string; mountId: string; paths?: string[]; dir?: string; firstEventAt: number; reason?: string };
    return {
      name: j.name,
      id: j.id,
      data,
      /** Aggregator window: first event → job added. */
      enqueueMs: data.firstEventAt ? j.timestamp - data.firstEventAt : null,
      waitMs: (j.processedOn ?? NaN) - j.timestamp,
      runMs: (j.finishedOn ?? NaN) - (j.processedOn ?? NaN),
      returnvalue: j.returnvalue as { detected?: number; deferred?: number } | undefined,
    };
  });
}

// ---- 1. single-change latency ---------------------------------------------------------------------

type ChangeKind = 'create' | 'modify' | 'delete';
interface Sample {
  kind: ChangeKind;
  path: string;
  /** fs call returned → node read back INCONSISTENT (null: not within DETECT_TIMEOUT_MS). */
  detectMs: number | null;
  /** fs call returned → raw chokidar event (0 when the event came first; null: none within 5 s). */
  rawMs: number | null;
  rawBeforeReturn: boolean;
  /** How long the fs call itself took (the raw event often lands inside it). */
  callMs: number;
  /** fs call started → raw chokidar event. */
  rawFromCallStartMs: number | null;
}

async function benchLatency(ctx: Ctx) {
  const kinds: ChangeKind[] = Array.from({ length: CHANGES }, (_, i) => (['create', 'modify', 'delete'] as const)[i % 3]);
  const pre = kinds.map((k, i) => (k === 'create' ? null : `latency/pre-${pad(i, 4)}.txt`));
  const prePaths = pre.filter((p): p is string => p !== null);

  // Files to modify or delete must be catalogued and not INCONSISTENT: create them behind Filestore's
  // back, let the watcher catalogue them (INCONSISTENT, "added"), then set them ACTIVE and resolve the
  // open drift events in SQL, as reconciliation would.
  if (prePaths.length) {
    log(`latency: cataloguing ${prePaths.length} files to modify or delete`);
    await writeFiles(prePaths.length, 100, (i) => path.join(ctx.root, prePaths[i]), () => 'original\n');
    const ok = await waitFor(async () => (await inconsistentAmong(ctx, MOUNT, prePaths)) === prePaths.length, 60_000, 50);
    if (!ok) throw new Error('the files created for the modify/delete changes were not detected within 60 s');
  }
  await settle(ctx);
  await ctx.pg.query(`UPDATE nodes SET state = 'ACTIVE', updated_at = now() WHERE mount_id = $1 AND state = 'INCONSISTENT'`, [MOUNT]);
  await ctx.pg.query(`UPDATE drift_events SET resolved_at = now() WHERE mount_id = $1 AND resolved_at IS NULL`, [MOUNT]);

  // The reference: chokidar 5 alone, same options as src/watcher/mount-watcher.ts, same directory.
  const dir = path.join(ctx.root, 'latency');
  const armed = new Set<string>();
  const rawSeen = new Map<string, number>();
  ctx.raw = watch(dir, { ignoreInitial: true, atomic: false, followSymlinks: false, persistent: true, alwaysStat: false });
  ctx.raw.on('all', (_event: string, p: string) => {
    if (armed.has(p) && !rawSeen.has(p)) rawSeen.set(p, now());
  });
  await new Promise<void>((resolve) => ctx.raw!.once('ready', () => resolve()));

  const spacingMs = ctx.config.driftMaxWaitMs + 250;
  const jobsBefore = new Set((await ctx.watcher!.queue.getJobs(['completed'], 0, -1)).map((j) => j.id));
  const hist0 = await latencyHistogram(MOUNT);
  const samples: Sample[] = [];
  let lastChange = -Infinity;
  log(`latency: ${CHANGES} changes, ${spacingMs} ms apart`);
  for (let i = 0; i < CHANGES; i++) {
    const kind = kinds[i];
    const rel = kind === 'create' ? `latency/new-${pad(i, 4)}.txt` : pre[i]!;
    const abs = path.join(ctx.root, rel);
    const gap = lastChange + spacingMs - now();
    if (gap > 0) await sleep(gap);
    armed.add(abs);
    const tCall = now();
    if (kind === 'create') await fsp.writeFile(abs, `created by hand, change ${i}\n`);
    else if (kind === 'modify') await fsp.writeFile(abs, `modified by hand, change ${i}\n`);
    else await fsp.rm(abs);
    const t0 = now();
    lastChange = t0;
    const seenAt = await waitFor(async () => ((await stateOf(ctx, MOUNT, rel)) === 'INCONSISTENT' ? now() : null), DETECT_TIMEOUT_MS, POLL_MS);
    const rawAt = rawSeen.get(abs) ?? (await waitFor(async () => rawSeen.get(abs) ?? null, 5000, 5));
    const s: Sample = {
      kind,
      path: rel,
      detectMs: seenAt === null ? null : seenAt - t0,
      rawMs: rawAt === null ? null : Math.max(0, rawAt - t0),
      rawBeforeReturn: rawAt !== null && rawAt < t0,
      callMs: t0 - tCall,
      rawFromCallStartMs: rawAt === null ? null : rawAt - tCall,
    };
    samples.push(s);
    log(`latency: ${String(i + 1).padStart(3)}/${CHANGES} ${kind.padEnd(6)} detected ${s.detectMs === null ? 'NOT' : `${s.detectMs.toFixed(0)} ms`}, raw chokidar ${s.rawMs === null ? 'none' : `${s.rawMs.toFixed(1)} ms`}`);
  }
  await ctx.raw.close();
  ctx.raw = null;
  await settle(ctx);

  const hist1 = await latencyHistogram(MOUNT);
  const relSet = new Set(samples.map((s) => s.path));
  const jobs = (await completedJobs(ctx.watcher!.queue)).filter((j) => !jobsBefore.has(j.id) && j.name === 'check' && j.data.paths?.some((p) => relSet.has(p)));
  const detected = samples.filter((s) => s.detectMs !== null);
  const detect = stats(detected.map((s) => s.detectMs!));
  const raw = stats(samples.filter((s) => s.rawMs !== null).map((s) => s.rawMs!));
  const byKind = Object.fromEntries(
    (['create', 'modify', 'delete'] as const).map((k) => [
      k,
      { detect: stats(detected.filter((s) => s.kind === k).map((s) => s.detectMs!)), raw: stats(samples.filter((s) => s.kind === k && s.rawMs !== null).map((s) => s.rawMs!)) },
    ]),
  ) as Record<ChangeKind, { detect: ReturnType<typeof stats>; raw: ReturnType<typeof stats> }>;
  const targetMs = ctx.config.driftDebounceMs + 1000;
  const missed = samples.length - detected.length;
  return {
    changes: CHANGES,
    spacingMs,
    pollMs: POLL_MS,
    detect,
    raw,
    overheadP50Ms: round((detect.p50 ?? NaN) - (raw.p50 ?? NaN)),
    overheadP95Ms: round((detect.p95 ?? NaN) - (raw.p95 ?? NaN)),
    byKind,
    missed,
    rawMissed: samples.filter((s) => s.rawMs === null).length,
    rawEventBeforeFsCallReturned: samples.filter((s) => s.rawBeforeReturn).length,
    /** fs call start → raw chokidar event, and the fs call's own duration (context for the clamped raw figures). */
    rawFromCallStart: stats(samples.filter((s) => s.rawFromCallStartMs !== null).map((s) => s.rawFromCallStartMs!)),
    fsCallMs: stats(samples.map((s) => s.callMs)),
    /** From the processor's own histogram: first chokidar event seen by the aggregator → recorded. */
    processorReportedMeanMs: round(hist1.count > hist0.count ? ((hist1.sum - hist0.sum) / (hist1.count - hist0.count)) * 1000 : NaN),
    /** Per BullMQ job of these changes: aggregator window (first event → added), queue wait, run. */
    jobs: {
      count: jobs.length,
      enqueueMs: stats(jobs.filter((j) => j.enqueueMs !== null).map((j) => j.enqueueMs!)),
      waitMs: stats(jobs.map((j) => j.waitMs)),
      runMs: stats(jobs.map((j) => j.runMs)),
      list: jobs
        .sort((a, b) => Number(a.id) - Number(b.id))
        .map((j) => ({ paths: j.data.paths?.length ?? 0, enqueueMs: j.enqueueMs, waitMs: j.waitMs, runMs: j.runMs, detected: j.returnvalue?.detected ?? null })),
    },
    targetMs,
    met: missed === 0 && detect.p95 !== null && detect.p95 <= targetMs,
    samples: samples.map((s) => ({ kind: s.kind, detectMs: round(s.detectMs ?? NaN), rawMs: round(s.rawMs ?? NaN, 2), rawFromCallStartMs: round(s.rawFromCallStartMs ?? NaN, 2), callMs: round(s.callMs, 2) })),
  };
}

// ---- 2. burst ---------------------------------------------------------------------------------------

async function benchBurst(ctx: Ctx) {
  const dir = path.join(ctx.root, 'burst');
  const queue = ctx.watcher!.queue;
  await settle(ctx);

  // Background traffic of the (possibly shared) server, for reference.
  const idle0 = await redisCommandCalls(ctx.redis);
  await sleep(2000);
  const idle1 = await redisCommandCalls(ctx.redis);
  const idlePerSecond = (idle1.total - idle0.total - 1) / 2;

  const jobs0 = await counterSnapshot(driftJobs, jobsKey);
  const events0 = await counterSnapshot(watcherEvents, eventKey);
  const completedBefore = new Set((await queue.getJobs(['completed'], 0, -1)).map((j) => j.id));
  const rssBefore = process.memoryUsage.rss();
  const redis0 = await redisCommandCalls(ctx.redis);
  const sent0 = ctx.sent.snapshot();
  const sampler = rssSampler(50);
  log(`burst: writing ${BURST_FILES} files into one directory, ${BURST_BATCH} at a time`);
  const t0 = now();
  await writeFiles(BURST_FILES, BURST_BATCH, (i) => path.join(dir, `f-${pad(i)}.txt`), (i) => `burst file ${i}\n`);
  const tWritten = now();
  log(`burst: written in ${((tWritten - t0) / 1000).toFixed(2)} s; waiting for every file to be INCONSISTENT`);
  let lastLog = now();
  const allAt = await waitFor(
    async () => {
      const n = await inconsistentFilesLike(ctx, MOUNT, 'burst/%');
      if (now() - lastLog > 2000) {
        lastLog = now();
        log(`burst: ${n}/${BURST_FILES} INCONSISTENT after ${((now() - t0) / 1000).toFixed(1)} s`);
      }
      return n >= BURST_FILES ? now() : null;
    },
    300_000,
    25,
  );
  const redisAtAll = await redisCommandCalls(ctx.redis);
  // Drained: the last drift job finished and nothing moved for longer than a deferred re-check's
  // delay — watched on the in-process counters, so that no probe of ours reaches Redis meanwhile.
  const quietMs = ctx.config.driftRecheckMs + ctx.config.driftMaxWaitMs + 500;
  const drainedAt = await jobsQuiet(quietMs, 300_000);
  const redis1 = await redisCommandCalls(ctx.redis);
  const sent1 = ctx.sent.snapshot();
  const tEnd = now();
  const peakRss = sampler.stop();
  const idleAfter = await queueIdle(queue);
  const detected = await inconsistentFilesLike(ctx, MOUNT, 'burst/%');
  const jobs = counterDelta(jobs0, await counterSnapshot(driftJobs, jobsKey));
  const events = counterDelta(events0, await counterSnapshot(watcherEvents, eventKey));
  const burstJobs = (await completedJobs(queue)).filter((j) => !completedBefore.has(j.id) && j.data.mountId === MOUNT);

  const allSeconds = allAt === null ? null : (allAt - t0) / 1000;
  const drainSeconds = drainedAt === null ? null : (drainedAt - t0) / 1000;
  const wholeServer = redis1.total - redis0.total - 2; // minus our own two INFO calls
  return {
    files: BURST_FILES,
    batch: BURST_BATCH,
    writeSeconds: round((tWritten - t0) / 1000, 3),
    allInconsistentSeconds: allSeconds === null ? null : round(allSeconds, 3),
    detectedFiles: detected,
    /** Last drift job finished (counters then quiet for quietMs). */
    queueDrainedSeconds: drainSeconds === null ? null : round(drainSeconds, 3),
    queueIdleAfterwards: idleAfter,
    /** Interval the Redis figures cover: burst start → drained + quietMs. */
    redisIntervalSeconds: round((tEnd - t0) / 1000, 2),
    jobsEnqueued: sumWhere(jobs, (k) => k.endsWith('/enqueued')),
    jobsEnqueuedByKind: { check: jobs['check/enqueued'] ?? 0, scan: jobs['scan/enqueued'] ?? 0 },
    jobsDeferred: sumWhere(jobs, (k) => k.endsWith('/deferred')),
    jobsProcessed: sumWhere(jobs, (k) => k.endsWith('/processed')),
    jobsFailed: sumWhere(jobs, (k) => k.endsWith('/failed')),
    jobCounters: jobs,
    watcherEvents: events,
    /** Kept completed jobs of the burst: kind, scope size, wait and run time. */
    jobsRun: burstJobs.map((j) => ({ kind: j.data.kind, scope: j.data.kind === 'scan' ? `scan '${j.data.dir}'` : `${j.data.paths?.length ?? 0} paths`, enqueueMs: j.enqueueMs, waitMs: j.waitMs, runMs: j.runMs, detected: j.returnvalue?.detected ?? null, deferred: j.returnvalue?.deferred ?? null })),
    /** Sent by this process (the watcher service), start of the burst → queue drained; exact, see countRedisCommands. */
    redisCommandsSentByWatcher: sent1.total - sent0.total,
    redisCommandsSentByCommand: commandDelta(sent0.byCommand, sent1.byCommand),
    /** INFO commandstats of the whole server (commands run inside Lua scripts included; other clients included). */
    redisCommandsUntilAllInconsistent: redisAtAll.total - redis0.total,
    redisCommandsWholeServer: wholeServer,
    /** The background rate measured just before × the interval: what other clients (and BullMQ's idle loop) alone would have issued. */
    redisIdleReference: Math.round(idlePerSecond * ((tEnd - t0) / 1000)),
    redisTopCommands: commandDelta(redis0.byCommand, redis1.byCommand),
    redisIdleCommandsPerSecond: round(idlePerSecond, 1),
    rssBeforeBytes: rssBefore,
    peakRssBytes: peakRss,
    targetSeconds: BURST_TARGET_S,
    met: allSeconds !== null && allSeconds <= BURST_TARGET_S,
  };
}

// ---- 3. big mount -----------------------------------------------------------------------------------

async function benchBigMount(ctx: Ctx) {
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

// ---- report -----------------------------------------------------------------------------------------

type Latency = Awaited<ReturnType<typeof benchLatency>>;
type Burst = Awaited<ReturnType<typeof benchBurst>>;
type Big = Awaited<ReturnType<typeof benchBigMount>>;

function report(config: Config, lat: Latency, burst: Burst, big: Big): string {
  const yes = (ok: boolean) => (ok ? 'yes' : 'NO');
  const ms = (n: number | null | undefined) => (n === null || n === undefined ? '-' : n.toFixed(0));
  const s = (n: number | null | undefined, d = 2) => (n === null || n === undefined ? '-' : n.toFixed(d));
  const M = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
  const k = lat.byKind;
  const rows: string[][] = [
    ['metric', 'value', 'reference / baseline', 'target', 'met?'],
    [`1. single change → INCONSISTENT, p50 ms (${lat.changes} changes)`, ms(lat.detect.p50), `raw chokidar ${s(lat.raw.p50, 1)} (${s(lat.rawFromCallStart.p50, 1)} from call start)`, '', ''],
    ['1. single change → INCONSISTENT, p95 ms', ms(lat.detect.p95), `raw chokidar ${s(lat.raw.p95, 1)} (${s(lat.rawFromCallStart.p95, 1)} from call start)`, `<= ${lat.targetMs}`, yes(lat.met)],
    ['   create / modify / delete p50 ms', `${ms(k.create.detect.p50)} / ${ms(k.modify.detect.p50)} / ${ms(k.delete.detect.p50)}`, `raw ${s(k.create.raw.p50, 1)} / ${s(k.modify.raw.p50, 1)} / ${s(k.delete.raw.p50, 1)}`, '', ''],
    ['   create / modify / delete p95 ms', `${ms(k.create.detect.p95)} / ${ms(k.modify.detect.p95)} / ${ms(k.delete.detect.p95)}`, `raw ${s(k.create.raw.p95, 1)} / ${s(k.modify.raw.p95, 1)} / ${s(k.delete.raw.p95, 1)}`, '', ''],
    ['   overhead over raw chokidar, p50 / p95 ms', `${ms(lat.overheadP50Ms)} / ${ms(lat.overheadP95Ms)}`, `debounce ${config.driftDebounceMs}`, '', ''],
    ['   per job: window / queue wait / run, p50 ms', `${ms(lat.jobs.enqueueMs.p50)} / ${ms(lat.jobs.waitMs.p50)} / ${ms(lat.jobs.runMs.p50)}`, `${lat.jobs.count} jobs`, '', ''],
    ['   missed (not detected within 15 s)', String(lat.missed), '', '0', yes(lat.missed === 0)],
    [`2. burst ${burst.files} files → all INCONSISTENT, s`, s(burst.allInconsistentSeconds), `writes took ${s(burst.writeSeconds)}`, `<= ${burst.targetSeconds}`, yes(burst.met)],
    ['   last drift job finished after, s', s(burst.queueDrainedSeconds), '', '', ''],
    ['   drift jobs enqueued (check / scan), deferred', `${burst.jobsEnqueued} (${burst.jobsEnqueuedByKind.check} / ${burst.jobsEnqueuedByKind.scan}), ${burst.jobsDeferred}`, `${burst.jobsProcessed} processed, ${burst.jobsFailed} failed`, '', ''],
    ['   Redis commands during the burst (whole server)', String(burst.redisCommandsWholeServer), `idle ${burst.redisIdleCommandsPerSecond}/s × ${s(burst.redisIntervalSeconds, 1)} s ≈ ${burst.redisIdleReference}`, '', ''],
    ['   Redis commands sent by the watcher (ioredis)', String(burst.redisCommandsSentByWatcher), '', '', ''],
    ['   peak RSS of this process', M(burst.peakRssBytes), `before ${M(burst.rssBeforeBytes)}`, '', ''],
    [`3. big mount ${big.files} files / ${big.directories} dirs: chokidar ready, s`, s(big.chokidarReadySeconds), big.rawChokidar ? `raw chokidar ${s(big.rawChokidar.readySeconds)}` : '', '', ''],
    ['   startup scan done (all INCONSISTENT), s', s(big.startupScanDoneSeconds), `queue drained ${s(big.queueDrainedSeconds)}`, '', ''],
    ['   steady RSS after GC (whole process)', M(big.rssSteadyBytes), `before watcher ${M(big.rssBaselineBytes)}`, `<= ${big.targetMB} MB`, yes(big.met)],
    ['   RSS added by the watcher service', M(big.rssDeltaBytes), big.rawChokidar ? `raw chokidar alone +${M(big.rawChokidar.rssDeltaBytes)}` : '', '', ''],
    ['   JS heap used after GC', M(big.heapUsedSteadyBytes), `before ${M(big.heapUsedBaselineBytes)}${big.rawChokidar ? `; raw chokidar ${M(big.rawChokidar.heapUsedBytes)}` : ''}`, '', ''],
    ['   peak RSS during startup', M(big.peakRssBytes), '', '', ''],
    ['   inotify watches held', String(big.inotifyWatches ?? '-'), `${big.directories + 1} dirs + ${big.files} files; max_user_watches ${big.maxUserWatches ?? '-'}`, '', ''],
  ];
  return table(rows);
}

// ---- main -------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const id = `${process.pid}_${randomBytes(4).toString('hex')}`;
  const env = { ...process.env };
  const ignored = Object.keys(env).filter((k) => k.startsWith('FILESTORE_DRIFT_') || k === 'FILESTORE_ENABLE_WATCHERS' || k === 'FILESTORE_LOCAL_MOUNTS');
  for (const key of ignored) delete env[key];
  if (ignored.length) log(`ignoring ${ignored.join(', ')} (the figures are for the default drift settings)`);
  log(`changes ${CHANGES}, burst ${BURST_FILES} files, big mount ${BIG_FILES} files`);

  const databaseUrl = testDatabaseUrl(`filestore_bench_drift_${id}`);
  let ctx: Ctx | null = null;
  let tmp: string | null = null;
  let dbCreated = false;
  let redis: Redis | null = null;
  let driftQueue: string | null = null;

  let tornDown = false;
  const teardown = async () => {
    if (tornDown) return;
    tornDown = true;
    const step = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        log(`teardown: ${what} failed: ${(err as Error).message}`);
      }
    };
    let pendingShutdown: Promise<unknown> | null = null;
    if (ctx?.raw) await step('close the raw chokidar watcher', () => ctx!.raw!.close());
    if (ctx?.watcher) {
      const w = ctx.watcher;
      pendingShutdown = w.shutdown();
      const done = await withTimeout(pendingShutdown.then(() => true), 120_000, false).catch(() => true);
      if (done) pendingShutdown = null;
      else log('teardown: the watcher service did not stop within 120 s (a long job?); dropping the database will end it');
    }
    if (ctx) {
      await step('close our Postgres connection', () => ctx!.pg.end());
      await step('close the catalog pool', () => ctx!.catalog.close());
    }
    if (dbCreated) await step('drop the database', () => dropDatabase(databaseUrl));
    if (pendingShutdown) await step('wait for the watcher service to stop', () => withTimeout(pendingShutdown!, 30_000, null));
    if (redis && driftQueue) {
      await step(`delete bull:${driftQueue}:*`, async () => log(`teardown: deleted ${await deleteKeys(redis!, `bull:${driftQueue}:*`)} Redis keys of the queue`));
    }
    if (redis) redis.disconnect();
    if (tmp) await step('remove the temp dir', () => fsp.rm(tmp!, { recursive: true, force: true }));
  };
  const stop = (signal: string) => {
    log(`${signal}: cleaning up`);
    void teardown().finally(() => process.exit(130));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));

  let out: string;
  try {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'filestore-bench-drift-'));
    log(`creating database ${new URL(databaseUrl).pathname.slice(1)}`);
    dbCreated = true;
    await runMigrations(databaseUrl);

    driftQueue = `fs-bench-drift-${id}`;
    const config = loadConfig(env, {
      databaseUrl,
      enableWatchers: true,
      driftQueue,
      localMounts: '*',
      watcherMetricsPort: 0,
      metricsPort: 0,
      stateDir: path.join(tmp, 'state'),
      logLevel: 'warn',
    });
    const sent = countRedisCommands(Redis, () => redis);
    redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    await redis.ping();

    const catalog = openCatalog(databaseUrl, { max: 2 });
    const pg = new PgClient({ connectionString: databaseUrl, application_name: 'filestore-bench-drift' });
    pg.on('error', () => undefined);
    await pg.connect();
    const root = path.join(tmp, 'mounts', MOUNT);
    const bigRoot = path.join(tmp, 'mounts', BIG_MOUNT);
    await fsp.mkdir(path.join(root, 'latency'), { recursive: true });
    await fsp.mkdir(path.join(root, 'burst'), { recursive: true });
    await fsp.mkdir(bigRoot, { recursive: true });
    ctx = {
      config,
      catalog,
      pg,
      redis,
      tmp,
      root: await fsp.realpath(root),
      bigRoot: await fsp.realpath(bigRoot),
      logger: createLogger(config.logLevel, 'watcher'),
      watcher: null,
      raw: null,
      sent,
    };
    await addLocalMount(catalog.db, { id: MOUNT, rootPath: ctx.root, watch: true });

    log(`starting the watcher service in-process (queue ${driftQueue}, debounce ${config.driftDebounceMs} ms, max wait ${config.driftMaxWaitMs} ms)`);
    ctx.watcher = await startWatcherService(config, { metrics: false, logger: ctx.logger });
    if (!ctx.watcher.watchedMounts().includes(MOUNT)) throw new Error(`the watcher does not watch mount ${MOUNT}`);
    if (!(await settle(ctx))) throw new Error('the startup scan did not finish within 120 s');

    const latency = await benchLatency(ctx);
    const burst = await benchBurst(ctx);
    const big = await benchBigMount(ctx);

    const json = {
      bench: 'drift',
      settings: {
        debounceMs: config.driftDebounceMs,
        maxWaitMs: config.driftMaxWaitMs,
        dirRescanThreshold: config.driftDirRescanThreshold,
        mountRescanThreshold: config.driftMountRescanThreshold,
        batchSize: config.driftBatchSize,
        concurrency: config.driftConcurrency,
        ignoredEnv: ignored,
      },
      latency,
      burst,
      bigMount: big,
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, memBytes: os.totalmem(), node: process.version, platform: `${os.platform()} ${os.release()}`, tmpdir: os.tmpdir() },
    };
    out = `${report(config, latency, burst, big)}\n\n${JSON.stringify(json)}\n`;
  } finally {
    log('cleaning up');
    await teardown();
  }
  if (process.env.BENCH_REPORT_FILE) await fsp.writeFile(process.env.BENCH_REPORT_FILE, out);
  else process.stdout.write(out);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`bench: failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
