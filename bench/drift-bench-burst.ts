/**
 * Phase 2 of bench/drift-bench.ts, burst: BENCH_BURST_FILES files written into one directory; time
 * until every one is INCONSISTENT and until the last drift job finished, drift jobs, Redis commands
 * (whole server and sent by this process) and peak RSS (see the entry's header).
 */
import path from 'node:path';
import { driftJobs, watcherEvents } from '../src/metrics';
import { MOUNT, pad, type Ctx } from './drift-bench-context';
import { commandDelta, intEnv, log, now, redisCommandCalls, round, rssSampler, sleep, waitFor, writeFiles } from './drift-bench-helpers';
import { completedJobs, counterDelta, counterSnapshot, eventKey, inconsistentFilesLike, jobsKey, jobsQuiet, queueIdle, settle, sumWhere } from './drift-bench-probes';

export const BURST_FILES = intEnv('BENCH_BURST_FILES', 10_000);
const BURST_BATCH = 500;
const BURST_TARGET_S = 10;

export async function benchBurst(ctx: Ctx) {
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

export type BurstFigures = Awaited<ReturnType<typeof benchBurst>>;
