/**
 * The report of bench/drift-bench.ts: the human table, then ONE JSON line with every figure (the
 * last line of the output).
 */
import os from 'node:os';
import type { Config } from '../src/config';
import type { BigMountFigures, RunFigures } from './drift-bench-big-mount';
import type { BurstFigures } from './drift-bench-burst';
import { table } from './drift-bench-helpers';
import type { LatencyFigures } from './drift-bench-latency';

/** The whole output: the table, a blank line, the JSON line (`ignored`: the FILESTORE_* variables left out). */
export function renderReport(config: Config, ignored: string[], latency: LatencyFigures, burst: BurstFigures, big: BigMountFigures): string {
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
  return `${report(config, latency, burst, big)}\n\n${JSON.stringify(json)}\n`;
}

function report(config: Config, lat: LatencyFigures, burst: BurstFigures, big: BigMountFigures): string {
  const yes = (ok: boolean | null) => (ok === null ? '' : ok ? 'yes' : 'NO');
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
    ...bigRows(big),
  ];
  return table(rows);
}

/** Phase 3's rows: per backend and scenario, the startup scan and the watcher process's memory. */
function bigRows(big: BigMountFigures): string[][] {
  const yes = (ok: boolean | null) => (ok === null ? '' : ok ? 'yes' : 'NO');
  const s = (n: number | null | undefined, d = 2) => (n === null || n === undefined ? '-' : n.toFixed(d));
  const M = (b: number | null | undefined) => (b === null || b === undefined || !Number.isFinite(b) ? '-' : `${(b / 1024 / 1024).toFixed(1)} MiB`);
  const n = (x: number) => x.toLocaleString('en-US');
  const run = (r: RunFigures, index: string): string[][] => {
    const used = r.backendUsed && r.backendUsed !== r.backend ? ` (ran ${r.backendUsed})` : '';
    const done = r.scenario === 'new' ? `all ${n(r.files)} detected` : 'startup scan done (0 drift expected)';
    const job = r.scanJob ? `scan job ${s(r.scanJob.runMs / 1000)} s, ${r.scanJob.detected ?? '-'} detected` : 'no scan job seen';
    return [
      [`${index} ${n(r.files)} files, ${r.backend}${used}, ${r.scenario}: watcher start → ${done}, s`, s(r.startupDoneSeconds), `ready ${s(r.watcherReadySeconds)} s; ${job}`, r.scanTargetSeconds === null ? 'no target' : `<= ${r.scanTargetSeconds}`, yes(r.scanMet)],
      ['   watcher process RSS after GC / peak', `${M(r.steadyRssBytes)} / ${M(r.peakRssBytes)}`, `heap ${M(r.heapUsedBytes)}; inotify watches ${r.inotifyWatches ?? '-'}`, `<= ${r.rssTargetMB} MB`, yes(r.rssMet)],
    ];
  };
  const rows: string[][] = [
    [`3. big mount: ${n(big.files)} files in ${n(big.directories)} dirs generated / removed, s`, `${s(big.generateSeconds, 1)} / ${s(big.removeSeconds, 1)}`, `on ${big.fileSystem}`, '', ''],
    ['   floors: sorted walk alone / nodes written in one INSERT, s', `${s(big.walkSeconds)} / ${big.catalogSeedSeconds.map((x) => s(x, 1)).join(', ')}`, `disk / database side of a scan; + events: ${s(big.eventsInsertSeconds, 1)} s`, '', ''],
  ];
  for (const r of big.runs) rows.push(...run(r, '3.'));
  if (big.million) {
    const m = big.million;
    rows.push([`4. million: ${n(m.files)} files in ${n(m.directories)} dirs generated / removed, s`, `${s(m.generateSeconds, 1)} / ${s(m.removeSeconds, 1)}`, `on ${m.fileSystem} (${m.dir})`, '', '']);
    rows.push(['   floors: sorted walk alone / nodes written in one INSERT, s', `${s(m.walkSeconds)} / ${s(m.catalogSeedSeconds, 1)}`, 'disk side / database side of a scan', '', '']);
    for (const r of m.runs) rows.push(...run(r, '4.'));
  } else {
    rows.push(['4. million files', 'skipped', 'BENCH_DRIFT_MILLION=0', '', '']);
  }
  return rows;
}
