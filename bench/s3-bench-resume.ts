/**
 * Part 2 of bench/s3-bench.ts, resume after kill -9: the same file put into an S3 mount whose
 * endpoint is a byte-counting proxy (bench/s3-bench-proxy.ts) in front of the same server. The
 * worker is a child process (bench/s3-bench-worker.ts) on a task queue no other worker polls; at
 * about 50 % of the file on the wire it gets SIGKILL, a new worker starts, and the workflow's
 * retry resumes the multipart upload there. Bytes re-sent = everything sent upstream by both
 * workers − the file's size (request headers and the small requests count as re-sent: the
 * figure errs high). Target: ≤ 10 % of the file. The new worker's /metrics (bytes uploaded,
 * parts uploaded and re-used) are reported beside it.
 *
 * For comparison the same cut is made to a lib-storage `Upload` in a child process and to rclone
 * (matched settings), each then run again as its user would: both start over and re-send
 * everything they had sent (s5cmd behaves the same; it is not installed here, so not measured).
 */
import type { ChildProcess } from 'node:child_process';
import { AbortMultipartUploadCommand, DeleteObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { log, now } from './bench-util';
import { exited, kill9, openChildQueue } from './s3-bench-child-workers';
import { round, S3_BYTES } from './s3-bench-large';
import type { CountingProxy } from './s3-bench-proxy';
import { matchedFlags, startRcloneCopy, startUploadChild, waitChild, type Rclone } from './s3-bench-tools';
import { scrapeMultipartMetrics, type MultipartMetrics } from './s3-bench-s3';
import type { S3BenchStack } from './s3-bench-stack';

const TARGET = 0.1;
const KILL_AT = 0.5;
/** Longest the resumed workflow may take after the kill (heartbeat timeout + the rest of the upload). */
const RESUME_DEADLINE_MS = 600_000;

/** What one interrupted upload sent: before the kill, after the restart, and the excess over the file. */
export interface CutFigures {
  sentBeforeKillBytes: number;
  sentAfterRestartBytes: number;
  /** Everything sent − the file's size. */
  resentBytes: number;
  /** resentBytes ÷ file size. */
  resentShareOfFile: number;
  /** resentBytes ÷ what was sent before the kill: 1 means everything already sent went again. */
  resentShareOfSentBeforeKill: number;
  /** What the restart sent ÷ file size: 1 means it started over. */
  restartShareOfFile: number;
}

export interface ResumeFigures {
  bytes: number;
  killAtShare: number;
  filestore: CutFigures & {
    target: number;
    met: boolean;
    /** Kill → result (includes Temporal noticing the dead worker: the execute heartbeat timeout). */
    killToResultSeconds: number;
    sha256Matches: boolean;
    /** The new worker's multipart metrics after the resumed upload (null where a metric is absent). */
    newWorker: MultipartMetrics;
  };
  libStorage: CutFigures;
  rclone: (CutFigures & { flags: string[] }) | { unavailable: string };
  s5cmd: string;
}

function cut(sentBeforeKill: number, total: number): CutFigures {
  const resent = Math.max(0, total - S3_BYTES);
  return {
    sentBeforeKillBytes: sentBeforeKill,
    sentAfterRestartBytes: total - sentBeforeKill,
    resentBytes: resent,
    resentShareOfFile: round(resent / S3_BYTES, 4),
    resentShareOfSentBeforeKill: round(resent / sentBeforeKill, 4),
    restartShareOfFile: round((total - sentBeforeKill) / S3_BYTES, 4),
  };
}

/** Waits until the proxy saw `bytes`, failing if `child` ends first. */
async function untilSent(proxy: CountingProxy, bytes: number, child: ChildProcess, what: string): Promise<void> {
  await Promise.race([
    proxy.whenSent(bytes),
    exited(child).then(() => {
      if (proxy.sent() < bytes) throw new Error(`${what} ended (${child.exitCode ?? child.signalCode}) after ${proxy.sent()} bytes, before the cut at ${bytes}`);
    }),
  ]);
}

async function filestoreCut(stack: S3BenchStack, proxy: CountingProxy, src: string, srcSha256: string): Promise<ResumeFigures['filestore']> {
  const mountId = 's3resume';
  await stack.addS3Mount(mountId, 'resume', proxy.endpoint);
  const queue = await openChildQueue(stack, 'resume');
  try {
    const first = await queue.start();
    proxy.reset();
    const handle = await queue.client.put(mountId, 'big.bin', { file: src });
    const outcome = handle.result();
    outcome.catch(() => undefined);
    await untilSent(proxy, S3_BYTES * KILL_AT, first.child, 'the first worker');
    await kill9(first.child);
    const sentBeforeKill = proxy.sent();
    const t0 = now();
    log(`resume: killed the worker (SIGKILL) after ${sentBeforeKill} bytes on the wire; starting a new one`);

    const second = await queue.start();
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      outcome,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the resumed upload did not finish within ${RESUME_DEADLINE_MS / 1000} s`)), RESUME_DEADLINE_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    const killToResultSeconds = (now() - t0) / 1000;
    const total = proxy.sent();
    const newWorker = await scrapeMultipartMetrics(second.metricsUrl);
    const head = await stack.s3Client.send(new HeadObjectCommand({ Bucket: stack.bucket, Key: 'resume/big.bin' }));
    if (head.ContentLength !== S3_BYTES) throw new Error(`the resumed object has ${head.ContentLength} bytes, expected ${S3_BYTES}`);
    const figures = cut(sentBeforeKill, total);
    log(`resume: done ${killToResultSeconds.toFixed(1)} s after the kill; re-sent ${figures.resentBytes} bytes (${(figures.resentShareOfFile * 100).toFixed(2)} % of the file)`);
    return {
      ...figures,
      target: TARGET,
      met: figures.resentShareOfFile <= TARGET,
      killToResultSeconds: round(killToResultSeconds),
      sha256Matches: result.node?.sha256 === srcSha256,
      newWorker,
    };
  } finally {
    await queue.close();
  }
}

/** Removes `key` and aborts the multipart uploads a killed uploader left on it. */
async function cleanKey(stack: S3BenchStack, key: string): Promise<void> {
  const { s3Client, bucket } = stack;
  const page = await s3Client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
  for (const u of page.Uploads ?? []) await s3Client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key!, UploadId: u.UploadId! }));
  await s3Client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

/** Cuts an uploader started by `start` at KILL_AT, then runs it again to the end; counts both. */
async function toolCut(stack: S3BenchStack, proxy: CountingProxy, what: string, key: string, start: () => ChildProcess): Promise<CutFigures> {
  proxy.reset();
  const first = start();
  first.stdout?.resume();
  first.stderr?.resume();
  await untilSent(proxy, S3_BYTES * KILL_AT, first, what);
  await kill9(first);
  const sentBeforeKill = proxy.sent();
  await waitChild(start(), what);
  const figures = cut(sentBeforeKill, proxy.sent());
  log(`resume: ${what} re-run re-sent ${figures.resentBytes} bytes (${(figures.resentShareOfSentBeforeKill * 100).toFixed(1)} % of what it had sent)`);
  await cleanKey(stack, key);
  return figures;
}

export async function benchResume(stack: S3BenchStack, proxy: CountingProxy, src: string, srcSha256: string, rclone: Rclone): Promise<ResumeFigures> {
  const filestore = await filestoreCut(stack, proxy, src, srcSha256);

  const libKey = 'cut/lib-storage.bin';
  const libStorage = await toolCut(stack, proxy, 'lib-storage Upload', libKey, () => startUploadChild(proxy.endpoint, stack.bucket, libKey, src, stack.tuning));

  let rcloneFigures: ResumeFigures['rclone'];
  if (rclone.version) {
    const flags = matchedFlags(stack.tuning);
    const key = 'cut/rclone.bin';
    rcloneFigures = { ...(await toolCut(stack, proxy, 'rclone', key, () => startRcloneCopy(stack.s3, proxy.endpoint, src, stack.bucket, key, flags))), flags };
  } else {
    rcloneFigures = { unavailable: rclone.why ?? 'not available' };
  }

  return {
    bytes: S3_BYTES,
    killAtShare: KILL_AT,
    filestore,
    libStorage,
    rclone: rcloneFigures,
    s5cmd: 'not installed, not measured: it has no resume either (a re-run uploads the whole file again)',
  };
}
