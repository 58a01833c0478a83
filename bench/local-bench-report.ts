/**
 * The report of bench/local-bench.ts: the human tables, then ONE JSON line with every figure (the
 * last line of the output).
 */
import os from 'node:os';
import type { LargeFigures } from './local-bench-large';
import type { SmallFigures } from './local-bench-small';
import { MiB } from './local-bench-util';
import { table } from './bench-util';

/** The whole output: the tables, a blank line, the JSON line. */
export function renderReport(large: LargeFigures, small: SmallFigures): string {
  const json = {
    bench: 'local',
    large,
    small,
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, memBytes: os.totalmem(), node: process.version, platform: `${os.platform()} ${os.release()}`, tmpdir: os.tmpdir() },
  };
  return `${report(large, small)}\n\n${JSON.stringify(json)}\n`;
}


function report(large: LargeFigures, small: SmallFigures): string {
  const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
  const yes = (ok: boolean) => (ok ? 'yes' : 'NO');
  const main = table([
    ['metric', 'value', 'baseline', 'ratio', 'target', 'met?'],
    [`large write ${mib(large.bytes)}: seconds (best of ${large.rounds})`, large.workflowSeconds.toFixed(2), large.baselineSeconds.toFixed(2), large.ratio.toFixed(3), `<= ${large.target}`, yes(large.met)],
    ['large write: MiB/s', large.workflowMiBps.toFixed(1), large.baselineMiBps.toFixed(1), '', '', ''],
    ['large: read + sha256 only (floor), s', large.hashOnlySeconds.toFixed(2), large.baselineSeconds.toFixed(2), large.hashOnlyRatio.toFixed(3), '', ''],
    ['large write: peak RSS (before)', `${mib(large.peakRssBytes)}`, `(${mib(large.rssBeforeBytes)})`, '', '', ''],
    ['large write: executeMutation run s', ((large.breakdown.activities.executeMutation?.runMs ?? NaN) / 1000).toFixed(2), '', '', '', ''],
    [`small writes ×${small.count} @${small.concurrency}: per second`, small.mutationsPerSecond.toFixed(1), small.bareWorkflowsPerSecond.toFixed(1), small.ratio.toFixed(3), `>= ${small.target}`, yes(small.met)],
    ['small writes: p50 latency ms', small.p50Ms.toFixed(1), small.bareP50Ms.toFixed(1), '', '', ''],
    ['small writes: p99 latency ms', small.p99Ms.toFixed(1), small.bareP99Ms.toFixed(1), '', '', ''],
  ]);
  const bd = small.breakdown;
  const stepRows: string[][] = [['step (mean per workflow)', 'mutation queue ms', 'mutation run ms', 'bare queue ms', 'bare run ms']];
  const pairs: Array<[string, string, string]> = [
    ['begin (base queue)', 'beginJournal', 'bareBegin'],
    ['execute (mount queue)', 'executeMutation', 'bareExecute'],
    ['verify (mount queue)', 'verifyMutation', 'bareVerify'],
    ['commit (base queue)', 'commitMutation', 'bareCommit'],
    ['finalize (mount queue)', 'finalizeMutation', 'bareFinalize'],
    ['publish change (base queue)', 'publishChange', 'barePublish'],
  ];
  const f = (n: number | undefined) => (n === undefined ? '-' : n.toFixed(2));
  for (const [label, mName, bName] of pairs) {
    stepRows.push([label, f(bd.mutation.activities[mName]?.queueMs), f(bd.mutation.activities[mName]?.runMs), f(bd.bare.activities[bName]?.queueMs), f(bd.bare.activities[bName]?.runMs)]);
  }
  stepRows.push([
    `workflow tasks (${bd.mutation.workflowTasks.perWorkflow} / ${bd.bare.workflowTasks.perWorkflow} per wf)`,
    f(bd.mutation.workflowTasks.queueMs),
    f(bd.mutation.workflowTasks.runMs),
    f(bd.bare.workflowTasks.queueMs),
    f(bd.bare.workflowTasks.runMs),
  ]);
  stepRows.push(['server time, first → last event', f(bd.mutation.serverMs), '', f(bd.bare.serverMs), '']);
  stepRows.push(['client latency (mean, start → result)', f(small.meanMs), '', f(small.bareMeanMs), '']);
  return `${main}\n\nsmall writes: where the time goes (${bd.mutation.sampled} + ${bd.bare.sampled} sampled histories)\n${table(stepRows)}`;
}
