/**
 * Part 1 of bench/local-bench.ts, the large write: `put` of a BENCH_LARGE_BYTES random file from a
 * host path, end to end, vs `cp src dst && sync`, in ABBA rounds; plus peak RSS and the hash-only
 * floor (see the entry's header).
 */
import { spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { log, type BenchStack } from './bench-stack';
import { breakdown, type Breakdown } from './local-bench-breakdown';
import { intEnv, MiB, now, round } from './local-bench-util';

export const LARGE_BYTES = intEnv('BENCH_LARGE_BYTES', 1024 * MiB);
const LARGE_ROUNDS = intEnv('BENCH_LARGE_ROUNDS', 3);
const LARGE_TARGET = 1.15;

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

export interface LargeFigures {
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

export async function benchLarge(stack: BenchStack): Promise<LargeFigures> {
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
