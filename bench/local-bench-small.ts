/**
 * Part 2 of bench/local-bench.ts, small writes: BENCH_SMALL_COUNT writes of 4 KiB inline content at
 * BENCH_CONCURRENCY in flight vs as many bare workflows, in ABBA halves after a warm-up; plus the
 * time breakdown of a sample of histories (see the entry's header).
 */
import { randomBytes } from 'node:crypto';
import type { BareInput } from './bare-workflows';
import { log, type BenchStack } from './bench-stack';
import { breakdown, type Breakdown } from './local-bench-breakdown';
import { intEnv, now, round } from './local-bench-util';
import { percentile } from './bench-util';

export const SMALL_COUNT = intEnv('BENCH_SMALL_COUNT', 1000);
export const CONCURRENCY = intEnv('BENCH_CONCURRENCY', 32);
export const SMALL_BYTES = 4096;
const WARMUP = 50;
const SMALL_TARGET = 0.6;

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
  met: boolean;
  breakdown: { mutation: Breakdown; bare: Breakdown };
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
