/**
 * Child process of bench/s3-bench.ts's resume part: a plain `@aws-sdk/lib-storage` `Upload` of one
 * file, so the bench can kill -9 it half-way and run it again, as a user of lib-storage would, and
 * count what each run sends; and the large part's lib-storage baseline in a process of its own
 * (no worker beside it), timed here. Everything comes from the environment (credentials through
 * the standard AWS chain). Prints `{ "seconds": … }` (Upload created → done) on stdout.
 *
 * usage: BENCH_S3_ENDPOINT=… BENCH_S3_BUCKET=… BENCH_S3_KEY=… BENCH_S3_FILE=… BENCH_S3_PART_SIZE=…
 *        BENCH_S3_QUEUE_SIZE=… node --import tsx bench/s3-bench-upload-child.ts
 */
import { createReadStream } from 'node:fs';
import { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

async function main(): Promise<void> {
  const env = (name: string) => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set`);
    return v;
  };
  const client = new S3Client({ endpoint: env('BENCH_S3_ENDPOINT'), forcePathStyle: true });
  const t0 = performance.now();
  const upload = new Upload({
    client,
    params: { Bucket: env('BENCH_S3_BUCKET'), Key: env('BENCH_S3_KEY'), Body: createReadStream(env('BENCH_S3_FILE')) },
    partSize: Number(env('BENCH_S3_PART_SIZE')),
    queueSize: Number(env('BENCH_S3_QUEUE_SIZE')),
  });
  await upload.done();
  process.stdout.write(`${JSON.stringify({ seconds: (performance.now() - t0) / 1000 })}\n`);
  client.destroy();
}

main().catch((err: Error) => {
  process.stderr.write(`bench upload child: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
