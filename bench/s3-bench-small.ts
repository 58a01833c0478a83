/**
 * Part 3 of bench/s3-bench.ts, small objects: BENCH_S3_SMALL_COUNT writes of 4 KiB inline content
 * to distinct paths at BENCH_S3_CONCURRENCY in flight into the S3 mount vs the same through the
 * local mount, same worker, same Temporal server, same run: mutations/s each and the ratio.
 * A warm-up of each first, then ABBA halves (S3, local, local, S3) so both see the catalog at the
 * same average fill and neither always runs first.
 */
import { randomBytes } from 'node:crypto';
import { intEnv, log, percentile, pool, type PoolRun } from './bench-util';
import { round } from './s3-bench-large';
import type { S3BenchStack } from './s3-bench-stack';

export const SMALL_COUNT = intEnv('BENCH_S3_SMALL_COUNT', 1000);
export const CONCURRENCY = intEnv('BENCH_S3_CONCURRENCY', 32);
export const SMALL_BYTES = 4096;
const WARMUP = 50;

type Run = PoolRun<void>;

export interface SmallSide {
  mutationsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  wallSeconds: number;
}

function combine(runs: Run[]): SmallSide {
  const latencies = runs.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
  const wallMs = runs.reduce((s, r) => s + r.wallMs, 0);
  return { mutationsPerSecond: round(latencies.length / (wallMs / 1000), 1), p50Ms: round(percentile(latencies, 50), 1), p99Ms: round(percentile(latencies, 99), 1), wallSeconds: round(wallMs / 1000) };
}

export interface SmallFigures {
  count: number;
  bytesEach: number;
  concurrency: number;
  warmup: number;
  s3: SmallSide;
  local: SmallSide;
  /** S3 mutations/s ÷ local mutations/s. */
  ratio: number;
}

export async function benchSmall(stack: S3BenchStack): Promise<SmallFigures> {
  const { client } = stack;
  const write = (mountId: string, prefix: string) => async (i: number) => {
    await (await client.put(mountId, `${prefix}/${i}.bin`, { content: randomBytes(SMALL_BYTES) })).result();
  };
  const mounts = { s3: stack.s3MountId, local: stack.mountId };

  const warm = Math.min(WARMUP, SMALL_COUNT);
  log(`small: warm-up, ${warm} of each`);
  await pool(warm, CONCURRENCY, write(mounts.s3, 'warmup'));
  await pool(warm, CONCURRENCY, write(mounts.local, 'warmup'));

  const half = Math.ceil(SMALL_COUNT / 2);
  const halves = [half, SMALL_COUNT - half];
  const runs: Record<'s3' | 'local', Run[]> = { s3: [], local: [] };
  for (const [kind, h] of [['s3', 0], ['local', 0], ['local', 1], ['s3', 1]] as const) {
    if (halves[h] === 0) continue;
    const offset = h === 0 ? 0 : half;
    const job = write(mounts[kind], 'small');
    const r = await pool(halves[h], CONCURRENCY, (i) => job(offset + i));
    runs[kind].push(r);
    log(`small: ${kind} ×${halves[h]}: ${(halves[h] / (r.wallMs / 1000)).toFixed(1)}/s`);
  }
  const s3 = combine(runs.s3);
  const local = combine(runs.local);
  return { count: SMALL_COUNT, bytesEach: SMALL_BYTES, concurrency: CONCURRENCY, warmup: warm, s3, local, ratio: round(s3.mutationsPerSecond / local.mutationsPerSecond) };
}
