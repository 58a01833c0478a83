/**
 * Part 1 of bench/s3-bench.ts, the large upload: a BENCH_S3_BYTES random file put into the S3
 * mount through the workflow (client.put from a host path → result, end to end) vs raw
 * `@aws-sdk/lib-storage` `Upload` of the same file with the mount's part size and concurrency,
 * vs rclone with its defaults and with matched settings — same file, same server, same run.
 *
 * Like for like: the target compares the workflow run by a worker in a process of its own (as
 * `filestore worker` runs) with lib-storage in a process of its own (timed there, no start-up).
 * Both are also run in this process — the workflow by the in-process worker, lib-storage beside
 * it — and reported with their own ratio: an upload here runs slower, for both. Each side keeps
 * its best of BENCH_S3_ROUNDS; the order rotates every round so none always goes first.
 * Target: workflow throughput ≥ 0.9 × lib-storage's.
 */
import { createReadStream } from 'node:fs';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { FilestoreClient } from '../src/client';
import { intEnv, log, MiB, now } from './bench-util';
import { openChildQueue } from './s3-bench-child-workers';
import { matchedFlags, startRcloneCopy, startUploadChild, waitChild, type Rclone } from './s3-bench-tools';
import type { S3BenchStack } from './s3-bench-stack';

export const S3_BYTES = intEnv('BENCH_S3_BYTES', 1024 * MiB);
export const S3_ROUNDS = intEnv('BENCH_S3_ROUNDS', 3);
const TARGET = 0.9;

export const round = (n: number, digits = 3) => Number(n.toFixed(digits));

/** One contender's figures: best time and all rounds. */
export interface Contender {
  seconds: number;
  MBps: number;
  MiBps: number;
  allSeconds: number[];
}

export interface LargeFigures {
  bytes: number;
  rounds: number;
  partSize: number;
  concurrency: number;
  multipartThreshold: number;
  /** put → result, the worker in a child process of its own. */
  workflow: Contender;
  /** lib-storage Upload in a child process of its own. */
  libStorage: Contender;
  /** workflow ÷ libStorage throughput (best times): the target's ratio. */
  ratio: number;
  target: number;
  met: boolean;
  /** The same two in this process (the in-process worker; lib-storage beside it) and their ratio. */
  inProcess: { workflow: Contender; libStorage: Contender; ratio: number };
  rclone: { version: string | null; unavailable: string | null; defaults: Contender | null; matched: Contender | null; matchedFlags: string[] };
}

function contender(bytes: number, all: number[]): Contender {
  const best = Math.min(...all);
  return { seconds: round(best), MBps: round(bytes / 1e6 / best, 1), MiBps: round(bytes / MiB / best, 1), allSeconds: all.map((s) => round(s)) };
}

export async function benchLarge(stack: S3BenchStack, src: string, rclone: Rclone): Promise<LargeFigures> {
  const { s3MountId, s3Client, bucket, tuning, s3 } = stack;
  const removeKey = (key: string) => s3Client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  const timed = async (fn: () => Promise<unknown>) => {
    const t0 = now();
    await fn();
    return (now() - t0) / 1000;
  };
  const putAndRemove = (client: FilestoreClient, name: string) => async () => {
    const s = await timed(async () => {
      const result = await (await client.put(s3MountId, name, { file: src })).result();
      if (result.bytesWritten !== S3_BYTES) throw new Error(`put wrote ${result.bytesWritten} bytes, expected ${S3_BYTES}`);
    });
    // Untimed: a delete mutation, so the next round is a fresh create again and the catalog stays true.
    await (await client.remove(s3MountId, name)).result();
    return s;
  };

  const queue = await openChildQueue(stack, 'large');
  try {
    await queue.start();
    const sides: Record<string, () => Promise<number>> = {
      workflow: putAndRemove(queue.client, 'big-worker-process.bin'),
      libStorage: async () => {
        const key = 'baseline/lib-storage-process.bin';
        const out = await waitChild(startUploadChild(s3.endpoint, bucket, key, src, tuning), 'lib-storage child');
        await removeKey(key);
        return (JSON.parse(out.trim().split('\n').at(-1)!) as { seconds: number }).seconds;
      },
      workflowInProcess: putAndRemove(stack.client, 'big-in-process.bin'),
      libStorageInProcess: async () => {
        const key = 'baseline/lib-storage-in-process.bin';
        const s = await timed(async () => {
          const upload = new Upload({ client: s3Client, params: { Bucket: bucket, Key: key, Body: createReadStream(src) }, partSize: tuning.partSize, queueSize: tuning.concurrency });
          await upload.done();
        });
        await removeKey(key);
        return s;
      },
    };
    if (rclone.version) {
      for (const [name, flags] of [['rcloneDefaults', []], ['rcloneMatched', matchedFlags(tuning)]] as const) {
        sides[name] = async () => {
          const key = `baseline/${name}.bin`;
          const s = await timed(() => waitChild(startRcloneCopy(s3, s3.endpoint, src, bucket, key, [...flags]), 'rclone'));
          await removeKey(key);
          return s;
        };
      }
    }

    const names = Object.keys(sides);
    const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
    for (let r = 0; r < S3_ROUNDS; r++) {
      // Rotate: round r starts with contender r mod n, so each goes first (and last) as often as the rounds allow.
      const order = names.map((_, i) => names[(i + r) % names.length]);
      for (const name of order) {
        times[name].push(await sides[name]());
        log(`large: round ${r + 1} ${name} ${times[name].at(-1)!.toFixed(2)} s`);
      }
    }

    const best = (name: string) => Math.min(...times[name]);
    const ratio = best('libStorage') / best('workflow');
    return {
      bytes: S3_BYTES,
      rounds: S3_ROUNDS,
      partSize: tuning.partSize,
      concurrency: tuning.concurrency,
      multipartThreshold: tuning.multipartThreshold,
      workflow: contender(S3_BYTES, times.workflow),
      libStorage: contender(S3_BYTES, times.libStorage),
      ratio: round(ratio),
      target: TARGET,
      met: ratio >= TARGET,
      inProcess: {
        workflow: contender(S3_BYTES, times.workflowInProcess),
        libStorage: contender(S3_BYTES, times.libStorageInProcess),
        ratio: round(best('libStorageInProcess') / best('workflowInProcess')),
      },
      rclone: {
        version: rclone.version,
        unavailable: rclone.why,
        defaults: times.rcloneDefaults ? contender(S3_BYTES, times.rcloneDefaults) : null,
        matched: times.rcloneMatched ? contender(S3_BYTES, times.rcloneMatched) : null,
        matchedFlags: matchedFlags(tuning),
      },
    };
  } finally {
    await queue.close();
  }
}
