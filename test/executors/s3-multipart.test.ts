/**
 * Resumable multipart uploads against a real MinIO: create → complete with per-part SHA256
 * checksums and the sha256 in metadata, resume after a simulated crash (a guard that throws) and a
 * real SIGKILL of a child process, tampered parts, conditional completes, idempotent complete and
 * abort, stream sources, memory bounds.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { Readable } from 'node:stream';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { FenceLostError } from '../../src/errors';
import { registry } from '../../src/metrics';
import {
  abortMultipart,
  listAllParts,
  listUploadsForKey,
  uploadMultipart,
  type MultipartCheckpoint,
  type UploadMultipartArgs,
} from '../../src/executors/s3/s3-multipart';
import { partLayout, S3_MAX_PARTS } from '../../src/executors/s3/s3-part-source';
import { writeRandomFile } from '../helpers/files';
import { createTestBucket, testS3Client, type TestBucket } from '../helpers/s3';

const MiB = 1024 * 1024;

// ---- the S3 server: the run's MinIO (test/helpers/global-setup.ts), a bucket of this file's own ----

let endpoint: string;
let client: S3Client;
let bucket: string;
let testBucket: TestBucket;
let dir: string;

function newClient(): S3Client {
  return testS3Client(endpoint);
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'filestore-s3mp-'));
  testBucket = await createTestBucket('fs-multipart');
  ({ endpoint, client, bucket } = testBucket);
}, 60_000);

afterAll(async () => {
  await testBucket?.cleanup();
  await fs.rm(dir, { recursive: true, force: true });
});

// ---- helpers ----

let keySeq = 0;
const newKey = (name: string) => `t${++keySeq}/${name}-${randomBytes(3).toString('hex')}`;

async function randomFile(name: string, bytes: number): Promise<{ file: string; sha: string; size: number }> {
  const file = path.join(dir, `${name}-${randomBytes(3).toString('hex')}`);
  const sha = await writeRandomFile(file, bytes);
  return { file, sha, size: bytes };
}

async function sha256Range(file: string, start: number, length: number): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { start, end: start + length - 1 })) hash.update(chunk as Buffer);
  return hash.digest('base64');
}

async function objectSha256(key: string): Promise<string> {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const hash = createHash('sha256');
  for await (const chunk of res.Body as Readable) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** An uploadMultipart call on `file` with the usual settings; `over` overrides any of them. */
async function upload(file: string, key: string, over: Partial<UploadMultipartArgs> & { saved?: MultipartCheckpoint[] } = {}) {
  const fh = await fs.open(file, 'r');
  const saved = over.saved ?? [];
  try {
    return await uploadMultipart({
      client,
      bucket,
      key,
      source: { kind: 'file', fh, size: (await fh.stat()).size },
      partSize: 5 * MiB,
      concurrency: 3,
      checkpoint: null,
      saveCheckpoint: async (cp) => void saved.push(cp),
      putParams: {},
      condition: { ifNoneMatch: '*' },
      guard: async () => undefined,
      ...over,
    });
  } finally {
    await fh.close();
  }
}

/** A guard that throws (as a lost fence would) once `parts` parts have been stored: the simulated crash. */
function crashAfter(parts: number, partSize = 5 * MiB) {
  let stored = 0;
  return {
    onProgress: (bytes: number) => void (stored = bytes),
    guard: async () => {
      if (stored >= parts * partSize) throw new FenceLostError('tx-test', 'simulated crash');
    },
  };
}

/** UploadPart part numbers sent through a client (the SDK's own middleware stack; S3 is real). */
function recordingClient(): { client: S3Client; sent: number[]; maxInFlight: () => number } {
  const c = newClient();
  const sent: number[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  c.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'UploadPartCommand') return next(args);
      sent.push((args.input as { PartNumber: number }).PartNumber);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      try {
        return await next(args);
      } finally {
        inFlight--;
      }
    },
    { step: 'initialize', name: 'recordUploadParts' },
  );
  return { client: c, sent, maxInFlight: () => maxInFlight };
}

async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = (m?.values ?? []).find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return Number(v?.value ?? 0);
}

const codeOf = async (p: Promise<unknown>) => p.then(() => 'no error', (err: { code?: string; name?: string }) => err.code ?? err.name);

// ---- tests ----

describe('part layout', () => {
  test('respects S3 limits: 5 MiB minimum, 5 GiB maximum, at most 10,000 parts', () => {
    expect(partLayout(40 * MiB, 1 * MiB)).toEqual({ size: 40 * MiB, partSize: 5 * MiB, count: 8 });
    expect(partLayout(40 * MiB + 7, 5 * MiB).count).toBe(9);
    expect(partLayout(0, 5 * MiB).count).toBe(1);
    const big = partLayout(200 * 1024 * MiB, 5 * MiB);
    expect(big.count).toBeLessThanOrEqual(S3_MAX_PARTS);
    expect(big.partSize % MiB).toBe(0);
    expect(partLayout(10 * 1024 * MiB, 8 * 1024 * MiB).partSize).toBe(5 * 1024 * MiB);
    expect(() => partLayout(6 * 1024 * 1024 * MiB, 5 * MiB)).toThrow(expect.objectContaining({ code: 'BACKEND_LIMIT' }));
  });
});

describe('uploadMultipart (file)', () => {
  test('create → complete: 40 MiB in 5 MiB parts, sha256 in metadata, SHA256 per part in ListParts, checkpoint before the first part', async () => {
    const { file, sha, size } = await randomFile('forty', 40 * MiB + 12345);
    const key = newKey('forty.bin');
    const saved: MultipartCheckpoint[] = [];
    const partsAtCheckpoint: number[] = [];
    let listed: { PartNumber?: number; Size?: number; ChecksumSHA256?: string }[] = [];
    let guardCalls = 0;
    const progress: number[] = [];
    const bytesBefore = await metric('filestore_s3_uploaded_bytes_total');
    const rec = recordingClient();
    const res = await upload(file, key, {
      client: rec.client,
      concurrency: 3,
      saved,
      saveCheckpoint: async (cp) => {
        saved.push(cp);
        const parts = await client.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: cp.uploadId }));
        partsAtCheckpoint.push(parts.Parts?.length ?? 0);
      },
      guard: async () => {
        guardCalls++;
        // The last guard call comes right before Complete: every part is stored by then.
        if (saved.length) listed = (await client.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: saved[0].uploadId }))).Parts ?? [];
      },
      onProgress: (b) => progress.push(b),
    });

    expect(res).toMatchObject({ sha256: sha, size, partsUploaded: 9, partsReused: 0, bytesSent: size, versionId: null });
    expect(res.etag).toMatch(/^"[0-9a-f]+-9"$/);
    expect(saved).toEqual([{ uploadId: expect.any(String), partSize: 5 * MiB, key, sha256: sha }]);
    expect(partsAtCheckpoint).toEqual([0]);
    expect(guardCalls).toBeGreaterThanOrEqual(11); // create + 9 parts + complete
    expect(progress[progress.length - 1]).toBe(size);
    expect(rec.sent.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(rec.maxInFlight()).toBe(3);
    rec.client.destroy();

    expect(listed).toHaveLength(9);
    for (const p of listed) {
      const start = (p.PartNumber! - 1) * 5 * MiB;
      const len = Math.min(5 * MiB, size - start);
      expect(p.Size).toBe(len);
      expect(p.ChecksumSHA256).toBe(await sha256Range(file, start, len));
    }

    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.Metadata?.sha256).toBe(sha);
    expect(head.ContentLength).toBe(size);
    expect(head.ETag).toBe(res.etag);
    expect(await objectSha256(key)).toBe(sha);
    expect(await listUploadsForKey(client, bucket, key)).toEqual([]);
    expect((await metric('filestore_s3_uploaded_bytes_total')) - bytesBefore).toBe(size);
  });

  test('resume after a crash: only the missing parts are sent, stored parts are checked and reused', async () => {
    const { file, sha, size } = await randomFile('resume', 40 * MiB + 999);
    const key = newKey('resume.bin');
    const saved: MultipartCheckpoint[] = [];
    const crash = crashAfter(4);
    expect(await codeOf(upload(file, key, { saved, ...crash }))).toBe('FENCE_LOST');
    expect(saved).toHaveLength(1);
    // The upload is left for the retry (or the executor's undo), not aborted.
    expect((await listUploadsForKey(client, bucket, key)).map((u) => u.uploadId)).toEqual([saved[0].uploadId]);
    const stored = (await client.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: saved[0].uploadId }))).Parts ?? [];
    expect(stored.length).toBeGreaterThanOrEqual(4);

    const reusedBefore = await metric('filestore_s3_parts_total', { outcome: 'reused' });
    const rec = recordingClient();
    const again: MultipartCheckpoint[] = [];
    const res = await upload(file, key, { client: rec.client, checkpoint: saved[0], saved: again, concurrency: 3 });
    rec.client.destroy();

    expect(again).toEqual([]); // same upload, no new checkpoint
    expect(res.sha256).toBe(sha);
    expect(res.partsReused).toBe(stored.length);
    expect(res.partsUploaded).toBe(9 - stored.length);
    const storedNumbers = new Set(stored.map((p) => p.PartNumber));
    expect(rec.sent.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9].filter((n) => !storedNumbers.has(n)));
    expect(res.bytesSent).toBeLessThanOrEqual(size - res.partsReused * 5 * MiB + 3 * 5 * MiB);
    expect(res.bytesSent).toBe(size - stored.reduce((s, p) => s + p.Size!, 0));
    expect((await metric('filestore_s3_parts_total', { outcome: 'reused' })) - reusedBefore).toBe(stored.length);

    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.Metadata?.sha256).toBe(sha);
    expect(await objectSha256(key)).toBe(sha);
    expect(await listUploadsForKey(client, bucket, key)).toEqual([]);
  });

  test('resume after SIGKILL of a real child process mid-upload re-sends at most one part per slot', async () => {
    const { file, sha, size } = await randomFile('killed', 64 * MiB);
    const key = newKey('killed.bin');
    const concurrency = 2;
    // node --import tsx, not the tsx wrapper: the wrapper runs the script in a second process, which a SIGKILL of the wrapper would not reach.
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'fixtures', 's3-upload-child.ts')], {
      // NODE_NO_WARNINGS: the SDK's Node-version notice is not an error of the child's.
      env: { ...process.env, NODE_NO_WARNINGS: '1', S3_ENDPOINT: endpoint, BUCKET: bucket, KEY: key, FILE: file, PART_SIZE: String(5 * MiB), CONCURRENCY: String(concurrency), DELAY_MS: '150' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
    let checkpoint: MultipartCheckpoint | null = null;
    let progressAtKill = 0;
    const startedBeforeKill = new Set<number>();
    for await (const text of readline.createInterface({ input: child.stdout! })) {
      const msg = JSON.parse(text) as { checkpoint?: MultipartCheckpoint; progress?: number; sending?: number; result?: unknown };
      if (msg.checkpoint) checkpoint = msg.checkpoint;
      if (msg.sending) startedBeforeKill.add(msg.sending);
      if (msg.result) throw new Error('the child finished before it was killed');
      if (msg.progress !== undefined) progressAtKill = msg.progress;
      // Past half the file, kill as the next part starts: a part is in flight at the kill.
      if (msg.sending && progressAtKill >= size / 2) {
        child.kill('SIGKILL');
        break;
      }
    }
    expect({ exit: await exited, stderr }).toEqual({ exit: 'SIGKILL', stderr: '' });
    expect(checkpoint).not.toBeNull();

    const rec = recordingClient();
    const res = await upload(file, key, { client: rec.client, checkpoint, concurrency });
    rec.client.destroy();
    expect(res.sha256).toBe(sha);
    expect(res.partsReused * 5 * MiB).toBeGreaterThanOrEqual(progressAtKill);
    // Sent twice: parts the child had started that S3 did not keep (in flight at the kill).
    const twice = rec.sent.filter((n) => startedBeforeKill.has(n));
    expect(twice.length).toBeLessThanOrEqual(concurrency);
    // The bytes re-sent: the parts not stored when the child died, plus at most one per slot in flight.
    expect(res.bytesSent).toBeLessThanOrEqual(size - progressAtKill);
    expect(res.bytesSent).toBeLessThanOrEqual(size - res.partsReused * 5 * MiB + concurrency * 5 * MiB);
    console.log(
      `SIGKILL with ${progressAtKill} of ${size} bytes stored: the resume reused ${res.partsReused} parts and sent ${res.bytesSent} bytes; ` +
        `sent twice: ${twice.length} part(s), ${((100 * twice.length * 5 * MiB) / size).toFixed(1)} % of the file`,
    );
    expect(await objectSha256(key)).toBe(sha);
    expect(await listUploadsForKey(client, bucket, key)).toEqual([]);
  });

  test('a tampered stored part (other bytes, or another size) is detected on resume and re-sent', async () => {
    const { file, sha } = await randomFile('tamper', 30 * MiB);
    const key = newKey('tamper.bin');
    const saved: MultipartCheckpoint[] = [];
    expect(await codeOf(upload(file, key, { saved, concurrency: 1, ...crashAfter(4) }))).toBe('FENCE_LOST');
    const uploadId = saved[0].uploadId;
    const before = (await client.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))).Parts ?? [];
    expect(before.map((p) => p.PartNumber)).toEqual([1, 2, 3, 4]);

    // Part 2: same size, other bytes (with its own valid checksum); part 3: other size.
    const other = randomBytes(5 * MiB);
    await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: 2, Body: other, ChecksumAlgorithm: 'SHA256', ChecksumSHA256: createHash('sha256').update(other).digest('base64') }));
    const small = randomBytes(MiB);
    await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: 3, Body: small, ChecksumAlgorithm: 'SHA256', ChecksumSHA256: createHash('sha256').update(small).digest('base64') }));

    const rec = recordingClient();
    const res = await upload(file, key, { client: rec.client, checkpoint: saved[0] });
    rec.client.destroy();
    expect(rec.sent.sort((a, b) => a - b)).toEqual([2, 3, 5, 6]);
    expect(res).toMatchObject({ sha256: sha, partsReused: 2, partsUploaded: 4, bytesSent: 20 * MiB });
    expect(await objectSha256(key)).toBe(sha);
  });

  test("a resume keeps the checkpoint's part size even when the requested one changed; ListParts pages", async () => {
    const { file, sha } = await randomFile('resize', 26 * MiB);
    const key = newKey('resize.bin');
    const saved: MultipartCheckpoint[] = [];
    expect(await codeOf(upload(file, key, { saved, concurrency: 1, ...crashAfter(3) }))).toBe('FENCE_LOST');
    const pages = await listAllParts(client, bucket, key, saved[0].uploadId, { pageSize: 2 });
    expect(pages.map((p) => p.PartNumber)).toEqual([1, 2, 3]);

    const res = await upload(file, key, { checkpoint: saved[0], saved, partSize: 8 * MiB });
    expect(saved).toHaveLength(1);
    expect(res).toMatchObject({ sha256: sha, partsReused: 3, partsUploaded: 3, bytesSent: 11 * MiB });
  });

  test('a source file written during the upload fails it with SOURCE_CHANGED (nothing completed)', async () => {
    const { file } = await randomFile('changing', 16 * MiB);
    const key = newKey('changing.bin');
    const saved: MultipartCheckpoint[] = [];
    let stored = 0;
    const res = upload(file, key, {
      saved,
      concurrency: 1,
      onProgress: (b) => void (stored = b),
      guard: async () => {
        if (stored === 5 * MiB) await fs.appendFile(file, '').then(() => fs.utimes(file, new Date(), new Date(Date.now() + 5000)));
      },
    });
    expect(await codeOf(res)).toBe('SOURCE_CHANGED');
    expect(await codeOf(client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })))).toBe('NotFound');
    // Every part was sent before the change was noticed. The upload was created with the old
    // content's sha256 in its metadata: a retry on other content must not complete under it.
    const fh = await fs.open(file, 'r+');
    await fh.write(Buffer.from('changed'), 0, 7, 12 * MiB);
    await fh.close();
    const rec = recordingClient();
    const again = await upload(file, key, { client: rec.client, checkpoint: saved[0], saved });
    rec.client.destroy();
    expect(saved).toHaveLength(2);
    expect(again).toMatchObject({ partsReused: 0, partsUploaded: 4 });
    expect(again.sha256).toBe(await objectSha256(key));
    expect((await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).Metadata?.sha256).toBe(again.sha256);
    expect(await listUploadsForKey(client, bucket, key)).toEqual([]);
  });

  test('a checkpoint without sha256 (an older plan) still resumes, comparing parts', async () => {
    const { file, sha } = await randomFile('nosha', 16 * MiB);
    const key = newKey('nosha.bin');
    const saved: MultipartCheckpoint[] = [];
    expect(await codeOf(upload(file, key, { saved, concurrency: 1, ...crashAfter(2) }))).toBe('FENCE_LOST');
    expect(saved[0].sha256).toBe(sha);
    const { sha256: _dropped, ...older } = saved[0];
    const res = await upload(file, key, { checkpoint: older, saved });
    expect(saved).toHaveLength(1);
    expect(res).toMatchObject({ sha256: sha, partsReused: 2, partsUploaded: 2 });
  });

  test('an empty file is one empty part', async () => {
    const file = path.join(dir, 'empty');
    await fs.writeFile(file, '');
    const key = newKey('empty');
    const res = await upload(file, key);
    expect(res).toMatchObject({ size: 0, partsUploaded: 1, sha256: createHash('sha256').digest('hex') });
    expect((await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ContentLength).toBe(0);
  });

  test('an upload gone from S3 (aborted) starts over under a new checkpoint', async () => {
    const { file, sha } = await randomFile('gone', 12 * MiB);
    const key = newKey('gone.bin');
    const saved: MultipartCheckpoint[] = [];
    expect(await codeOf(upload(file, key, { saved, concurrency: 1, ...crashAfter(1) }))).toBe('FENCE_LOST');
    await abortMultipart(client, bucket, key, saved[0].uploadId);
    const res = await upload(file, key, { checkpoint: saved[0], saved });
    expect(saved).toHaveLength(2);
    expect(saved[1].uploadId).not.toBe(saved[0].uploadId);
    expect(res).toMatchObject({ sha256: sha, partsReused: 0, partsUploaded: 3, bytesSent: 12 * MiB });
  });

  test('a checkpoint for another key is replaced, and its upload aborted', async () => {
    const { file, sha } = await randomFile('otherkey', 6 * MiB);
    const keyA = newKey('a.bin');
    const keyB = newKey('b.bin');
    const saved: MultipartCheckpoint[] = [];
    expect(await codeOf(upload(file, keyA, { saved, concurrency: 1, ...crashAfter(1) }))).toBe('FENCE_LOST');
    const res = await upload(file, keyB, { checkpoint: saved[0], saved });
    expect(res.sha256).toBe(sha);
    expect(saved.map((c) => c.key)).toEqual([keyA, keyB]);
    expect(await listUploadsForKey(client, bucket, keyA)).toEqual([]);
  });

  test('idempotent complete: a retry after a crash that followed a successful Complete returns the object', async () => {
    const { file, sha, size } = await randomFile('twice', 11 * MiB);
    const key = newKey('twice.bin');
    const saved: MultipartCheckpoint[] = [];
    const first = await upload(file, key, { saved });
    // The attempt died before recording the result; the retry runs with the same checkpoint.
    const rec = recordingClient();
    const retry = await upload(file, key, { client: rec.client, checkpoint: saved[0], saved });
    rec.client.destroy();
    expect(retry).toMatchObject({ etag: first.etag, sha256: sha, size, partsUploaded: 0, bytesSent: 0 });
    expect(rec.sent).toEqual([]);
    expect(saved).toHaveLength(1);
  });

  test('conditional complete: If-None-Match on an existing key and a stale If-Match are PRECONDITION_FAILED; the upload is left for undo', async () => {
    const { file, sha } = await randomFile('cond', 7 * MiB);
    const key = newKey('cond.bin');
    const existing = await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'someone else' }));

    const saved: MultipartCheckpoint[] = [];
    expect(await codeOf(upload(file, key, { saved, condition: { ifNoneMatch: '*' } }))).toBe('PRECONDITION_FAILED');
    expect((await listUploadsForKey(client, bucket, key)).map((u) => u.uploadId)).toEqual([saved[0].uploadId]);
    await abortMultipart(client, bucket, key, saved[0].uploadId);
    expect(await listUploadsForKey(client, bucket, key)).toEqual([]);

    const stale: MultipartCheckpoint[] = [];
    expect(await codeOf(upload(file, key, { saved: stale, condition: { ifMatch: '"0123456789abcdef0123456789abcdef"' } }))).toBe('PRECONDITION_FAILED');
    await abortMultipart(client, bucket, key, stale[0].uploadId);

    // Overwrite on the right ETag succeeds.
    const res = await upload(file, key, { condition: { ifMatch: existing.ETag! } });
    expect(res.sha256).toBe(sha);
    expect(await objectSha256(key)).toBe(sha);
  });

  test('abortMultipart is idempotent', async () => {
    const { file } = await randomFile('abort', 6 * MiB);
    const key = newKey('abort.bin');
    const saved: MultipartCheckpoint[] = [];
    expect(await codeOf(upload(file, key, { saved, concurrency: 1, ...crashAfter(1) }))).toBe('FENCE_LOST');
    const abortedBefore = await metric('filestore_s3_multipart_aborted_total');
    await abortMultipart(client, bucket, key, saved[0].uploadId);
    expect(await listUploadsForKey(client, bucket, key)).toEqual([]);
    expect((await metric('filestore_s3_multipart_aborted_total')) - abortedBefore).toBe(1);
    // Again, and an id S3 never issued (NoSuchUpload on AWS; MinIO answers 204): both are success.
    await abortMultipart(client, bucket, key, saved[0].uploadId);
    await abortMultipart(client, bucket, key, Buffer.from(`${randomBytes(16).toString('hex')}.x`).toString('base64url'));
  });

  test('expectedSha256 and maxBytes are checked before anything is created', async () => {
    const { file } = await randomFile('checks', 6 * MiB);
    const key = newKey('checks.bin');
    const saved: MultipartCheckpoint[] = [];
    expect(await codeOf(upload(file, key, { saved, expectedSha256: '0'.repeat(64) }))).toBe('INVALID_REQUEST');
    expect(await codeOf(upload(file, key, { saved, maxBytes: 6 * MiB - 1 }))).toBe('PAYLOAD_TOO_LARGE');
    expect(saved).toEqual([]);
    expect(await listUploadsForKey(client, bucket, key)).toEqual([]);
  });

  test('S3 refusals are typed: a missing bucket, wrong credentials', async () => {
    const { file } = await randomFile('refusals', 6 * MiB);
    expect(await codeOf(upload(file, newKey('x'), { bucket: `no-such-${randomBytes(4).toString('hex')}` }))).toBe('BUCKET_NOT_FOUND');
    const bad = new S3Client({ endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'nobody', secretAccessKey: 'wrong-secret-key' } });
    const errorsBefore = await metric('filestore_s3_request_errors_total', { code: 'InvalidAccessKeyId' });
    expect(await codeOf(upload(file, newKey('x'), { client: bad }))).toBe('INVALID_CREDENTIALS');
    bad.destroy();
    expect(await metric('filestore_s3_request_errors_total', { code: 'InvalidAccessKeyId' })).toBeGreaterThan(errorsBefore);
  });

  test('constant memory: a 200 MiB upload with 8 MiB parts and concurrency 4 (RSS printed)', async () => {
    const { file, sha } = await randomFile('big', 200 * MiB);
    const key = newKey('big.bin');
    const m0 = process.memoryUsage();
    let peakRss = m0.rss;
    let peakBuffers = m0.arrayBuffers;
    const timer = setInterval(() => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakBuffers = Math.max(peakBuffers, m.arrayBuffers);
    }, 20);
    const t0 = Date.now();
    const res = await upload(file, key, { partSize: 8 * MiB, concurrency: 4 });
    clearInterval(timer);
    expect(res.sha256).toBe(sha);
    const mib = (n: number) => (n / MiB).toFixed(1);
    console.log(
      `200 MiB upload: ${(200 / ((Date.now() - t0) / 1000)).toFixed(0)} MiB/s; growth: RSS ${mib(peakRss - m0.rss)} MiB, ` +
        `Buffers ${mib(peakBuffers - m0.arrayBuffers)} MiB (parts in memory: 4 × 8 MiB, hashing: 2 × 8 MiB)`,
    );
    // Generous bounds (the SDK and sockets allocate too), far below the file's size.
    expect(peakBuffers - m0.arrayBuffers).toBeLessThan(100 * MiB);
    expect(peakRss - m0.rss).toBeLessThan(150 * MiB);
  });
});

describe('uploadMultipart (stream)', () => {
  test('a stream goes through lib-storage: sha256 returned (not in metadata), conditional create, expectedSha256 before the object exists', async () => {
    const data = randomBytes(12 * MiB + 77);
    const sha = createHash('sha256').update(data).digest('hex');
    const key = newKey('stream.bin');
    const saved: MultipartCheckpoint[] = [];
    const streamArgs = (over: Partial<UploadMultipartArgs> = {}): UploadMultipartArgs => ({
      client,
      bucket,
      key,
      source: { kind: 'stream', stream: Readable.from(chunks(data)) },
      partSize: 5 * MiB,
      concurrency: 2,
      checkpoint: null,
      saveCheckpoint: async (cp) => {
        // Saved before any part is sent.
        expect((await listAllParts(client, bucket, key, cp.uploadId)).length).toBe(0);
        saved.push(cp);
      },
      putParams: { Metadata: { origin: 'test' } },
      condition: { ifNoneMatch: '*' },
      guard: async () => undefined,
      ...over,
    });

    expect(await codeOf(uploadMultipart(streamArgs({ expectedSha256: 'f'.repeat(64) })))).toBe('INVALID_REQUEST');
    expect(saved).toEqual([{ uploadId: expect.any(String), partSize: 5 * MiB, key }]);
    expect(await codeOf(client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })))).toBe('NotFound');
    expect(await listUploadsForKey(client, bucket, key)).toEqual([]);

    expect(await codeOf(uploadMultipart(streamArgs({ maxBytes: 10 * MiB })))).toBe('PAYLOAD_TOO_LARGE');
    expect(await listUploadsForKey(client, bucket, key)).toEqual([]);

    // A retry hands back an earlier checkpoint: a stream cannot resume it, it is aborted first.
    const { file: staleFile } = await randomFile('stale', 6 * MiB);
    expect(await codeOf(upload(staleFile, key, { saved, concurrency: 1, ...crashAfter(1) }))).toBe('FENCE_LOST');
    expect(await listUploadsForKey(client, bucket, key)).toHaveLength(1);
    const res = await uploadMultipart(streamArgs({ expectedSha256: sha, checkpoint: saved[saved.length - 1] }));
    expect(await listUploadsForKey(client, bucket, key)).toEqual([]);
    expect(res).toMatchObject({ sha256: sha, size: data.length, partsUploaded: 3, partsReused: 0, bytesSent: data.length });
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.Metadata).toEqual({ origin: 'test' });
    expect(head.ETag).toBe(res.etag);
    expect(await objectSha256(key)).toBe(sha);

    expect(await codeOf(uploadMultipart(streamArgs()))).toBe('PRECONDITION_FAILED');
    expect(await listUploadsForKey(client, bucket, key)).toEqual([]);
  });
});

function* chunks(data: Buffer, size = 256 * 1024): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}
