/**
 * The large-write part of bench:local's report: the put against its floors measured in the same
 * run (best and median of each), the ratio, and the peak RSS during the put (and, with
 * BENCH_HUGE_BYTES, during a put of that size).
 */
import os from 'node:os';
import type { LargeFigures, Timing } from './local-bench-large';
import { MiB } from './local-bench-util';

const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
const s = (t: Timing) => t.best.toFixed(2);
const med = (t: Timing) => `(median ${t.median.toFixed(2)})`;

/** Rows for the report's main table: metric, value, baseline, ratio, target, met? */
export function largeRows(large: LargeFigures): string[][] {
  const size = mib(large.bytes);
  const rows = [
    [`large write ${size}: put s (best of ${large.rounds})`, s(large.workflow), large.floorSeconds.toFixed(2), large.ratio.toFixed(3), `<= ${large.target}`, large.met ? 'yes' : 'NO'],
    ['large write: median s, ratio of medians', large.workflow.median.toFixed(2), '', large.medianRatio.toFixed(3), '', ''],
    ['large write: ratio within each round, best (median)', '', '', `${large.roundRatio.best.toFixed(3)} (${large.roundRatio.median.toFixed(3)})`, '', ''],
    ['large floor: read + sha256 s (stream / pooled)', `${s(large.readHashStream)} / ${s(large.readHashPooled)}`, med(large.readHash), '', '', ''],
    ['large floor: cp + sync s', s(large.cpSync), med(large.cpSync), '', '', ''],
    ['large yardstick: dd bs=8M + sync s; put ÷ it, best (median of rounds)', s(large.ddSync), med(large.ddSync), `${large.ratioToDd.toFixed(3)} (${large.roundRatioToDd.median.toFixed(3)})`, '', ''],
    ['large yardstick: both at once s; put ÷ it, best (median of rounds)', s(large.bothAtOnce), med(large.bothAtOnce), `${large.ratioToBoth.toFixed(3)} (${large.roundRatioToBoth.median.toFixed(3)})`, '', ''],
    ['large write: MiB/s (floor)', large.workflowMiBps.toFixed(1), large.floorMiBps.toFixed(1), '', '', ''],
    ['large write: peak RSS, +growth (before)', `${mib(large.rss.peakRssBytes)} +${mib(large.rss.growthBytes)}`, `(${mib(large.rss.rssBeforeBytes)})`, '', '', ''],
    ['large: 1-min load average at start, end', `${large.loadAverage1m.start}, ${large.loadAverage1m.end}`, `(${os.cpus().length} cpus)`, '', '', ''],
    ['large write: executeMutation run s', ((large.breakdown.activities.executeMutation?.runMs ?? NaN) / 1000).toFixed(2), '', '', '', ''],
  ];
  if (large.huge) {
    const h = large.huge;
    rows.push([`huge write ${mib(h.bytes)}: s, MiB/s`, h.seconds.toFixed(2), h.MiBps.toFixed(1), '', '', '']);
    rows.push(['huge write: peak RSS, +growth (before)', `${mib(h.peakRssBytes)} +${mib(h.growthBytes)}`, `(${mib(h.rssBeforeBytes)})`, '', '', '']);
  }
  return rows;
}
