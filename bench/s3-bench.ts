/**
 * S3 benchmark (`npm run bench:s3`): what an S3 mount costs and what resume saves, each figure next
 * to a baseline measured in the same run against the same S3 server.
 *
 *   1. Large upload: a BENCH_S3_BYTES random file put into the S3 mount through the workflow (from
 *      a host path, start → result) vs `@aws-sdk/lib-storage` `Upload` with the mount's part size
 *      and concurrency (FILESTORE_S3_PART_SIZE / FILESTORE_S3_CONCURRENCY), best of
 *      BENCH_S3_ROUNDS. Target: workflow throughput ≥ 0.9 × lib-storage's. Also rclone (Debian's
 *      package) with its defaults and with matched part size, concurrency and cutoff.
 *   2. Resume: kill -9 of the worker (a child process) at about 50 % of that upload, a new worker
 *      resumes it; bytes re-sent as a share of the file, counted on the wire by a proxy. Target:
 *      ≤ 10 %. The same cut made to lib-storage and rclone, then re-run, for comparison.
 *   3. Small objects: BENCH_S3_SMALL_COUNT 4 KiB writes at BENCH_S3_CONCURRENCY into the S3 mount
 *      vs the same into a local mount: mutations/s each and the ratio.
 *
 * Environment:
 *   BENCH_S3_BYTES        size of the large file                 @defaultValue 1073741824 (1 GiB)
 *   BENCH_S3_ROUNDS       rounds of the large upload (best kept)  @defaultValue 3
 *   BENCH_S3_SMALL_COUNT  number of small writes                  @defaultValue 1000
 *   BENCH_S3_CONCURRENCY  small writes in flight                  @defaultValue 32
 *   FILESTORE_S3_ENDPOINT use this S3 server (credentials from AWS_ACCESS_KEY_ID /
 *                         AWS_SECRET_ACCESS_KEY) instead of starting a private MinIO
 *   FILESTORE_S3_PART_SIZE, FILESTORE_S3_CONCURRENCY, FILESTORE_S3_MULTIPART_THRESHOLD: the
 *                         mount's settings, matched by every baseline
 *   plus the usual DATABASE_URL / TEMPORAL_CLI_PATH (the Temporal dev server is started here).
 *
 * Output: a table on stdout, then ONE JSON line with every figure as the last line of stdout.
 * Progress goes to stderr. A missed target is reported (`met: false`), never an exit code. With
 * BENCH_REPORT_FILE set (scripts/bench.sh does) the report goes to that file instead.
 */
import { createHash, randomFillSync } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { emitReport, log, MiB, now, runMain } from './bench-util';
import { benchLarge, round, S3_BYTES, S3_ROUNDS } from './s3-bench-large';
import { startCountingProxy } from './s3-bench-proxy';
import { findRclone } from './s3-bench-tools';
import { renderReport } from './s3-bench-report';
import { benchResume } from './s3-bench-resume';
import { benchSmall, CONCURRENCY, SMALL_COUNT } from './s3-bench-small';
import { createS3BenchStack } from './s3-bench-stack';

/** Random bytes, 8 MiB at a time (never the whole file in memory); returns the hex sha256. */
async function writeRandomFile(file: string, bytes: number): Promise<string> {
  const chunk = Buffer.allocUnsafe(8 * MiB);
  const hash = createHash('sha256');
  const fh = await fs.open(file, 'w');
  try {
    for (let done = 0; done < bytes; ) {
      const n = Math.min(chunk.length, bytes - done);
      randomFillSync(chunk, 0, n);
      hash.update(chunk.subarray(0, n));
      await fh.write(chunk, 0, n);
      done += n;
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

async function main(): Promise<void> {
  const t0 = now();
  const loadAtStart = round(os.loadavg()[0], 2);
  log(`large ${S3_BYTES} bytes × ${S3_ROUNDS} rounds, small ${SMALL_COUNT} × 4 KiB at concurrency ${CONCURRENCY}`);
  const stack = await createS3BenchStack();
  const stop = () => {
    log('interrupted; cleaning up');
    void stack.teardown().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let out: string;
  try {
    log(`S3 mount settings: ${stack.tuning.partSize} byte parts × ${stack.tuning.concurrency}, multipart from ${stack.tuning.multipartThreshold} bytes`);
    const rclone = findRclone();
    if (!rclone.version) log(`rclone: not available (${rclone.why})`);
    const src = path.join(stack.tmp, 's3-large-src.bin');
    log(`writing a ${S3_BYTES}-byte random source file`);
    const srcSha256 = await writeRandomFile(src, S3_BYTES);

    const large = await benchLarge(stack, src, rclone);
    const proxy = await startCountingProxy(stack.s3.endpoint);
    let resume;
    try {
      resume = await benchResume(stack, proxy, src, srcSha256, rclone);
    } finally {
      await proxy.close();
    }
    await fs.rm(src, { force: true });
    const small = await benchSmall(stack);
    out = renderReport({ s3Server: stack.s3.kind, s3Endpoint: stack.s3.endpoint, totalSeconds: round((now() - t0) / 1000, 1), loadAverage1m: { atStart: loadAtStart, atEnd: round(os.loadavg()[0], 2) } }, large, resume, small);
  } finally {
    log('cleaning up');
    await stack.teardown();
  }
  await emitReport(out);
}

runMain(main);
