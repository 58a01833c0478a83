/**
 * S3Executor recovery against the run's real MinIO: conditional requests refusing an out-of-band
 * writer (and undo leaving that writer's object alone), undo from staging copies and from
 * versions, multipart uploads that leave no upload or staging object behind (finalize, undo after
 * a lost fence, resume with the same txId), and a crash at every durable step of every op
 * followed by a retry that reaches the same state as an uninterrupted run.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { HeadObjectCommand, ListObjectVersionsCommand, PutBucketVersioningCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { type S3Location, listAll } from '../../src/executors/executor';
import { MemoryPlanStore } from '../../src/executors/plan-store';
import type { S3Executor } from '../../src/executors/s3/s3-executor';
import type { S3Plan } from '../../src/executors/s3/s3-plan';
import { type TestBucket, createTestBucket } from '../helpers/s3';
import { codeOf, readAll, sha256 } from './behaviour';
import { MiB, freshLocation as freshIn, keyOf, openS3 as open, readRaw, stagingKeys, uploadsOf } from './s3-fixture';

let shared: TestBucket;
let versionedBucket: TestBucket;
let hostTmp: string;
beforeAll(async () => {
  shared = await createTestBucket('s3-recovery');
  versionedBucket = await createTestBucket('s3-recovery-versioned');
  await versionedBucket.client.send(new PutBucketVersioningCommand({ Bucket: versionedBucket.bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  hostTmp = await fs.mkdtemp(path.join(os.tmpdir(), 'filestore-s3-src-'));
});
afterAll(async () => {
  await shared?.cleanup();
  await versionedBucket?.cleanup();
  if (hostTmp) await fs.rm(hostTmp, { recursive: true, force: true });
});
const freshLocation = (b: TestBucket = shared): S3Location => freshIn(b);

/** The sha256 an object carries in its metadata (x-amz-meta-sha256). */
async function storedSha(loc: S3Location, p: string): Promise<string | undefined> {
  return (await shared.client.send(new HeadObjectCommand({ Bucket: shared.bucket, Key: keyOf(loc, p) }))).Metadata?.sha256;
}

let seq = 0;
const tx = (): string => `s3r-${process.pid}-${++seq}`;
const inline = (s: string | Buffer) => ({ kind: 'inline' as const, data: Buffer.from(s) });

describe('S3Executor recovery', () => {
  describe('conditional writes against an out-of-band writer', () => {
    it('a create is refused (If-None-Match) when someone wrote the key after planning; their object stays', async () => {
      const loc = freshLocation();
      const id = tx();
      const ex = await open(loc, {
        afterStep: async (step, ctx) => {
          if (ctx.txId === id && step === 'opened') {
            await shared.client.send(new PutObjectCommand({ Bucket: shared.bucket, Key: keyOf(loc, 'race.txt'), Body: 'theirs' }));
          }
        },
      });
      expect(await codeOf(ex.write('race.txt', inline('ours'), { txId: id }))).toBe('PRECONDITION_FAILED');
      expect((await readRaw(shared.client, shared.bucket, keyOf(loc, 'race.txt')))?.toString()).toBe('theirs');
      // The failure was permanent and this call still held the transaction: already undone, staging gone.
      expect(await ex.pendingTransactions()).toEqual([]);
      expect(await ex.undo(id)).toEqual({ undone: false });
      expect((await readRaw(shared.client, shared.bucket, keyOf(loc, 'race.txt')))?.toString()).toBe('theirs');
    });

    it('an overwrite is refused (If-Match on the ETag seen when planning); the racing write is never clobbered', async () => {
      const loc = freshLocation();
      const ex = await open(loc);
      const seed = tx();
      await ex.write('f.txt', inline('original'), { txId: seed });
      await ex.finalize(seed);
      const id = tx();
      let raced = false;
      const guard = async (): Promise<void> => {
        // The guard runs before every destructive request: the first one after the backup is the PutObject.
        const staged = await stagingKeys(shared.client, shared.bucket, loc.prefix);
        if (!raced && staged.some((k) => k.endsWith(`/${id}/backup`))) {
          raced = true;
          await shared.client.send(new PutObjectCommand({ Bucket: shared.bucket, Key: keyOf(loc, 'f.txt'), Body: 'out of band' }));
        }
      };
      expect(await codeOf(ex.write('f.txt', inline('ours'), { txId: id, overwrite: true, guard }))).toBe('PRECONDITION_FAILED');
      expect(raced).toBe(true);
      expect((await readRaw(shared.client, shared.bucket, keyOf(loc, 'f.txt')))?.toString()).toBe('out of band');
      expect(await stagingKeys(shared.client, shared.bucket, loc.prefix)).toEqual([]);
    });

    it('undo never replaces an object someone else wrote after our write; it records the key for an operator', async () => {
      const loc = freshLocation();
      const plans = new MemoryPlanStore<S3Plan>();
      const ex = await open(loc, { planStore: plans });
      const id = tx();
      await ex.write('w.txt', inline('ours'), { txId: id });
      await shared.client.send(new PutObjectCommand({ Bucket: shared.bucket, Key: keyOf(loc, 'w.txt'), Body: 'later writer' }));
      expect(await ex.undo(id)).toEqual({ undone: false });
      expect((await readRaw(shared.client, shared.bucket, keyOf(loc, 'w.txt')))?.toString()).toBe('later writer');
      expect((await plans.load(id))?.state.leftAlone).toEqual([keyOf(loc, 'w.txt')]);
      expect(await ex.pendingTransactions()).toEqual([]);
    });
  });

  describe('undo', () => {
    it('puts back the previous object from its staging copy, with its metadata', async () => {
      const loc = freshLocation();
      const ex = await open(loc);
      const seed = tx();
      await ex.write('doc.txt', inline('version one'), { txId: seed });
      await ex.finalize(seed);
      const id = tx();
      await ex.write('doc.txt', inline('version two!'), { txId: id, overwrite: true });
      expect(await stagingKeys(shared.client, shared.bucket, loc.prefix)).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`/${id}/backup$`))]));
      expect(await ex.undo(id)).toEqual({ undone: true });
      expect((await readRaw(shared.client, shared.bucket, keyOf(loc, 'doc.txt')))?.toString()).toBe('version one');
      expect(await storedSha(loc, 'doc.txt')).toBe(sha256('version one'));
      expect(await stagingKeys(shared.client, shared.bucket, loc.prefix)).toEqual([]);
    });

    it('in a versioned bucket keeps version ids instead of copies, and undoes an overwrite and a delete from them', async () => {
      const loc = freshLocation(versionedBucket);
      const ex = await open(loc);
      expect(ex.capabilities().versioning).toBe(true);
      const seed = tx();
      await ex.write('v.txt', inline('first'), { txId: seed });
      await ex.finalize(seed);
      const original = (await ex.stat('v.txt'))!;
      expect(original.versionId).toEqual(expect.any(String));

      const over = tx();
      await ex.write('v.txt', inline('second'), { txId: over, overwrite: true });
      expect((await stagingKeys(versionedBucket.client, versionedBucket.bucket, loc.prefix)).filter((k) => k.endsWith('/backup'))).toEqual([]);
      expect(await ex.undo(over)).toEqual({ undone: true });
      expect((await readRaw(versionedBucket.client, versionedBucket.bucket, keyOf(loc, 'v.txt')))?.toString()).toBe('first');
      // Our version was dropped, not copied over: the very version the catalog records is current again.
      expect(await ex.stat('v.txt')).toMatchObject({ versionId: original.versionId, etag: original.etag, identity: original.identity });

      const del = tx();
      await ex.delete('v.txt', { txId: del });
      expect(await ex.stat('v.txt')).toBeNull();
      expect(await ex.undo(del)).toEqual({ undone: true });
      expect((await readRaw(versionedBucket.client, versionedBucket.bucket, keyOf(loc, 'v.txt')))?.toString()).toBe('first');
      expect(await ex.stat('v.txt')).toMatchObject({ versionId: original.versionId, identity: original.identity });
      // A create undone leaves no version and no delete marker behind.
      const made = tx();
      await ex.write('fresh.txt', inline('fresh'), { txId: made });
      expect(await ex.undo(made)).toEqual({ undone: true });
      const versions = await versionedBucket.client.send(new ListObjectVersionsCommand({ Bucket: versionedBucket.bucket, Prefix: keyOf(loc, 'fresh.txt') }));
      expect([...(versions.Versions ?? []), ...(versions.DeleteMarkers ?? [])].filter((v) => v.Key === keyOf(loc, 'fresh.txt'))).toEqual([]);
    });

    it('a delete of the last file keeps its directory (a marker), and undo takes the marker away again', async () => {
      const loc = freshLocation();
      const ex = await open(loc);
      const seed = tx();
      await ex.write('d/only.txt', inline('x'), { txId: seed });
      await ex.finalize(seed);
      const id = tx();
      await ex.delete('d/only.txt', { txId: id });
      expect(await ex.stat('d')).toMatchObject({ kind: 'directory' });
      expect(await readRaw(shared.client, shared.bucket, `${keyOf(loc, 'd')}/`)).not.toBeNull();
      expect(await ex.undo(id)).toEqual({ undone: true });
      expect(await readRaw(shared.client, shared.bucket, `${keyOf(loc, 'd')}/`)).toBeNull();
      expect((await listAll(ex, '', { recursive: true })).map((m) => m.path)).toEqual(['d', 'd/only.txt']);
    });
  });

  describe('multipart writes', () => {
    const threshold = 5 * MiB;

    it('uploads a file source above the threshold in parts; finalize leaves no staging object and no upload', async () => {
      const loc = freshLocation();
      const ex = await open(loc, { transfer: { multipartThreshold: threshold, partSize: 5 * MiB, concurrency: 2 } });
      const data = randomBytes(11 * MiB + 3);
      const src = path.join(hostTmp, 'big.bin');
      await fs.writeFile(src, data);
      const checkpoints: Array<Record<string, unknown>> = [];
      const id = tx();
      const out = await ex.write('big/file.bin', { kind: 'file', path: src }, { txId: id, sourceRoots: [hostTmp], onCheckpoint: (c) => checkpoints.push(c) });
      expect(out.upserted.find((m) => m.path === 'big/file.bin')).toMatchObject({ size: data.length, sha256: sha256(data) });
      expect(checkpoints[0]).toMatchObject({ uploadId: expect.any(String), partSize: 5 * MiB });
      expect((await ex.stat('big/file.bin'))?.etag).toMatch(/-3$/);
      expect(sha256(await readAll(await ex.openRead('big/file.bin')))).toBe(sha256(data));
      await ex.finalize(id);
      expect(await stagingKeys(shared.client, shared.bucket, loc.prefix)).toEqual([]);
      expect(await uploadsOf(shared.client, shared.bucket, keyOf(loc, 'big/file.bin'))).toEqual([]);
    });

    it('streams a Readable above the threshold through a multipart upload; over maxBytes it leaves no upload', async () => {
      const loc = freshLocation();
      const ex = await open(loc, { transfer: { multipartThreshold: threshold, partSize: 5 * MiB, concurrency: 2 } });
      const data = randomBytes(12 * MiB + 1);
      const chunks = Array.from({ length: 13 }, (_, i) => data.subarray(i * MiB, (i + 1) * MiB));
      const id = tx();
      const out = await ex.write('s/streamed.bin', { kind: 'stream', stream: Readable.from(chunks) }, { txId: id });
      expect(out.upserted.find((m) => m.path === 's/streamed.bin')).toMatchObject({ size: data.length, sha256: sha256(data) });
      expect(sha256((await readRaw(shared.client, shared.bucket, keyOf(loc, 's/streamed.bin')))!)).toBe(sha256(data));
      await ex.finalize(id);

      const big = tx();
      const endless = Readable.from(
        (function* () {
          for (;;) yield Buffer.alloc(MiB, 7);
        })(),
      );
      expect(await codeOf(ex.write('s/too-big.bin', { kind: 'stream', stream: endless }, { txId: big, maxBytes: 11 * MiB }))).toBe('PAYLOAD_TOO_LARGE');
      await ex.undo(big);
      expect(await ex.stat('s/too-big.bin')).toBeNull();
      expect(await uploadsOf(shared.client, shared.bucket, keyOf(loc, 's/too-big.bin'))).toEqual([]);
      expect(await uploadsOf(shared.client, shared.bucket, keyOf(loc, 's/streamed.bin'))).toEqual([]);
      expect(await stagingKeys(shared.client, shared.bucket, loc.prefix)).toEqual([]);
    });

    it('an object uploaded in parts keeps its ETag through a move, and through undo of an overwrite and of a tree delete', async () => {
      const loc = freshLocation();
      const ex = await open(loc, { transfer: { multipartThreshold: threshold, partSize: 5 * MiB, concurrency: 2 } });
      const src = path.join(hostTmp, 'parts.bin');
      await fs.writeFile(src, randomBytes(11 * MiB));
      const seed = tx();
      await ex.write('p/parts.bin', { kind: 'file', path: src }, { txId: seed, sourceRoots: [hostTmp] });
      await ex.finalize(seed);
      const original = (await ex.stat('p/parts.bin'))!;
      expect(original.etag).toMatch(/-3$/);

      const over = tx();
      await ex.write('p/parts.bin', inline('small'), { txId: over, overwrite: true });
      expect(await ex.undo(over)).toEqual({ undone: true });
      expect((await ex.stat('p/parts.bin'))?.etag).toBe(original.etag);

      const moved = tx();
      const out = await ex.move('p/parts.bin', 'q/parts.bin', { txId: moved });
      expect(out.upserted.find((m) => m.path === 'q/parts.bin')?.etag).toBe(original.etag);
      await ex.finalize(moved);

      const del = tx();
      await ex.delete('q', { txId: del, recursive: true });
      expect(await ex.undo(del)).toEqual({ undone: true });
      expect((await ex.stat('q/parts.bin'))?.etag).toBe(original.etag);
      expect(await stagingKeys(shared.client, shared.bucket, loc.prefix)).toEqual([]);
      for (const p of ['p/parts.bin', 'q/parts.bin']) expect(await uploadsOf(shared.client, shared.bucket, keyOf(loc, p))).toEqual([]);
    });

    it('an upload stopped half-way (its fence lost) is aborted by undo: no upload, no object, no staging', async () => {
      const loc = freshLocation();
      const ex = await open(loc, { transfer: { multipartThreshold: threshold, partSize: 5 * MiB, concurrency: 1 } });
      const src = path.join(hostTmp, 'half.bin');
      await fs.writeFile(src, randomBytes(16 * MiB));
      const id = tx();
      let checkpointed = false;
      let guards = 0;
      const guard = async (): Promise<void> => {
        if (checkpointed && ++guards > 2) throw Object.assign(new Error('fence lost'), { code: 'FENCE_LOST' });
      };
      await expect(
        ex.write('half.bin', { kind: 'file', path: src }, { txId: id, sourceRoots: [hostTmp], guard, onCheckpoint: () => void (checkpointed = true) }),
      ).rejects.toBeDefined();
      const key = keyOf(loc, 'half.bin');
      expect(await uploadsOf(shared.client, shared.bucket, key)).toHaveLength(1);
      expect(await ex.pendingTransactions()).toEqual([id]);
      expect(await ex.undo(id)).toEqual({ undone: false });
      expect(await uploadsOf(shared.client, shared.bucket, key)).toEqual([]);
      expect(await ex.stat('half.bin')).toBeNull();
      expect(await stagingKeys(shared.client, shared.bucket, loc.prefix)).toEqual([]);
    });

    it('a retry with the same txId resumes the recorded upload and completes it', async () => {
      const loc = freshLocation();
      const ex = await open(loc, { transfer: { multipartThreshold: threshold, partSize: 5 * MiB, concurrency: 1 } });
      const data = randomBytes(16 * MiB);
      const src = path.join(hostTmp, 'resume.bin');
      await fs.writeFile(src, data);
      const id = tx();
      let fail = true;
      let checkpointed = false;
      let guards = 0;
      const guard = async (): Promise<void> => {
        if (fail && checkpointed && ++guards > 2) throw Object.assign(new Error('fence lost'), { code: 'FENCE_LOST', retryable: true });
      };
      const opts = { txId: id, sourceRoots: [hostTmp], guard, onCheckpoint: () => void (checkpointed = true) };
      await expect(ex.write('resume.bin', { kind: 'file', path: src }, opts)).rejects.toBeDefined();
      fail = false;
      const out = await ex.write('resume.bin', { kind: 'file', path: src }, opts);
      expect(out.upserted[0]).toMatchObject({ size: data.length, sha256: sha256(data) });
      expect(sha256((await readRaw(shared.client, shared.bucket, keyOf(loc, 'resume.bin')))!)).toBe(sha256(data));
      await ex.finalize(id);
      expect(await uploadsOf(shared.client, shared.bucket, keyOf(loc, 'resume.bin'))).toEqual([]);
      expect(await stagingKeys(shared.client, shared.bucket, loc.prefix)).toEqual([]);
    });
  });

  describe('part copies (objects above CopyObject\'s 5 GiB; the limit lowered to 5 MiB here)', () => {
    it('copies and moves in parts with the sha256 kept; undo of the move brings the source back; no upload left', async () => {
      const loc = freshLocation();
      const ex = await open(loc, { transfer: { multipartThreshold: 64 * MiB, partSize: 5 * MiB, concurrency: 2, partCopyAbove: 5 * MiB } });
      const data = randomBytes(11 * MiB + 5);
      const seed = tx();
      await ex.write('big.bin', inline(data), { txId: seed });
      await ex.finalize(seed);

      const copyId = tx();
      const copied = await ex.copy('big.bin', 'copy.bin', { txId: copyId });
      expect(copied.upserted.find((m) => m.path === 'copy.bin')).toMatchObject({ size: data.length, sha256: sha256(data), etag: expect.stringMatching(/-3$/) });
      expect(sha256((await readRaw(shared.client, shared.bucket, keyOf(loc, 'copy.bin')))!)).toBe(sha256(data));
      expect(await storedSha(loc, 'copy.bin')).toBe(sha256(data));
      await ex.finalize(copyId);

      const moveId = tx();
      await ex.move('big.bin', 'moved/big.bin', { txId: moveId });
      expect(await ex.stat('big.bin')).toBeNull();
      expect(await ex.undo(moveId)).toEqual({ undone: true });
      expect(sha256((await readRaw(shared.client, shared.bucket, keyOf(loc, 'big.bin')))!)).toBe(sha256(data));
      expect(await ex.stat('moved/big.bin')).toBeNull();
      for (const p of ['copy.bin', 'moved/big.bin', 'big.bin']) expect(await uploadsOf(shared.client, shared.bucket, keyOf(loc, p))).toEqual([]);
      expect(await stagingKeys(shared.client, shared.bucket, loc.prefix)).toEqual([]);
    });
  });

  describe('crash at every durable step, then a retry with the same txId', () => {
    type Run = (ex: S3Executor, id: string) => Promise<unknown>;
    const cases: Array<[string, (ex: S3Executor) => Promise<void>, Run]> = [
      ['write (create)', async () => {}, (ex, id) => ex.write('a/f.txt', inline('new'), { txId: id })],
      ['write (overwrite)', async (ex) => void (await ex.write('f.txt', inline('old'), { txId: `seed-${++seq}` })), (ex, id) => ex.write('f.txt', inline('newer'), { txId: id, overwrite: true })],
      ['mkdir', async () => {}, (ex, id) => ex.mkdir('p/q', { txId: id })],
      ['copy (file)', async (ex) => void (await ex.write('s.txt', inline('S'), { txId: `seed-${++seq}` })), (ex, id) => ex.copy('s.txt', 'c/s.txt', { txId: id })],
      ['move (file, over another)', async (ex) => {
        await ex.write('m.txt', inline('M'), { txId: `seed-${++seq}` });
        await ex.write('o.txt', inline('O'), { txId: `seed-${++seq}` });
      }, (ex, id) => ex.move('m.txt', 'o.txt', { txId: id, overwrite: true })],
      ['move (tree)', async (ex) => {
        await ex.write('t/a', inline('a'), { txId: `seed-${++seq}` });
        await ex.write('t/s/b', inline('bb'), { txId: `seed-${++seq}` });
      }, (ex, id) => ex.move('t', 'n/t', { txId: id })],
      ['delete (file)', async (ex) => void (await ex.write('d/g.txt', inline('G'), { txId: `seed-${++seq}` })), (ex, id) => ex.delete('d/g.txt', { txId: id })],
      ['delete (tree)', async (ex) => {
        await ex.write('tree/a', inline('A'), { txId: `seed-${++seq}` });
        await ex.mkdir('tree/empty', { txId: `seed-${++seq}` });
      }, (ex, id) => ex.delete('tree', { txId: id, recursive: true })],
    ];
    const steps = ['plan-saved', 'opened', 'backup-taken', 'committed', 'source-deleted', 'batch-copied', 'batch-deleted'];

    it.each(cases)('%s reaches the same state as an uninterrupted run, and leaves nothing after finalize', async (_label, seed, run) => {
      // The reference: one uninterrupted run.
      const refLoc = freshLocation();
      const ref = await open(refLoc);
      await seed(ref);
      await run(ref, 'reference');
      const expected = await snapshotOf(ref, refLoc);
      for (const crashAt of steps) {
        const loc = freshLocation();
        let armed = false;
        const ex = await open(loc, {
          afterStep: (step, ctx) => {
            if (armed && step === crashAt && ctx.txId === 'victim') {
              armed = false;
              throw new Error(`simulated crash after ${step}`);
            }
          },
        });
        await seed(ex);
        armed = true;
        const crashed = await run(ex, 'victim').then(
          () => false,
          () => true,
        );
        if (crashed) await run(ex, 'victim');
        expect({ crashAt, state: await snapshotOf(ex, loc) }).toEqual({ crashAt, state: expected });
        await ex.finalize('victim');
        expect({ crashAt, staging: await stagingKeys(shared.client, shared.bucket, loc.prefix) }).toEqual({ crashAt, staging: expect.not.arrayContaining([expect.stringContaining('/victim/')]) });
      }
    });

    /** Paths, kinds, sizes and raw content of everything in a mount. */
    async function snapshotOf(ex: S3Executor, loc: S3Location): Promise<Array<[string, string, string | null]>> {
      const out: Array<[string, string, string | null]> = [];
      for (const m of await listAll(ex, '', { recursive: true })) {
        out.push([m.path, m.kind, m.kind === 'file' ? sha256((await readRaw(shared.client, shared.bucket, keyOf(loc, m.path)))!) : null]);
      }
      return out;
    }
  });

});
