/**
 * The drift queue (BullMQ on Redis through ioredis): the producer side the watcher adds jobs
 * with, and the processor (a BullMQ Worker) that runs them. Completed and failed jobs are trimmed
 * (`removeOnComplete` / `removeOnFail`) so Redis cannot grow without bound.
 */
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { driftJobs } from '../metrics';
import { runDriftJob, type DriftCheckResult, type DriftProcessorDeps } from './drift-processor';
import { driftJobId, type DriftJobSpec } from './event-aggregator';
import { scanS3Mount, usesS3Scanner } from './s3-scanner';

export type DriftQueueConfig = Pick<
  Config,
  'redisUrl' | 'driftQueue' | 'driftJobsKept' | 'driftConcurrency' | 'driftRecheckMs' | 'driftScanIntervalMs' | 'driftBatchSize' | 'driftMountRescanThreshold'
>;

/**
 * Producer connection: fail fast while Redis is away (no offline queue), so the watcher keeps the
 * changes itself (bounded, see EventAggregator) instead of ioredis buffering them without limit.
 */
export function producerConnection(redisUrl: string): Redis {
  return new Redis(redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: (n) => Math.min(n * 200, 5000) });
}

/** Worker connection: BullMQ requires maxRetriesPerRequest null for blocking commands. */
export function workerConnection(redisUrl: string): Redis {
  return new Redis(redisUrl, { maxRetriesPerRequest: null, retryStrategy: (n) => Math.min(n * 200, 5000) });
}

export function createDriftQueue(config: DriftQueueConfig, connection: Redis): Queue {
  const queue = new Queue(config.driftQueue, {
    connection,
    defaultJobOptions: {
      removeOnComplete: { count: config.driftJobsKept },
      removeOnFail: { count: config.driftJobsKept },
      attempts: 5,
      backoff: { type: 'exponential', delay: 1000 },
    },
  });
  queue.on('error', () => undefined);
  return queue;
}

function jobOf(spec: DriftJobSpec, delay?: number) {
  return {
    name: spec.kind,
    data: spec,
    // One waiting job per id; a job added while its twin is active runs once more after it.
    opts: { deduplication: { id: driftJobId(spec), keepLastIfActive: true }, ...(delay ? { delay } : {}) },
  };
}

/** Adds jobs in ONE round trip (addBulk). Throws while Redis is unreachable: the caller keeps the specs. */
export async function enqueueDriftJobs(queue: Queue, specs: DriftJobSpec[]): Promise<void> {
  if (specs.length === 0) return;
  await queue.addBulk(specs.map((s) => jobOf(s)));
  for (const s of specs) driftJobs.inc({ kind: s.kind, stage: 'enqueued' });
}

/**
 * Runs one drift job: a whole-mount scan of an S3 mount streams its listing against the catalog
 * (s3-scanner.ts); everything else is the processor's (drift-processor.ts).
 */
export async function processDriftJob(
  config: Pick<DriftQueueConfig, 'driftBatchSize' | 'driftMountRescanThreshold'>,
  deps: DriftProcessorDeps,
  spec: DriftJobSpec,
  jobId: string | undefined,
): Promise<DriftCheckResult> {
  if (spec.kind === 'scan' && spec.dir === '') {
    const executor = await deps.executors.get(spec.mountId).catch((err: { code?: string }) => {
      if (err?.code === 'UNKNOWN_MOUNT') return null;
      throw err;
    });
    if (!executor) return { detected: 0, deferred: [] };
    if (usesS3Scanner(executor, spec)) {
      return scanS3Mount(deps, executor, spec, jobId, { batchSize: config.driftBatchSize, mountRescanThreshold: config.driftMountRescanThreshold });
    }
  }
  return runDriftJob(deps, spec, jobId);
}

/**
 * Registers (or moves) the periodic full scan of a mount as a BullMQ job scheduler. The first run
 * is one interval away: an `every` scheduler would otherwise run at once, doubling the startup scan.
 */
export async function schedulePeriodicScan(queue: Queue, mountId: string, everyMs: number): Promise<void> {
  await queue.upsertJobScheduler(`periodic-scan:${mountId}`, { every: everyMs, startDate: Date.now() + everyMs }, {
    name: 'scan',
    data: { kind: 'scan', mountId, dir: '', firstEventAt: 0, reason: 'periodic' },
  });
}

export async function unschedulePeriodicScan(queue: Queue, mountId: string): Promise<void> {
  await queue.removeJobScheduler(`periodic-scan:${mountId}`);
}

/** The processor: a BullMQ Worker running drift jobs; deferred paths come back as a delayed check. */
export function startDriftProcessor(
  config: DriftQueueConfig,
  deps: DriftProcessorDeps,
  queue: Queue,
  log?: Logger,
): { worker: Worker; close(): Promise<void> } {
  const connection = workerConnection(config.redisUrl);
  connection.on('error', () => undefined);
  const worker = new Worker(
    config.driftQueue,
    async (job: Job<DriftJobSpec & { reason?: string }>) => {
      // Scheduler-made scans carry firstEventAt 0: their "change" is as old as the scan itself.
      const spec = job.data.firstEventAt ? job.data : { ...job.data, firstEventAt: Date.now() };
      const result = await processDriftJob(config, deps, spec, job.id);
      if (result.deferred.length > 0) {
        const paths = result.deferred.sort();
        const rechecks: DriftJobSpec[] = [];
        for (let i = 0; i < paths.length; i += config.driftBatchSize) {
          rechecks.push({ kind: 'check', mountId: spec.mountId, paths: paths.slice(i, i + config.driftBatchSize), firstEventAt: spec.firstEventAt });
        }
        driftJobs.inc({ kind: 'check', stage: 'deferred' }, rechecks.length);
        await queue.addBulk(rechecks.map((r) => jobOf(r, config.driftRecheckMs)));
      }
      driftJobs.inc({ kind: spec.kind, stage: 'processed' });
      return { detected: result.detected, deferred: result.deferred.length };
    },
    { connection, concurrency: config.driftConcurrency, autorun: true },
  );
  worker.on('failed', (job, err) => {
    driftJobs.inc({ kind: job?.data.kind ?? 'unknown', stage: 'failed' });
    log?.warn({ jobId: job?.id, kind: job?.data.kind, mount: job?.data.mountId, err: err.message.slice(0, 300) }, 'drift job failed');
  });
  worker.on('error', (err) => log?.warn({ err: err.message }, 'drift processor error'));
  return {
    worker,
    async close() {
      await worker.close();
      // BullMQ leaves a connection it was given open.
      connection.disconnect();
    },
  };
}
