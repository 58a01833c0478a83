/**
 * Phase 1 of bench/drift-bench.ts, single-change latency: BENCH_DRIFT_CHANGES changes made one at
 * a time behind Filestore's back, each timed from the fs call returning to its node read back
 * INCONSISTENT, next to a raw chokidar listener on the same directory (see the entry's header).
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { watch } from 'chokidar';
import { MOUNT, pad, type Ctx } from './drift-bench-context';
import { intEnv, log, now, round, sleep, stats, waitFor, writeFiles } from './drift-bench-helpers';
import { completedJobs, inconsistentAmong, latencyHistogram, settle, stateOf } from './drift-bench-probes';

export const CHANGES = intEnv('BENCH_DRIFT_CHANGES', 40);
/** Postgres polling period while timing one change. */
const POLL_MS = 10;
const DETECT_TIMEOUT_MS = 15_000;

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

export async function benchLatency(ctx: Ctx) {
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

export type LatencyFigures = Awaited<ReturnType<typeof benchLatency>>;
