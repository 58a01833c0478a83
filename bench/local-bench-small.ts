/**
 * Part 2 of bench/local-bench.ts, small writes: BENCH_SMALL_COUNT writes of 4 KiB inline content at
 * BENCH_CONCURRENCY in flight vs as many bare workflows, in ABBA halves after a warm-up; plus the
 * time breakdown of a sample of histories (see the entry's header), next to the breakdown of the
 * committed "before" run (bench/baselines/local-small-before.json, see local-bench-small-report.ts).
 *
 * BENCH_SMALL_BASELINE_OUT=<file> also writes this run's figures there as such a fixture (with the
 * date, the commit and whether the workflow code had uncommitted changes).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BareInput } from './bare-workflows';
import { log, type BenchStack } from './bench-stack';
import { breakdown, type Breakdown } from './local-bench-breakdown';
import { intEnv, round } from './local-bench-util';
import { percentile, pool, type PoolRun } from './bench-util';

export const SMALL_COUNT = intEnv('BENCH_SMALL_COUNT', 1000);
export const CONCURRENCY = intEnv('BENCH_CONCURRENCY', 32);
export const SMALL_BYTES = 4096;
const WARMUP = 50;
/** Issue 8: at least the bare baseline's throughput, and a p50 no higher than its p50. */
const SMALL_TARGET = 1.0;

type Run = PoolRun<string>;

function combine(runs: Run[]) {
  const latencies = runs.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
  const wallMs = runs.reduce((s, r) => s + r.wallMs, 0);
  return {
    perSecond: latencies.length / (wallMs / 1000),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    meanMs: latencies.reduce((s, v) => s + v, 0) / latencies.length,
    wallSeconds: wallMs / 1000,
    workflowIds: runs.flatMap((r) => r.results),
  };
}

export interface SmallFigures {
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
  /** p50 ÷ bare p50; the target is ≤ 1. */
  p50Ratio: number;
  /** ratio ≥ target and p50 ≤ bare p50. */
  met: boolean;
  breakdown: { mutation: Breakdown; bare: Breakdown };
  /** The committed run this one is compared with (null when the fixture is missing). */
  before: SmallBaseline | null;
}

export async function benchSmall(stack: BenchStack): Promise<SmallFigures> {
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
  const figures: SmallFigures = {
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
    p50Ratio: round(m.p50Ms / b.p50Ms),
    met: ratio >= SMALL_TARGET && m.p50Ms <= b.p50Ms,
    breakdown: { mutation: mutationBreakdown, bare: bareBreakdown },
    before: await loadBefore(),
  };
  if (process.env.BENCH_SMALL_BASELINE_OUT) await writeBaseline(process.env.BENCH_SMALL_BASELINE_OUT, figures);
  return figures;
}

// ---- the committed before-run (bench/baselines) ----

/** The run the live figures are compared with. */
export const BEFORE_FILE = path.join(__dirname, 'baselines', 'local-small-before.json');

/** A committed run of the small part: what it measured, on which code, and its figures. */
export interface SmallBaseline {
  what: string;
  date: string;
  commit: string;
  /** Whether workflows/, activities/ or src/worker.ts had uncommitted changes when it ran. */
  dirty: boolean;
  command: string;
  machine: { cpus: number; cpuModel: string | null; node: string; loadAverage1m: number; note: string };
  small: Omit<SmallFigures, 'before'>;
}

export async function loadBefore(file = BEFORE_FILE): Promise<SmallBaseline | null> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as SmallBaseline;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: path.join(__dirname, '..'), encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** Writes `small` as a baseline fixture (BENCH_SMALL_BASELINE_OUT); BENCH_SMALL_BASELINE_NOTE says what it measured. */
export async function writeBaseline(file: string, small: SmallFigures): Promise<void> {
  const { before: _before, ...figures } = small;
  const baseline: SmallBaseline = {
    what:
      process.env.BENCH_SMALL_BASELINE_NOTE ??
      `bench:local small part alone: ${small.count} × ${small.bytesEach} B inline writes at concurrency ${small.concurrency} vs as many bare workflows`,
    date: new Date().toISOString(),
    commit: git(['rev-parse', 'HEAD']),
    dirty: git(['status', '--porcelain', '--', 'workflows', 'activities', 'src/worker.ts']) !== '',
    command: `BENCH_PARTS=${process.env.BENCH_PARTS ?? 'large,small'} BENCH_SMALL_COUNT=${small.count} BENCH_CONCURRENCY=${small.concurrency} npx tsx bench/local-bench.ts`,
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? null,
      node: process.version,
      loadAverage1m: Number(os.loadavg()[0].toFixed(2)),
      note: process.env.BENCH_MACHINE_NOTE ?? '',
    },
    small: figures,
  };
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, `${JSON.stringify(baseline, null, 2)}\n`);
}
