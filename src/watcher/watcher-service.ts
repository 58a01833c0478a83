/**
 * `filestore watcher`: detects changes made behind Filestore's back on this host's local mounts
 * and on watched S3 mounts.
 *
 *  chokidar or @parcel/watcher (per local mount with `watch` on, when FILESTORE_ENABLE_WATCHERS=true;
 *  FILESTORE_WATCH_BACKEND picks, see watch-backend.ts)
 *    → EventAggregator (debounce, burst → rescan, bounded)
 *    → BullMQ `filestore-drift` (addBulk, deduplication ids)
 *    → drift processor (stat + compare with the catalog → INCONSISTENT + drift_events)
 *
 * Missed events are caught by a scan of every watched mount at start (unless its parcel watcher
 * replayed a valid snapshot: it then reported what changed while nobody watched), a periodic full scan
 * (BullMQ job scheduler), a rescan after a watcher error, and a rescan after Redis comes back
 * (its queue may have been lost with it). An S3 mount has no events: those scans, every
 * FILESTORE_S3_SCAN_INTERVAL_MS, are how its drift is found (s3-scanner.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { openCatalog, type Catalog } from '../../db/client';
import type { MountRow } from '../catalog/types';
import { followMounts, type MountFollower } from '../catalog/mount-follower';
import { checkMountMarker } from '../catalog/mount-marker';
import { listMounts } from '../catalog/mounts';
import { countLiveNodesUpTo } from '../catalog/node-count';
import type { Config } from '../config';
import { ExecutorRegistry } from '../executor-registry';
import { s3OptionsOf } from '../executors/index';
import type { Logger } from '../logger';
import { driftRescans, setDriftQueueSource } from '../metrics';
import { startMetricsServer, type MetricsServer } from '../metrics-server';
import {
  createDriftQueue,
  enqueueDriftJobs,
  producerConnection,
  schedulePeriodicScan,
  startDriftProcessor,
  unschedulePeriodicScan,
} from './drift-queue';
import { EventAggregator } from './event-aggregator';
import { watchMount, type MountWatcher, type WatchBackend } from './mount-watcher';
import { chooseWatchBackend, countEntriesUpTo } from './watch-backend';

export interface WatcherServiceOptions {
  logger?: Logger;
  /** Serve /metrics on FILESTORE_WATCHER_METRICS_PORT. @defaultValue true */
  metrics?: boolean;
}

export interface RunningWatcher {
  /** Mounts being watched (or scanned only, when watchers are off, and S3 mounts). */
  watchedMounts(): string[];
  /** The backend watching a mount's files, or null (scanned only). */
  watcherBackend(mountId: string): WatchBackend | null;
  /** Whether the mount's watcher replayed a trusted snapshot at start (parcel only). */
  watcherCaughtUp(mountId: string): boolean;
  /** Queues a scan of the whole mount now (what the periodic scan does), without waiting for it to run. */
  scanNow(mountId: string): Promise<void>;
  refreshMounts(): Promise<void>;
  /** Pushes buffered events to the queue now. */
  flush(): Promise<void>;
  queue: Queue;
  metricsUrl: string | null;
  shutdown(): Promise<void>;
}

async function wantsWatching(config: Config, row: MountRow): Promise<boolean> {
  if (!row.options.watch) return false;
  // Not host-bound: any watcher may list a bucket; the scheduler in Redis keeps it to one scan per interval.
  if (row.kind === 's3') return true;
  if (row.kind !== 'local' || !row.rootPath) return false;
  if (config.localMounts !== '*' && !config.localMounts.split(',').map((s) => s.trim()).includes(row.id)) return false;
  // As for the worker: only where the root carries this mount's identity marker. An empty mount
  // point (a disk that failed to mount) would otherwise report every catalogued file as removed.
  return (await checkMountMarker(row)).ok;
}

export async function startWatcherService(config: Config, opts: WatcherServiceOptions = {}): Promise<RunningWatcher> {
  const log = opts.logger;
  const catalog: Catalog = openCatalog(config.databaseUrl, { max: config.driftConcurrency + 2 });
  const executors = new ExecutorRegistry(catalog.db, {}, s3OptionsOf(config));
  const producer: Redis = producerConnection(config.redisUrl);
  producer.on('error', () => undefined);
  const queue = createDriftQueue(config, producer);
  const processor = startDriftProcessor(config, { db: catalog.db, executors, log }, queue, log);
  setDriftQueueSource(() => queue.getJobCounts('waiting', 'delayed', 'active', 'failed'));

  const aggregator = new EventAggregator(
    {
      debounceMs: config.driftDebounceMs,
      maxWaitMs: config.driftMaxWaitMs,
      dirRescanThreshold: config.driftDirRescanThreshold,
      mountRescanThreshold: config.driftMountRescanThreshold,
      batchSize: config.driftBatchSize,
    },
    async (_mountId, jobs) => {
      // Throws while Redis is away; the aggregator keeps the jobs (bounded) and retries.
      await enqueueDriftJobs(queue, jobs);
    },
  );

  /** Per watched mount: its file watcher (local mounts with watchers on) and its periodic scan interval. */
  const watched = new Map<string, { watcher: MountWatcher | null; scanEveryMs: number }>();
  const scheduled = new Set<string>();
  let stopping = false;
  // Redis restarted (or failed over): jobs and schedulers it held may be gone, so rescan.
  let redisWasDown = false;

  function rescan(mountId: string, reason: string): void {
    driftRescans.inc({ mount: mountId, reason });
    aggregator.requestScan(mountId, '');
  }

  /** The file watcher of a local mount, on the backend FILESTORE_WATCH_BACKEND picks for it. */
  async function startFileWatcher(row: MountRow): Promise<MountWatcher> {
    const rootReal = fs.realpathSync(row.rootPath!);
    const choice = await chooseWatchBackend(config.watchBackend, config.watchAutoThreshold, {
      catalogued: (limit) => countLiveNodesUpTo(catalog.db, row.id, limit),
      onDisk: (limit) => countEntriesUpTo(rootReal, limit),
    });
    const opts = {
      mountId: row.id,
      rootReal,
      onEvent: (p: string, event: string) => aggregator.add(row.id, p, event),
      onScan: (dir: string) => (dir === '' ? rescan(row.id, 'error') : aggregator.requestScan(row.id, dir)),
      onError: () => rescan(row.id, 'error'),
      log,
      snapshot: {
        dir: config.watchSnapshotDir ?? path.join(config.stateDir, 'watch-snapshots'),
        instanceId: row.instanceId,
        everyMs: config.watchSnapshotIntervalMs,
        // A snapshot counts only once what it covers is in the queue (see parcel-watcher.ts).
        handedOver: async () => {
          if (redisWasDown) return false;
          await aggregator.flush(row.id);
          return !aggregator.retrying(row.id);
        },
      },
    };
    log?.info({ mount: row.id, backend: choice.backend, reason: choice.reason }, 'watch backend chosen');
    if (choice.backend === 'parcel') {
      try {
        return await watchMount(opts, 'parcel');
      } catch (err) {
        // The native module could not load (no prebuilt binary for this platform): watch anyway.
        log?.error({ mount: row.id, err: (err as Error).message }, '@parcel/watcher is unavailable; watching the mount with chokidar');
      }
    }
    return watchMount(opts, 'chokidar');
  }

  async function refreshMounts(): Promise<void> {
    if (stopping) return;
    const rows: MountRow[] = [];
    for (const r of await listMounts(catalog.db)) if (await wantsWatching(config, r)) rows.push(r);
    const wanted = new Set(rows.map((r) => r.id));
    const added: string[] = [];
    for (const row of rows) {
      if (watched.has(row.id) || stopping) continue;
      // An S3 mount's scanner is its periodic scan: listing is the only way to see its drift.
      const entry = { watcher: null as MountWatcher | null, scanEveryMs: row.kind === 's3' ? config.s3ScanIntervalMs : config.driftScanIntervalMs };
      watched.set(row.id, entry);
      if (config.enableWatchers && row.kind === 'local') entry.watcher = await startFileWatcher(row);
      // Changes made while nobody watched: compare the whole mount once, now — even when a parcel
      // snapshot was replayed (caughtUp). The replay reports what changed before the watcher went
      // down quickly, but a change landing in a directory parcel's start-up crawl had passed and
      // not yet subscribed would be seen only by the periodic scan, and the snapshot compares
      // mtimes only; the scan, started after the subscription, closes both gaps.
      rescan(row.id, 'startup');
      added.push(row.id);
      log?.info(
        { mount: row.id, kind: row.kind, backend: entry.watcher?.backend ?? null, caughtUp: entry.watcher?.caughtUp ?? false, scanEveryMs: entry.scanEveryMs },
        'watching mount',
      );
    }
    for (const [id, entry] of watched) {
      if (wanted.has(id)) continue;
      watched.delete(id);
      await entry.watcher?.close();
      if (scheduled.delete(id)) await unschedulePeriodicScan(queue, id).catch(() => undefined);
      log?.info({ mount: id }, 'stopped watching mount');
    }
    // Schedulers live in Redis: (re)register any that are missing, e.g. after Redis was down.
    for (const [id, entry] of watched) {
      if (scheduled.has(id)) continue;
      try {
        await schedulePeriodicScan(queue, id, entry.scanEveryMs);
        scheduled.add(id);
      } catch (err) {
        log?.warn({ mount: id, err: (err as Error).message }, 'could not schedule the periodic scan; will retry');
      }
    }
    // Send new mounts' startup scans at once; every other window keeps its debounce.
    for (const id of added) await aggregator.flush(id).catch(() => undefined);
  }

  let follower: MountFollower | null = null;
  producer.on('close', () => {
    if (!stopping && !redisWasDown) log?.warn('Redis connection lost; buffering changes until it is back');
    redisWasDown = true;
  });
  producer.on('ready', () => {
    if (!redisWasDown || stopping) return;
    redisWasDown = false;
    log?.info('Redis is back; rescanning watched mounts');
    scheduled.clear();
    for (const id of watched.keys()) rescan(id, 'redis-reconnect');
    void follower?.refresh();
  });

  const following = await followMounts(config.databaseUrl, config.mountRefreshMs, refreshMounts, log);
  follower = following;

  let metrics: MetricsServer | null = null;
  if (opts.metrics ?? true) metrics = await startMetricsServer(config.watcherMetricsPort, '0.0.0.0', () => !stopping);

  return {
    watchedMounts: () => [...watched.keys()],
    watcherBackend: (mountId: string) => watched.get(mountId)?.watcher?.backend ?? null,
    watcherCaughtUp: (mountId: string) => watched.get(mountId)?.watcher?.caughtUp ?? false,
    async scanNow(mountId: string) {
      rescan(mountId, 'requested');
      await aggregator.flush(mountId);
    },
    refreshMounts: () => following.refresh(),
    flush: () => aggregator.flush(),
    queue,
    metricsUrl: metrics?.url.replace('0.0.0.0', '127.0.0.1') ?? null,
    async shutdown() {
      if (stopping) return;
      stopping = true;
      await following.stop();
      // Before the aggregator closes: a parcel watcher hands its last changes over, then commits its snapshot.
      await Promise.all([...watched.values()].map((entry) => entry.watcher?.close()));
      await aggregator.close().catch(() => undefined);
      await processor.close().catch(() => undefined);
      await queue.close().catch(() => undefined);
      producer.disconnect();
      setDriftQueueSource(null);
      await metrics?.close();
      await catalog.close();
    },
  };
}
