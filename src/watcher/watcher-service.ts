/**
 * `filestore watcher`: detects changes made behind Filestore's back on this host's local mounts.
 *
 *  chokidar (per mount with `watch` on, when FILESTORE_ENABLE_WATCHERS=true)
 *    → EventAggregator (debounce, burst → rescan, bounded)
 *    → BullMQ `filestore-drift` (addBulk, deduplication ids)
 *    → drift processor (stat + compare with the catalog → INCONSISTENT + drift_events)
 *
 * Missed events are caught by a scan of every watched mount at start, a periodic full scan
 * (BullMQ job scheduler), a rescan after a watcher error, and a rescan after Redis comes back
 * (its queue may have been lost with it).
 */
import fs from 'node:fs';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { openCatalog, type Catalog } from '../../db/client';
import type { MountRow } from '../../db/schema';
import { followMounts, type MountFollower } from '../catalog/mount-follower';
import { checkMountMarker } from '../catalog/mount-marker';
import { listMounts } from '../catalog/mounts';
import type { Config } from '../config';
import { ExecutorRegistry } from '../executors/registry';
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
import { watchMount, type MountWatcher } from './mount-watcher';

export interface WatcherServiceOptions {
  logger?: Logger;
  /** Serve /metrics on FILESTORE_WATCHER_METRICS_PORT. @defaultValue true */
  metrics?: boolean;
}

export interface RunningWatcher {
  /** Mounts being watched (or scanned only, when chokidar is off). */
  watchedMounts(): string[];
  refreshMounts(): Promise<void>;
  /** Pushes buffered events to the queue now. */
  flush(): Promise<void>;
  queue: Queue;
  metricsUrl: string | null;
  shutdown(): Promise<void>;
}

async function wantsWatching(config: Config, row: MountRow): Promise<boolean> {
  if (row.kind !== 'local' || !row.rootPath || !row.options.watch) return false;
  if (config.localMounts !== '*' && !config.localMounts.split(',').map((s) => s.trim()).includes(row.id)) return false;
  // As for the worker: only where the root carries this mount's identity marker. An empty mount
  // point (a disk that failed to mount) would otherwise report every catalogued file as removed.
  return (await checkMountMarker(row)).ok;
}

export async function startWatcherService(config: Config, opts: WatcherServiceOptions = {}): Promise<RunningWatcher> {
  const log = opts.logger;
  const catalog: Catalog = openCatalog(config.databaseUrl, { max: config.driftConcurrency + 2 });
  const executors = new ExecutorRegistry(catalog.db);
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

  const watched = new Map<string, { watcher: MountWatcher | null }>();
  const scheduled = new Set<string>();
  let stopping = false;

  function rescan(mountId: string, reason: string): void {
    driftRescans.inc({ mount: mountId, reason });
    aggregator.requestScan(mountId, '');
  }

  async function refreshMounts(): Promise<void> {
    if (stopping) return;
    const rows: MountRow[] = [];
    for (const r of await listMounts(catalog.db)) if (await wantsWatching(config, r)) rows.push(r);
    const wanted = new Set(rows.map((r) => r.id));
    const added: string[] = [];
    for (const row of rows) {
      if (watched.has(row.id) || stopping) continue;
      const entry: { watcher: MountWatcher | null } = { watcher: null };
      watched.set(row.id, entry);
      if (config.enableWatchers) {
        entry.watcher = await watchMount({
          mountId: row.id,
          rootReal: fs.realpathSync(row.rootPath!),
          onEvent: (p, event) => aggregator.add(row.id, p, event),
          onError: () => rescan(row.id, 'error'),
          log,
        });
      }
      // Changes made while nobody watched: compare the whole mount once, now.
      rescan(row.id, 'startup');
      added.push(row.id);
      log?.info({ mount: row.id, chokidar: config.enableWatchers }, 'watching mount');
    }
    for (const [id, entry] of watched) {
      if (wanted.has(id)) continue;
      watched.delete(id);
      await entry.watcher?.close();
      if (scheduled.delete(id)) await unschedulePeriodicScan(queue, id).catch(() => undefined);
      log?.info({ mount: id }, 'stopped watching mount');
    }
    // Schedulers live in Redis: (re)register any that are missing, e.g. after Redis was down.
    for (const id of watched.keys()) {
      if (scheduled.has(id)) continue;
      try {
        await schedulePeriodicScan(queue, id, config.driftScanIntervalMs);
        scheduled.add(id);
      } catch (err) {
        log?.warn({ mount: id, err: (err as Error).message }, 'could not schedule the periodic scan; will retry');
      }
    }
    // Send new mounts' startup scans at once; every other window keeps its debounce.
    for (const id of added) await aggregator.flush(id).catch(() => undefined);
  }

  let follower: MountFollower | null = null;
  // Redis restarted (or failed over): jobs and schedulers it held may be gone, so rescan.
  let redisWasDown = false;
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
    refreshMounts: () => following.refresh(),
    flush: () => aggregator.flush(),
    queue,
    metricsUrl: metrics?.url.replace('0.0.0.0', '127.0.0.1') ?? null,
    async shutdown() {
      if (stopping) return;
      stopping = true;
      await following.stop();
      for (const entry of watched.values()) await entry.watcher?.close();
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
