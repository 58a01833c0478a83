/**
 * The worker process: the workflow worker and general activities on the base task queue, plus one
 * activity worker per local mount served by this host (`<queue>-mount-<id>`, the worker-specific
 * task queue pattern: only a host that has the disk — proven by the mount's identity marker at
 * its root — polls it). The workflow worker also runs the catalog-only steps (begin, commit,
 * publish) as local activities, from the same wrapped activities and interceptors
 * (workflows/workflow-common.ts); mount workers run no workflows, so never a local activity.
 * Activities on the workflow's own queue (S3 mounts' steps) are dispatched eagerly with the
 * workflow task's reply where the server allows it (`system.enableActivityEagerExecution`; the
 * SDK asks by default). Mounts are re-read from the catalog
 * (on NOTIFY and every FILESTORE_MOUNT_REFRESH_MS) so mounts added while running are picked up.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel, type WorkerOptions } from '@temporalio/worker';
import { Redis } from 'ioredis';
import { openCatalog, type Catalog } from '../db/client';
import type { MountRow } from './catalog/types';
import { createActivities, withTypedFailures, type ActivityDeps } from '../activities';
import { timerHeartbeats } from '../activities/heartbeat-interceptor';
import { FencePool } from '../activities/tx-fence';
import { followMounts } from './catalog/mount-follower';
import { checkMountMarker } from './catalog/mount-marker';
import { listMounts } from './catalog/mounts';
import { mountTaskQueue, uploadS3Of, type Config } from './config';
import { assertUploadAreaApart, uploadStoreOf } from './operations/upload-store';
import { createS3Client } from './executors/s3/s3-client';
import { UploadObjects } from './executors/s3/s3-upload-objects';
import { faultInjectionHooks } from './executors/fault-injection';
import { ExecutorRegistry } from './executor-registry';
import { s3OptionsOf } from './executors/index';
import type { Logger } from './logger';
import { startMetricsServer, type MetricsServer } from './metrics-server';
import { runJanitorPass } from './janitor';
import { connectTemporal, ensureSearchAttributes } from './temporal';

export interface StartWorkerOptions {
  /** A pre-built workflow bundle (tests and benchmarks bundle once); default: bundle `workflows/` at start. */
  workflowBundle?: { codePath: string };
  /** Builds the activities to register from the standard dependencies (tests inject failures this way). */
  activities?: (deps: ActivityDeps) => ReturnType<typeof createActivities>;
  /** Serve /metrics. @defaultValue true */
  metrics?: boolean;
  logger?: Logger;
  /** Extra Worker options (concurrency tuning in benchmarks). */
  tuning?: Pick<WorkerOptions, 'maxConcurrentActivityTaskExecutions' | 'maxConcurrentWorkflowTaskExecutions' | 'maxConcurrentLocalActivityExecutions' | 'maxCachedWorkflows'>;
}

export interface RunningWorker {
  /** Local mounts this process serves right now. */
  servedMounts(): string[];
  /** Re-reads the mounts now (instead of waiting for the next refresh). */
  refreshMounts(): Promise<void>;
  /** Runs a janitor pass now (after any in flight); resolves with how many entries it ended. */
  runJanitor(): Promise<number>;
  metricsUrl: string | null;
  /** Resolves when every worker stopped; rejects if one crashed. */
  done: Promise<void>;
  shutdown(): Promise<void>;
}

function workflowSource(opts: StartWorkerOptions): Pick<WorkerOptions, 'workflowsPath' | 'workflowBundle'> {
  if (opts.workflowBundle) return { workflowBundle: opts.workflowBundle };
  const compiled = path.join(__dirname, '..', 'workflows', 'index.js');
  return { workflowsPath: fs.existsSync(compiled) ? compiled : path.join(__dirname, '..', 'workflows', 'index.ts') };
}

/**
 * Whether this host serves `row`, and if not, why (null: not a mount for this host at all, nothing
 * to say). Host-bound: only where the root carries the mount's identity marker — an existing
 * directory proves nothing (an empty mount point, another host with the same path).
 */
async function servesMount(config: Config, row: MountRow): Promise<{ serve: true } | { serve: false; warning: string | null }> {
  if (row.kind !== 'local' || !row.rootPath) return { serve: false, warning: null };
  const named = config.localMounts !== '*';
  if (named && !config.localMounts.split(',').map((s) => s.trim()).includes(row.id)) return { serve: false, warning: null };
  const check = await checkMountMarker(row);
  if (check.ok) return { serve: true };
  // With FILESTORE_LOCAL_MOUNTS=* a root that does not exist here is simply another host's mount.
  if (check.rootMissing && !named) return { serve: false, warning: null };
  return {
    serve: false,
    warning: `not serving local mount ${row.id}: ${check.reason}. If this host's disk is that mount, run \`filestore mount mark ${row.id}\` here`,
  };
}

const TEMPORAL_LOG_LEVEL: Record<Config['logLevel'], LogLevel> = {
  trace: 'TRACE',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARN',
  error: 'ERROR',
  fatal: 'ERROR',
  silent: 'ERROR',
};

/** The SDK's runtime logger follows LOG_LEVEL; it can be installed once per process, so later calls keep the first. */
function installRuntimeLogger(level: Config['logLevel']): void {
  try {
    Runtime.install({ logger: new DefaultLogger(TEMPORAL_LOG_LEVEL[level]) });
  } catch {
    // already installed by an earlier worker in this process
  }
}

/**
 * The Redis client of the notify activities. While Redis is down a PUBLISH fails within seconds
 * (one reconnect attempt, command timeout) instead of queueing: the activity fails and Temporal
 * retries it with backoff. ioredis keeps reconnecting in the background.
 */
export function openRedis(url: string, log?: Logger): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, commandTimeout: 5_000, connectTimeout: 5_000 });
  // Without a listener ioredis prints every failed reconnect; log the outage once, and its end.
  let down = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    log?.warn({ err: err.message }, 'redis unavailable: change events wait until it is back');
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    log?.info('redis available again');
  });
  return redis;
}

export async function startWorker(config: Config, opts: StartWorkerOptions = {}): Promise<RunningWorker> {
  const log = opts.logger;
  installRuntimeLogger(config.logLevel);
  const connection = await NativeConnection.connect({ address: config.temporalAddress });
  // The client stays open for the janitor (it asks Temporal whether a PENDING entry's workflow still runs).
  const { connection: clientConnection, client: temporalClient } = await connectTemporal(config);
  await ensureSearchAttributes(clientConnection, config.temporalNamespace);

  const catalog: Catalog = openCatalog(config.databaseUrl);
  const redis = openRedis(config.redisUrl, log);
  const fences = new FencePool(config.databaseUrl, { idleTimeoutMs: config.fenceIdleTimeoutMs });
  const executors = new ExecutorRegistry(catalog.db, faultInjectionHooks(config.faultPauseAt), s3OptionsOf(config));
  const uploadS3 = uploadS3Of(config);
  const uploadObjects = uploadS3 ? new UploadObjects(createS3Client({ bucket: uploadS3.bucket, prefix: uploadS3.prefix }, s3OptionsOf(config).client), uploadS3.bucket, uploadS3.prefix) : null;
  const deps: ActivityDeps = { db: catalog.db, executors, redis, config, fences, uploadObjects };
  // Every activity that declares a heartbeat timeout heartbeats on a timer while it runs.
  const interceptors = { activity: [timerHeartbeats] };
  // Wrapped here, so injected activities (tests) report typed failures exactly like the standard ones,
  // and local activities exactly like queued ones (the same functions and interceptors run both).
  const activities = withTypedFailures((opts.activities ?? createActivities)(deps), { maxUnknownErrorAttempts: config.maxUnknownErrorAttempts });

  const general = await Worker.create({
    connection,
    namespace: config.temporalNamespace,
    taskQueue: config.taskQueue,
    ...workflowSource(opts),
    activities,
    interceptors,
    ...opts.tuning,
  });
  const runs: Promise<void>[] = [general.run()];
  const mountWorkers = new Map<string, Worker>();
  // Mounts already warned about: once per mount until it is served again, not on every refresh.
  const warned = new Set<string>();
  let stopping = false;

  async function refreshMounts(): Promise<void> {
    if (stopping) return;
    const rows: MountRow[] = [];
    for (const row of await listMounts(catalog.db)) {
      const decision = await servesMount(config, row);
      if (decision.serve) {
        rows.push(row);
        warned.delete(row.id);
      } else if (decision.warning && !warned.has(row.id)) {
        warned.add(row.id);
        log?.warn({ mount: row.id }, decision.warning);
      }
    }
    const wanted = new Set(rows.map((r) => r.id));
    for (const row of rows) {
      if (mountWorkers.has(row.id) || stopping) continue;
      const worker = await Worker.create({
        connection,
        namespace: config.temporalNamespace,
        taskQueue: mountTaskQueue(config, row.id),
        activities,
        interceptors,
        ...opts.tuning,
      });
      mountWorkers.set(row.id, worker);
      runs.push(worker.run());
      log?.info({ mount: row.id, taskQueue: mountTaskQueue(config, row.id) }, 'serving local mount');
    }
    for (const [id, worker] of mountWorkers) {
      if (wanted.has(id)) continue;
      mountWorkers.delete(id);
      worker.shutdown();
      log?.info({ mount: id }, 'stopped serving mount');
    }
  }

  const follower = await followMounts(config.databaseUrl, config.mountRefreshMs, refreshMounts, log);

  // Passes never overlap: each waits for the one before.
  const uploadArea = uploadStoreOf(config);
  // Its sweep must never reach a mount's files (see assertUploadAreaApart).
  assertUploadAreaApart(uploadArea, await listMounts(catalog.db));
  let janitorRun: Promise<number> = Promise.resolve(0);
  const runJanitor = (): Promise<number> => {
    janitorRun = janitorRun
      .catch(() => 0)
      .then(() =>
        stopping
          ? 0
          : runJanitorPass({
              db: catalog.db,
              executors: deps.executors,
              fences,
              temporal: temporalClient,
              serves: (id) => mountWorkers.has(id),
              graceMs: config.janitorGraceMs,
              s3UploadGraceMs: config.s3UploadGraceMs,
              uploads: { area: uploadArea, graceMs: config.uploadGraceMs },
              log,
            }),
      );
    return janitorRun;
  };
  const janitorTimer = setInterval(() => void runJanitor().catch((err: Error) => log?.warn({ err: err.message }, 'janitor pass failed')), config.janitorIntervalMs);
  janitorTimer.unref();

  let metrics: MetricsServer | null = null;
  if (opts.metrics ?? true) metrics = await startMetricsServer(config.metricsPort, '0.0.0.0', () => !stopping);

  const done = Promise.all(runs).then(() => undefined);

  return {
    servedMounts: () => [...mountWorkers.keys()],
    refreshMounts: () => follower.refresh(),
    runJanitor,
    metricsUrl: metrics?.url.replace('0.0.0.0', '127.0.0.1') ?? null,
    done,
    async shutdown() {
      if (stopping) return;
      stopping = true;
      await follower.stop();
      for (const w of [general, ...mountWorkers.values()]) {
        if (w.getState() === 'RUNNING') w.shutdown();
      }
      await Promise.allSettled(runs);
      await metrics?.close();
      // Activities have stopped: nothing is waiting for a reply any more.
      await redis.quit().catch(() => redis.disconnect());
      clearInterval(janitorTimer);
      await janitorRun.catch(() => undefined);
      await fences.close();
      await catalog.close();
      await clientConnection.close();
      await connection.close();
    },
  };
}
