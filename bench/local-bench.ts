/**
 * Local benchmark (`npm run bench:local`): what a durable mutation costs on one machine, each
 * figure next to a baseline measured in the same run on the same disk and Temporal server.
 *
 *   1. Large write: `put` of a BENCH_LARGE_BYTES random file from a host path, end to end
 *      (start → result) vs `cp src dst && sync`. Target: workflow/baseline ≤ 1.15. Also the peak
 *      RSS of this process (the worker runs in it) during the write, to show constant memory.
 *   2. Small writes: BENCH_SMALL_COUNT writes of 4 KiB inline content to distinct paths, at
 *      BENCH_CONCURRENCY in flight, vs the same number of bare workflows (six no-op activities
 *      on two task queues, see bench/bare-workflows.ts). Target: mutations/s ÷ bare/s ≥ 0.6.
 *      Also where the time goes: per-step queue wait and run time from a sample of histories.
 *
 * Environment:
 *   BENCH_LARGE_BYTES   size of the large file        @defaultValue 1073741824 (1 GiB)
 *   BENCH_SMALL_COUNT   number of small writes         @defaultValue 1000
 *   BENCH_CONCURRENCY   small writes in flight         @defaultValue 32
 *   BENCH_LARGE_ROUNDS  rounds of the large write (best kept) @defaultValue 3
 *   plus the usual DATABASE_URL / TEMPORAL_CLI_PATH (the Temporal dev server is started here).
 *
 * Output: a table on stdout, then ONE JSON line with every figure as the last line of stdout.
 * Progress goes to stderr. A missed target is reported (`met: false`), never an exit code.
 * With BENCH_REPORT_FILE set (scripts/bench.sh does) the report goes to that file instead, so the
 * dev server's banner, which it prints on the stdout it inherits, stays out of it.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { createBenchStack, log, type BenchStack } from './bench-stack';
import type { BareInput } from './bare-workflows';

const MiB = 1024 * 1024;

function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

const LARGE_BYTES = intEnv('BENCH_LARGE_BYTES', 1024 * MiB);
const SMALL_COUNT = intEnv('BENCH_SMALL_COUNT', 1000);
const CONCURRENCY = intEnv('BENCH_CONCURRENCY', 32);
const SMALL_BYTES = 4096;
const WARMUP = 50;
const LARGE_ROUNDS = intEnv('BENCH_LARGE_ROUNDS', 3);
const LARGE_TARGET = 1.15;
const SMALL_TARGET = 0.6;
/** Histories read per kind for the time breakdown. */
const BREAKDOWN_SAMPLE = 100;

const now = () => performance.now();
const round = (n: number, digits = 3) => Number(n.toFixed(digits));

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code ?? signal}`))));
  });
}

/** Flushes what earlier steps left dirty, so it is not charged to the next timed step. */
const syncDisk = () => run('sync', []);

/** Random bytes, written 8 MiB at a time (never the whole file in memory). */
async function writeRandomFile(file: string, bytes: number): Promise<void> {
  const chunk = Buffer.allocUnsafe(8 * MiB);
  const fh = await fs.open(file, 'w');
  try {
    for (let done = 0; done < bytes; ) {
      const n = Math.min(chunk.length, bytes - done);
      randomFillSync(chunk, 0, n);
      await fh.write(chunk, 0, n);
      done += n;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Peak RSS of this process, sampled every 50 ms while `fn` runs. */
async function withPeakRss<T>(fn: () => Promise<T>): Promise<{ value: T; peakRss: number }> {
  let peakRss = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 50);
  try {
    const value = await fn();
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    return { value, peakRss };
  } finally {
    clearInterval(timer);
  }
}

// ---- 1. large write ----------------------------------------------------------------------------

interface LargeFigures {
  bytes: number;
  rounds: number;
  workflowSeconds: number;
  baselineSeconds: number;
  workflowMiBps: number;
  baselineMiBps: number;
  ratio: number;
  target: number;
  met: boolean;
  allWorkflowSeconds: number[];
  allBaselineSeconds: number[];
  /** Reading and sha256-hashing the source alone (best of the rounds): the floor of any write that hashes in the same pass. */
  hashOnlySeconds: number;
  hashOnlyRatio: number;
  rssBeforeBytes: number;
  peakRssBytes: number;
  /** Where the best workflow run's time went (see Breakdown). */
  breakdown: Breakdown;
}

async function benchLarge(stack: BenchStack): Promise<LargeFigures> {
  const { client, mountId, tmp } = stack;
  const src = path.join(tmp, 'large-src.bin');
  const baselineDir = path.join(tmp, 'baseline');
  await fs.mkdir(baselineDir, { recursive: true });
  const dst = path.join(baselineDir, 'large-dst.bin');

  log(`large: writing a ${LARGE_BYTES}-byte random source file`);
  await writeRandomFile(src, LARGE_BYTES);

  const baseline = async () => {
    await syncDisk();
    const t0 = now();
    await run('sh', ['-c', 'cp "$1" "$2" && sync', '_', src, dst]);
    const seconds = (now() - t0) / 1000;
    await fs.rm(dst, { force: true });
    return seconds;
  };
  const rssBefore = process.memoryUsage().rss;
  let peakRss = rssBefore;
  const workflow = async () => {
    await syncDisk();
    const { value: seconds, peakRss: peak } = await withPeakRss(async () => {
      const t0 = now();
      const handle = await client.put(mountId, 'big.bin', { file: src });
      const result = await handle.result();
      const s = (now() - t0) / 1000;
      wfIds.push(handle.workflowId);
      if (result.bytesWritten !== LARGE_BYTES) throw new Error(`put wrote ${result.bytesWritten} bytes, expected ${LARGE_BYTES}`);
      return s;
    });
    peakRss = Math.max(peakRss, peak);
    // Untimed: a delete mutation, so the next round is again a fresh create and the catalog stays true.
    await (await client.remove(mountId, 'big.bin')).result();
    return seconds;
  };

  // Fairness: the source was just written, so both sides read it from the page cache (it fits in
  // RAM) and both must put every destination byte on disk (cp ends with sync; the executor fsyncs).
  // Dirty pages of earlier steps are flushed (untimed) before each timed step. The two sides run
  // in ABBA order over LARGE_ROUNDS rounds and each keeps its best time, so neither is favoured
  // by going first (cold caches, disk write-back state).
  const hashOnly = async () => {
    const t0 = now();
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(src, { highWaterMark: 4 * MiB })) hash.update(chunk as Buffer);
    hash.digest();
    return (now() - t0) / 1000;
  };
  const base: number[] = [];
  const wf: number[] = [];
  const hashes: number[] = [];
  const wfIds: string[] = [];
  for (let r = 0; r < LARGE_ROUNDS; r++) {
    const order = r % 2 === 0 ? (['baseline', 'workflow'] as const) : (['workflow', 'baseline'] as const);
    for (const side of order) {
      if (side === 'baseline') {
        base.push(await baseline());
        log(`large: round ${r + 1} baseline (cp && sync) ${base.at(-1)!.toFixed(2)} s`);
      } else {
        wf.push(await workflow());
        log(`large: round ${r + 1} workflow (put → result) ${wf.at(-1)!.toFixed(2)} s`);
      }
    }
    hashes.push(await hashOnly());
  }
  await fs.rm(src, { force: true });

  const workflowSeconds = Math.min(...wf);
  const baselineSeconds = Math.min(...base);
  const ratio = workflowSeconds / baselineSeconds;
  return {
    bytes: LARGE_BYTES,
    rounds: LARGE_ROUNDS,
    workflowSeconds: round(workflowSeconds),
    baselineSeconds: round(baselineSeconds),
    workflowMiBps: round(LARGE_BYTES / MiB / workflowSeconds, 1),
    baselineMiBps: round(LARGE_BYTES / MiB / baselineSeconds, 1),
    ratio: round(ratio),
    target: LARGE_TARGET,
    met: ratio <= LARGE_TARGET,
    allWorkflowSeconds: wf.map((s) => round(s)),
    allBaselineSeconds: base.map((s) => round(s)),
    hashOnlySeconds: round(Math.min(...hashes)),
    hashOnlyRatio: round(Math.min(...hashes) / baselineSeconds),
    rssBeforeBytes: rssBefore,
    peakRssBytes: peakRss,
    breakdown: await breakdown(stack, [wfIds[wf.indexOf(workflowSeconds)]]),
  };
}

// ---- 2. small writes ---------------------------------------------------------------------------

interface Run {
  wallMs: number;
  latenciesMs: number[];
  workflowIds: string[];
}

/** Runs `count` jobs with `concurrency` in flight; each job returns its workflow id. */
async function pool(count: number, concurrency: number, job: (i: number) => Promise<string>): Promise<Run> {
  const latenciesMs: number[] = [];
  const workflowIds: string[] = [];
  let next = 0;
  const t0 = now();
  const lane = async () => {
    while (next < count) {
      const i = next++;
      const s = now();
      workflowIds.push(await job(i));
      latenciesMs.push(now() - s);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  return { wallMs: now() - t0, latenciesMs, workflowIds };
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function combine(runs: Run[]) {
  const latencies = runs.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
  const wallMs = runs.reduce((s, r) => s + r.wallMs, 0);
  return {
    perSecond: latencies.length / (wallMs / 1000),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    meanMs: latencies.reduce((s, v) => s + v, 0) / latencies.length,
    wallSeconds: wallMs / 1000,
    workflowIds: runs.flatMap((r) => r.workflowIds),
  };
}

// Where a workflow's time goes, from its history: per step, the wait in the task queue
// (scheduled → started) and the run (started → completed); workflow tasks likewise.
interface StepTimes {
  count: number;
  queueMs: number;
  runMs: number;
}
interface Breakdown {
  sampled: number;
  /** Mean per workflow of first → last history event. */
  serverMs: number;
  /** Mean per activity type, one activity per workflow. */
  activities: Record<string, { queueMs: number; runMs: number }>;
  /** Mean per workflow, summed over its workflow tasks. */
  workflowTasks: { perWorkflow: number; queueMs: number; runMs: number };
}

const E = temporal.api.enums.v1.EventType;

function eventMs(ts: temporal.api.history.v1.IHistoryEvent['eventTime']): number {
  const s = ts?.seconds ?? 0;
  return (typeof s === 'number' ? s : s.toNumber()) * 1000 + (ts?.nanos ?? 0) / 1e6;
}

async function breakdown(stack: BenchStack, workflowIds: string[]): Promise<Breakdown> {
  const step = Math.max(1, Math.floor(workflowIds.length / BREAKDOWN_SAMPLE));
  const sample = workflowIds.filter((_, i) => i % step === 0).slice(0, BREAKDOWN_SAMPLE);
  const acts = new Map<string, StepTimes>();
  const wft: StepTimes = { count: 0, queueMs: 0, runMs: 0 };
  let serverMs = 0;
  for (const id of sample) {
    const events = (await stack.client.temporal.workflow.getHandle(id).fetchHistory()).events ?? [];
    const at = new Map<number, { type: number; ms: number; name?: string }>();
    for (const ev of events) at.set(Number(ev.eventId), { type: ev.eventType ?? 0, ms: eventMs(ev.eventTime), name: ev.activityTaskScheduledEventAttributes?.activityType?.name ?? undefined });
    serverMs += eventMs(events.at(-1)?.eventTime) - eventMs(events[0]?.eventTime);
    for (const ev of events) {
      const ms = eventMs(ev.eventTime);
      if (ev.eventType === E.EVENT_TYPE_ACTIVITY_TASK_STARTED) {
        const sched = at.get(Number(ev.activityTaskStartedEventAttributes!.scheduledEventId));
        const t = acts.get(sched!.name!) ?? { count: 0, queueMs: 0, runMs: 0 };
        t.count++;
        t.queueMs += ms - sched!.ms;
        acts.set(sched!.name!, t);
      } else if (ev.eventType === E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) {
        const a = ev.activityTaskCompletedEventAttributes!;
        const sched = at.get(Number(a.scheduledEventId))!;
        acts.get(sched.name!)!.runMs += ms - at.get(Number(a.startedEventId))!.ms;
      } else if (ev.eventType === E.EVENT_TYPE_WORKFLOW_TASK_STARTED) {
        wft.count++;
        wft.queueMs += ms - at.get(Number(ev.workflowTaskStartedEventAttributes!.scheduledEventId))!.ms;
      } else if (ev.eventType === E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) {
        wft.runMs += ms - at.get(Number(ev.workflowTaskCompletedEventAttributes!.startedEventId))!.ms;
      }
    }
  }
  const n = sample.length;
  return {
    sampled: n,
    serverMs: round(serverMs / n, 2),
    activities: Object.fromEntries([...acts].map(([name, t]) => [name, { queueMs: round(t.queueMs / t.count, 2), runMs: round(t.runMs / t.count, 2) }])),
    workflowTasks: { perWorkflow: round(wft.count / n, 2), queueMs: round(wft.queueMs / n, 2), runMs: round(wft.runMs / n, 2) },
  };
}

interface SmallFigures {
  count: number;
  bytesEach: number;
  concurrency: number;
  warmup: number;
  mutationsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  wallSeconds: number;
  bareWorkflowsPerSecond: number;
  bareP50Ms: number;
  bareP99Ms: number;
  bareMeanMs: number;
  bareWallSeconds: number;
  ratio: number;
  target: number;
  met: boolean;
  breakdown: { mutation: Breakdown; bare: Breakdown };
}

async function benchSmall(stack: BenchStack): Promise<SmallFigures> {
  const { client, mountId, bare } = stack;
  const tag = randomBytes(3).toString('hex');

  const mutation = (prefix: string) => async (i: number) => {
    const handle = await client.put(mountId, `${prefix}/${i}.bin`, { content: randomBytes(SMALL_BYTES) });
    await handle.result();
    return handle.workflowId;
  };
  const bareRun = (prefix: string) => async (i: number) => {
    const input: BareInput = { secondTaskQueue: bare.secondTaskQueue, payload: randomBytes(SMALL_BYTES).toString('base64') };
    const handle = await client.temporal.workflow.start('bareWorkflow', { taskQueue: bare.taskQueue, workflowId: `bench-bare-${tag}-${prefix}-${i}`, args: [input] });
    await handle.result();
    return handle.workflowId;
  };

  const warm = Math.min(WARMUP, SMALL_COUNT);
  log(`small: warm-up, ${warm} of each`);
  await pool(warm, CONCURRENCY, bareRun('warmup'));
  await pool(warm, CONCURRENCY, mutation('warmup'));

  // ABBA halves (bare, mutations, mutations, bare): both kinds see the server and the catalog at
  // the same average fill level, and neither always runs first.
  const half = Math.ceil(SMALL_COUNT / 2);
  const halves = [half, SMALL_COUNT - half];
  const bareRuns: Run[] = [];
  const mutRuns: Run[] = [];
  const order = [['bare', 0], ['mutation', 0], ['mutation', 1], ['bare', 1]] as const;
  for (const [kind, h] of order) {
    if (halves[h] === 0) continue;
    const offset = h === 0 ? 0 : half;
    const job = kind === 'bare' ? bareRun('m') : mutation('small');
    const r = await pool(halves[h], CONCURRENCY, (i) => job(offset + i));
    (kind === 'bare' ? bareRuns : mutRuns).push(r);
    log(`small: ${kind} ×${halves[h]}: ${(halves[h] / (r.wallMs / 1000)).toFixed(1)}/s`);
  }
  const m = combine(mutRuns);
  const b = combine(bareRuns);

  log('small: reading histories for the time breakdown');
  const mutationBreakdown = await breakdown(stack, m.workflowIds);
  const bareBreakdown = await breakdown(stack, b.workflowIds);

  const ratio = m.perSecond / b.perSecond;
  return {
    count: SMALL_COUNT,
    bytesEach: SMALL_BYTES,
    concurrency: CONCURRENCY,
    warmup: warm,
    mutationsPerSecond: round(m.perSecond, 1),
    p50Ms: round(m.p50Ms, 1),
    p99Ms: round(m.p99Ms, 1),
    meanMs: round(m.meanMs, 1),
    wallSeconds: round(m.wallSeconds),
    bareWorkflowsPerSecond: round(b.perSecond, 1),
    bareP50Ms: round(b.p50Ms, 1),
    bareP99Ms: round(b.p99Ms, 1),
    bareMeanMs: round(b.meanMs, 1),
    bareWallSeconds: round(b.wallSeconds),
    ratio: round(ratio),
    target: SMALL_TARGET,
    met: ratio >= SMALL_TARGET,
    breakdown: { mutation: mutationBreakdown, bare: bareBreakdown },
  };
}

// ---- report ------------------------------------------------------------------------------------

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd();
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
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

async function main(): Promise<void> {
  log(`large ${LARGE_BYTES} bytes, small ${SMALL_COUNT} × ${SMALL_BYTES} bytes at concurrency ${CONCURRENCY}`);
  const stack = await createBenchStack();
  const stop = () => {
    log('interrupted; cleaning up');
    void stack.teardown().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let out: string;
  try {
    const large = await benchLarge(stack);
    const small = await benchSmall(stack);
    const json = {
      bench: 'local',
      large,
      small,
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, memBytes: os.totalmem(), node: process.version, platform: `${os.platform()} ${os.release()}`, tmpdir: os.tmpdir() },
    };
    out = `${report(large, small)}\n\n${JSON.stringify(json)}\n`;
  } finally {
    log('cleaning up');
    await stack.teardown();
  }
  if (process.env.BENCH_REPORT_FILE) await fs.writeFile(process.env.BENCH_REPORT_FILE, out);
  else process.stdout.write(out);
}

main().catch((err: Error) => {
  process.stderr.write(`bench: failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
