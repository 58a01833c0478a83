/**
 * kill -9 of the worker process half-way through a multipart upload to an S3 mount: a new worker
 * (another process) resumes the same upload from the checkpoint in the durable plan — it lists the
 * parts MinIO holds, keeps them, and re-sends at most one part per upload slot (the parts in
 * flight when the first worker died). Measured on the wire by a proxy in front of MinIO, and by the
 * new worker's `filestore_s3_parts_total{outcome}`. The object's sha256 is the source's, the journal
 * entry COMMITTED, and no multipart upload or staging object is left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { eq } from 'drizzle-orm';
import { snapshots } from '../../db/schema';
import { ENV_NAMES } from '../../src/config';
import { listAllParts, listUploadsForKey } from '../../src/executors/s3/s3-multipart';
import { stackEnv } from '../helpers/cli';
import { writeRandomFile } from '../helpers/files';
import type { TestBucket } from '../helpers/s3';
import { createTestStack, type TestStack } from '../helpers/stack';
import { startCountingProxy, type CountingProxy, type SeenRequest } from './fixtures/s3-counting-proxy';

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const PARTS = 12;
const SIZE = PARTS * PART - 123; // the last part a little short
const CONCURRENCY = 3;
const MOUNT = 'resume';
const KEY = 'big/upload.bin';
const ROOT = path.join(__dirname, '..', '..');

let stack: TestStack;
let bucket: TestBucket;
let proxy: CountingProxy;
const children: ChildProcess[] = [];

interface Child {
  proc: ChildProcess;
  metricsUrl: string;
  exited: Promise<NodeJS.Signals | number | null>;
}

/** Starts a worker process on this stack's queues, talking to S3 through the proxy (the mount's endpoint). */
async function startChild(): Promise<Child> {
  const env = stackEnv(stack.config, {
    [ENV_NAMES.metricsPort]: '0',
    [ENV_NAMES.s3MultipartThreshold]: String(PART),
    [ENV_NAMES.s3PartSize]: String(PART),
    [ENV_NAMES.s3Concurrency]: String(CONCURRENCY),
    NODE_NO_WARNINGS: '1',
  });
  // node itself with tsx's loader, not the tsx CLI: that one runs the script in a child of its own,
  // which a SIGKILL of the CLI would leave running (an orphan worker, still uploading).
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'fixtures', 's3-worker-child.ts')], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(proc);
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => proc.once('exit', (code, signal) => resolve(signal ?? code)));
  const lines = readline.createInterface({ input: proc.stdout! });
  const ready = await new Promise<{ metricsUrl: string }>((resolve, reject) => {
    lines.once('line', (line) => resolve(JSON.parse(line) as { metricsUrl: string }));
    void exited.then((how) => reject(new Error(`the worker process exited (${String(how)}) before it was ready`)));
  });
  return { proc, metricsUrl: ready.metricsUrl, exited };
}

/** A counter of the child's /metrics by its labels (0 when absent). */
async function metric(url: string, name: string, labels: string): Promise<number> {
  const text = await (await fetch(url)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function bodySha256(key: string): Promise<string> {
  const res = await bucket.client.send(new GetObjectCommand({ Bucket: bucket.bucket, Key: key }));
  const hash = createHash('sha256');
  for await (const chunk of res.Body as Readable) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

beforeAll(async () => {
  // No in-process worker: only the child processes serve this file's queues.
  stack = await createTestStack({ worker: false });
  proxy = await startCountingProxy(process.env.FILESTORE_TEST_S3_ENDPOINT!);
  bucket = await stack.addS3Mount(MOUNT, { endpoint: proxy.endpoint });
}, 120_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await stack?.teardown();
  await proxy?.close();
});

test('kill -9 at ~50 % of a multipart upload; a new worker resumes it, re-sending at most one part per slot', async () => {
  const src = path.join(stack.tmp, 'upload.bin');
  const digest = await writeRandomFile(src, SIZE);
  const first = await startChild();

  // Each part waits a little before it reaches MinIO, so parts are in flight at any moment.
  proxy.hold = (r) => (r.action === 'UploadPart' ? new Promise((resolve) => setTimeout(resolve, 250)) : undefined);
  let killedAt: { stored: number; started: Set<number>; seq: number } | null = null;
  const killed = new Promise<void>((resolve) => {
    proxy.onDone = (r) => {
      if (killedAt || r.action !== 'UploadPart' || r.status !== 200) return;
      const done = proxy.requests.filter((q) => q.action === 'UploadPart' && q.status === 200 && q.done).length;
      if (done < PARTS / 2) return;
      first.proc.kill('SIGKILL');
      killedAt = {
        stored: done,
        started: new Set(proxy.requests.filter((q) => q.action === 'UploadPart').map((q) => q.partNumber!)),
        seq: proxy.requests.length,
      };
      resolve();
    };
  });

  const handle = await stack.client.put(MOUNT, KEY, { file: src });
  await killed;
  proxy.onDone = null;
  expect(await first.exited).toBe('SIGKILL');
  const at = killedAt!;

  const before = proxy.requests.slice(0, at.seq);
  const creates = before.filter((q) => q.action === 'CreateMultipartUpload');
  expect(creates).toHaveLength(1);
  const uploadId = before.find((q) => q.action === 'UploadPart')!.uploadId!;
  // Nothing is visible at the key while the upload is unfinished.
  await expect(bucket.client.send(new HeadObjectCommand({ Bucket: bucket.bucket, Key: KEY }))).rejects.toMatchObject({ name: 'NotFound' });
  // Let held parts of the dead worker drain (the proxy drops them: their client is gone).
  await new Promise((r) => setTimeout(r, 500));
  const stored = new Set((await listAllParts(bucket.client, bucket.bucket, KEY, uploadId)).map((p) => p.PartNumber!));
  expect(stored.size).toBeGreaterThanOrEqual(PARTS / 2);
  expect(stored.size).toBeLessThan(PARTS);
  const inFlight = [...at.started].filter((n) => !stored.has(n));
  expect(inFlight.length).toBeGreaterThan(0); // the kill did interrupt parts on their way
  expect(inFlight.length).toBeLessThanOrEqual(CONCURRENCY);

  const boundary = proxy.requests.length;
  const second = await startChild();
  const result = await handle.result();
  const after = proxy.requests.slice(boundary).filter((q) => q.key === KEY);

  // The same upload, resumed: no new one created, its parts listed, only the missing parts sent.
  expect(after.filter((q) => q.action === 'CreateMultipartUpload')).toEqual([]);
  expect(after.some((q) => q.action === 'ListParts' && q.uploadId === uploadId)).toBe(true);
  const resent: SeenRequest[] = after.filter((q) => q.action === 'UploadPart');
  expect(new Set(resent.map((q) => q.uploadId))).toEqual(new Set([uploadId]));
  const resentNumbers = resent.map((q) => q.partNumber!).sort((a, b) => a - b);
  expect(resentNumbers).toEqual(Array.from({ length: PARTS }, (_, i) => i + 1).filter((n) => !stored.has(n)));
  // Sent twice: only the parts that were in flight at the kill — at most one per upload slot.
  const sentTwice = resentNumbers.filter((n) => at.started.has(n));
  expect(sentTwice.sort((a, b) => a - b)).toEqual(inFlight.sort((a, b) => a - b));
  expect(sentTwice.length).toBeLessThanOrEqual(CONCURRENCY);
  expect(after.filter((q) => q.action === 'CompleteMultipartUpload' && q.status === 200)).toHaveLength(1);

  // The new worker's own count: parts kept from the dead one, parts it sent.
  expect(await metric(second.metricsUrl, 'filestore_s3_parts_total', 'outcome="reused"')).toBe(stored.size);
  expect(await metric(second.metricsUrl, 'filestore_s3_parts_total', 'outcome="uploaded"')).toBe(PARTS - stored.size);

  expect(result.node).toMatchObject({ size: SIZE, sha256: digest });
  expect(await bodySha256(KEY)).toBe(digest);
  const headOut = await bucket.client.send(new HeadObjectCommand({ Bucket: bucket.bucket, Key: KEY }));
  expect(headOut.Metadata?.sha256).toBe(digest);
  expect(headOut.ETag).toMatch(new RegExp(`-${PARTS}"$`));
  const node = await stack.client.getNode(MOUNT, KEY);
  expect(node).toMatchObject({ state: 'ACTIVE', size: SIZE, sha256: digest, etag: headOut.ETag!.replace(/"/g, '') });
  const entries = await stack.client.listJournal({ mountId: MOUNT });
  expect(entries.map((e) => e.status)).toEqual(['COMMITTED']);
  expect((await stack.client.db.select().from(snapshots).where(eq(snapshots.journalId, result.journalId))).map((s) => s.path).sort()).toEqual(['big', KEY]);

  expect(await listUploadsForKey(bucket.client, bucket.bucket, KEY)).toEqual([]);
  const staging = await bucket.client.send(new ListObjectsV2Command({ Bucket: bucket.bucket, Prefix: '.filestore-staging/' }));
  expect(staging.Contents ?? []).toEqual([]);
  const all = await bucket.client.send(new ListObjectsV2Command({ Bucket: bucket.bucket }));
  expect((all.Contents ?? []).map((o) => o.Key)).toEqual([KEY]);

  console.log(
    `kill -9 with ${stored.size}/${PARTS} parts stored and ${inFlight.length} in flight; the new worker sent ${resent.length} parts ` +
      `(${sentTwice.length} sent twice = ${((100 * sentTwice.length * PART) / SIZE).toFixed(1)} % of the file)`,
  );
  proxy.hold = null;
  second.proc.kill('SIGTERM');
  await second.exited;
}, 180_000);

test('kill -9 right after MinIO completed the upload, before the worker heard back: the next worker takes the object as its own, sends nothing, commits', async () => {
  const key = 'big/completed.bin';
  const size = 3 * PART + 5;
  const src = path.join(stack.tmp, 'completed.bin');
  const digest = await writeRandomFile(src, size);
  const first = await startChild();
  const killed = new Promise<void>((resolve) => {
    proxy.holdResponse = (r) => {
      if (r.action !== 'CompleteMultipartUpload' || r.key !== key || r.status !== 200) return undefined;
      first.proc.kill('SIGKILL');
      resolve();
      // The answer waits for the worker's death: it is never delivered.
      return first.exited.then(() => undefined);
    };
  });
  const handle = await stack.client.put(MOUNT, key, { file: src });
  await killed;
  expect(await first.exited).toBe('SIGKILL');
  proxy.holdResponse = null;
  // MinIO holds the whole object already; the dead worker never recorded that.
  const landed = await bucket.client.send(new HeadObjectCommand({ Bucket: bucket.bucket, Key: key }));
  expect(landed).toMatchObject({ ContentLength: size, Metadata: expect.objectContaining({ sha256: digest }) });

  const boundary = proxy.requests.length;
  const second = await startChild();
  const result = await handle.result();
  const writes = proxy.requests.slice(boundary).filter((q) => q.key === key && ['CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload', 'PutObject', 'CopyObject'].includes(q.action));
  expect(writes.map((q) => q.action)).toEqual([]);
  expect(await metric(second.metricsUrl, 'filestore_s3_parts_total', 'outcome="uploaded"')).toBe(0);

  expect(result.node).toMatchObject({ size, sha256: digest });
  expect(await stack.client.getNode(MOUNT, key)).toMatchObject({ state: 'ACTIVE', size, sha256: digest, etag: landed.ETag!.replace(/"/g, '') });
  expect(await bodySha256(key)).toBe(digest);
  expect((await stack.client.getJournalEntry(result.journalId))?.status).toBe('COMMITTED');
  expect(await stack.client.listJournal({ mountId: MOUNT, status: 'PENDING' })).toEqual([]);
  expect(await listUploadsForKey(bucket.client, bucket.bucket, key)).toEqual([]);
  const staging = await bucket.client.send(new ListObjectsV2Command({ Bucket: bucket.bucket, Prefix: '.filestore-staging/' }));
  expect(staging.Contents ?? []).toEqual([]);
  second.proc.kill('SIGTERM');
  await second.exited;
}, 180_000);
