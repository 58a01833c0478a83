/**
 * The small-writes part of bench:local's report: throughput and latency against the bare baseline,
 * and where the time goes per step — now, in the committed "before" run, and in the bare baseline —
 * with the round trips per workflow (workflow tasks, activities through a task queue, local
 * activities). Also reads and writes that "before" fixture (bench/baselines/local-small-before.json).
 */
import { table } from './bench-util';
import type { Breakdown } from './local-bench-breakdown';
import type { SmallFigures } from './local-bench-small';

const f = (n: number | undefined, digits = 2) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits));
const yes = (ok: boolean) => (ok ? 'yes' : 'NO');

/** Rows for the main table of bench:local (same columns: metric, value, baseline, ratio, target, met?). */
export function smallRows(small: SmallFigures): string[][] {
  const rows = [
    [`small writes ×${small.count} @${small.concurrency}: per second`, f(small.mutationsPerSecond, 1), f(small.bareWorkflowsPerSecond, 1), f(small.ratio, 3), `>= ${small.target}`, yes(small.ratio >= small.target)],
    ['small writes: p50 latency ms', f(small.p50Ms, 1), f(small.bareP50Ms, 1), f(small.p50Ratio, 3), '<= 1', yes(small.p50Ms <= small.bareP50Ms)],
    ['small writes: p99 latency ms', f(small.p99Ms, 1), f(small.bareP99Ms, 1), '', '', ''],
  ];
  const b = small.before?.small;
  if (b) {
    const at = `${small.before!.commit.slice(0, 8)}, ${small.before!.date.slice(0, 10)}`;
    rows.push([`  before (${at}) ×${b.count}: per second`, f(b.mutationsPerSecond, 1), f(b.bareWorkflowsPerSecond, 1), f(b.ratio, 3), '', '']);
    rows.push(['  before: p50 latency ms', f(b.p50Ms, 1), f(b.bareP50Ms, 1), f(b.p50Ms / b.bareP50Ms, 3), '', '']);
  }
  return rows;
}

const STEPS: Array<[string, string, string]> = [
  ['begin journal', 'beginJournal', 'bareBegin'],
  ['execute (mount queue)', 'executeMutation', 'bareExecute'],
  ['verify (mount queue)', 'verifyMutation', 'bareVerify'],
  ['commit', 'commitMutation', 'bareCommit'],
  ['finalize (mount queue)', 'finalizeMutation', 'bareFinalize'],
  ['publish change event', 'publishChange', 'barePublish'],
];

/** Where the time goes: per step before / now / bare, then the round trips per workflow. */
export function smallBreakdownTable(small: SmallFigures): string {
  const now = small.breakdown.mutation;
  const bare = small.breakdown.bare;
  const before: Breakdown | undefined = small.before?.small.breakdown.mutation;
  const step = (bd: Breakdown | undefined, name: string) => {
    const s = bd?.activities[name];
    return s ? [s.via ?? 'queue', f(s.queueMs), f(s.runMs)] : ['-', '-', '-'];
  };
  const rows: string[][] = [['step (mean per workflow)', 'before via', 'queue ms', 'run ms', 'now via', 'queue ms', 'run ms', 'bare via', 'queue ms', 'run ms']];
  for (const [label, mName, bName] of STEPS) rows.push([label, ...step(before, mName), ...step(now, mName), ...step(bare, bName)]);
  const trio = (bd: Breakdown | undefined, pick: (b: Breakdown) => [string, string, string]) => (bd ? pick(bd) : ['-', '-', '-']);
  const wft = (b: Breakdown): [string, string, string] => [f(b.workflowTasks.perWorkflow), f(b.workflowTasks.queueMs), f(b.workflowTasks.runMs)];
  rows.push(['workflow tasks: count, Σ queue, Σ run', ...trio(before, wft), ...trio(now, wft), ...trio(bare, wft)]);
  const acts = (b: Breakdown): [string, string, string] => [f(b.perWorkflow?.queueActivities), f(b.perWorkflow?.localActivities), ''];
  rows.push(['activities: via queue, local', ...trio(before, acts), ...trio(now, acts), ...trio(bare, acts)]);
  const trips = (b: Breakdown): [string, string, string] => [f(b.workflowTasks.perWorkflow + (b.perWorkflow?.queueActivities ?? NaN)), '', ''];
  rows.push(['round trips (workflow tasks + queued activities)', ...trio(before, trips), ...trio(now, trips), ...trio(bare, trips)]);
  const server = (b: Breakdown): [string, string, string] => [f(b.serverMs), '', ''];
  rows.push(['server ms, first → last event', ...trio(before, server), ...trio(now, server), ...trio(bare, server)]);
  const events = (b: Breakdown): [string, string, string] => [f(b.historyEvents, 0), '', ''];
  rows.push(['history events', ...trio(before, events), ...trio(now, events), ...trio(bare, events)]);
  rows.push(['client latency ms (mean, start → result)', f(small.before?.small.meanMs), '', '', f(small.meanMs), '', '', f(small.bareMeanMs), '', '']);
  const sampled = `${now.sampled} + ${bare.sampled} sampled histories now${before ? `, before: ${small.before!.commit.slice(0, 8)} at ${small.before!.date}` : ', no before fixture'}`;
  return `small writes: where the time goes (${sampled})\n${table(rows)}`;
}
