/**
 * Drift-detection benchmark (`npm run bench:drift`): how fast and how cheaply `filestore watcher`
 * notices changes made behind Filestore's back, with the DEFAULT drift settings (debounce 500 ms,
 * max wait 2000 ms, …). No Temporal (no mutations): a fresh database `filestore_bench_drift_<random>`,
 * temp mounts under os.tmpdir() registered with `watch: true`, private BullMQ queues.
 *
 *   1. Single-change latency (watcher service in this process, FILESTORE_WATCH_BACKEND as set,
 *      auto by default): BENCH_DRIFT_CHANGES changes, one at a time, spaced more than max wait
 *      apart, cycling create (a new path each time) / modify / delete (of files catalogued
 *      beforehand: created, detected, then set ACTIVE with their drift events resolved in SQL, as
 *      reconciliation would). Latency = from the fs call returning to the node read back
 *      INCONSISTENT (Postgres polled every 10 ms). Reference: a raw chokidar listener (same options)
 *      on the same directory, fs call → its event. Target: p95 ≤ debounce + 1 s.
 *   2. Burst (same process): BENCH_BURST_FILES files written into one directory (500 writeFile in
 *      flight). Time from the first write until every one is INCONSISTENT (target ≤ 10 s) and until
 *      the last drift job finished (watched on the in-process counters, so no probe of ours touches
 *      Redis), drift jobs enqueued (+ deferred re-checks), Redis commands over the burst — INFO
 *      commandstats of the WHOLE server before/after (shared with whoever else uses it; the idle
 *      rate measured just before is the reference) and, exactly, the commands this process sent
 *      through ioredis — and this process's peak RSS (sampled every 50 ms).
 *   3. Big mount (drift-bench-big-mount.ts): BENCH_BIG_MOUNT_FILES files generated on the fly; for
 *      each backend (BENCH_DRIFT_BACKENDS, chokidar,parcel) a separate watcher process (so its RSS
 *      is the watcher's own) started on it twice — nothing catalogued (the startup scan records
 *      every file) and the catalog seeded as Filestore would have left it (a restart: the scan
 *      compares every file and records nothing). Watcher start → done (target ≤ 10 s), the scan
 *      job's own run time, the process's RSS after GC and its peak (target ≤ 300 MB).
 *   4. A million files (BENCH_DRIFT_MILLION_FILES), parcel, catalogued: the same figures (target
 *      ≤ 1 GB), generation and removal times; the tree goes on /dev/shm when it is a tmpfs (a
 *      million inodes on a busy journalled disk took 5 minutes to create). BENCH_DRIFT_MILLION=0
 *      skips it.
 *
 * Environment:
 *   BENCH_DRIFT_CHANGES        single changes timed (create/modify/delete in turn)   @defaultValue 40
 *   BENCH_BURST_FILES          files in the burst                                     @defaultValue 10000
 *   BENCH_BIG_MOUNT_FILES      files in the big mount                                 @defaultValue 100000
 *   BENCH_DRIFT_BACKENDS       backends of phase 3                                    @defaultValue chokidar,parcel
 *   BENCH_DRIFT_MILLION        0 skips phase 4                                        @defaultValue 1
 *   BENCH_DRIFT_MILLION_FILES  files in phase 4                                       @defaultValue 1000000
 *   BENCH_DRIFT_MILLION_NEW    1 also runs phase 4 with nothing catalogued            @defaultValue 0
 *   BENCH_DRIFT_MILLION_DIR    where phase 4's tree goes       @defaultValue /dev/shm if a tmpfs with room, else the temp dir
 *   plus DATABASE_URL / REDIS_URL. FILESTORE_DRIFT_*, FILESTORE_ENABLE_WATCHERS and
 *   FILESTORE_LOCAL_MOUNTS are ignored (the figures are for the defaults; the queues are private).
 *
 * Output: a table, then ONE JSON line with every figure as the last line of stdout (or of the file
 * BENCH_REPORT_FILE, as scripts/bench.sh sets). Progress goes to stderr. A missed target is
 * reported (`met: false`), never an exit code. Everything acquired (watchers and watcher
 * processes, database, the queues' Redis keys `bull:<queue>*`, generated trees, temp dirs) is
 * released at the end, also after an error or a signal.
 */
import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import { emitReport } from './bench-util';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { Client as PgClient } from 'pg';
import { dropDatabase, openCatalog, runMigrations } from '../db/client';
import { addLocalMount } from '../src/catalog/mounts';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { startWatcherService } from '../src/watcher/watcher-service';
import { testDatabaseUrl } from '../test/helpers/stack';
import { BACKENDS, benchBigMount, BIG_FILES, MILLION_FILES, MILLION_ON } from './drift-bench-big-mount';
import { benchBurst, BURST_FILES } from './drift-bench-burst';
import { BIG_MOUNT, MOUNT, type Ctx } from './drift-bench-context';
import { countRedisCommands, deleteKeys, log, withTimeout } from './drift-bench-helpers';
import { benchLatency, CHANGES } from './drift-bench-latency';
import { settle } from './drift-bench-probes';
import { renderReport } from './drift-bench-report';
import { removeTree } from './drift-bench-tree';
import { killWatcherChildren } from './drift-bench-watcher';

// Setup, the three phases in turn, and teardown. The phases live in drift-bench-latency.ts,
// drift-bench-burst.ts and drift-bench-big-mount.ts (probes they share in drift-bench-probes.ts),
// the table and the JSON line in drift-bench-report.ts.
async function main(): Promise<void> {
  const id = `${process.pid}_${randomBytes(4).toString('hex')}`;
  const env = { ...process.env };
  const ignored = Object.keys(env).filter((k) => k.startsWith('FILESTORE_DRIFT_') || k === 'FILESTORE_ENABLE_WATCHERS' || k === 'FILESTORE_LOCAL_MOUNTS');
  for (const key of ignored) delete env[key];
  if (ignored.length) log(`ignoring ${ignored.join(', ')} (the figures are for the default drift settings)`);
  log(`changes ${CHANGES}, burst ${BURST_FILES} files, big mount ${BIG_FILES} files (${BACKENDS.join(', ')}), ${MILLION_ON ? `${MILLION_FILES} files (parcel)` : 'million skipped'}`);

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
    const killed = killWatcherChildren();
    if (killed) log(`teardown: killed ${killed} watcher process(es) still running`);
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
      // The queue of this process and those of the watcher processes (`<queue>-<run>`).
      await step(`delete bull:${driftQueue}*`, async () => log(`teardown: deleted ${await deleteKeys(redis!, `bull:${driftQueue}*`)} Redis keys of the queues`));
    }
    if (redis) redis.disconnect();
    // rm -rf: a generated tree left by an interrupted run may hold a million files.
    for (const dir of ctx?.cleanup ?? []) await step(`remove ${dir}`, () => removeTree(dir));
    if (tmp) await step('remove the temp dir', () => removeTree(tmp!));
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
      env,
      cleanup: [],
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

    out = renderReport(config, ignored, latency, burst, big);
  } finally {
    log('cleaning up');
    await teardown();
  }
  await emitReport(out);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`bench: failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
