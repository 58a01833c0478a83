/**
 * S3Executor against the run's real MinIO: the shared behaviour suite (built from S3's declared
 * capabilities), then what only S3 has — object metadata, name conflicts, long keys with the
 * prefix, read-only mounts and modes, whole-bucket mounts, and typed errors for a missing bucket,
 * bad credentials and a bad storage class. Conditional writes, undo, multipart and crash recovery
 * are in s3-executor-recovery.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { type S3Location, listAll } from '../../src/executors/executor';
import { createExecutor } from '../../src/executors/index';
import { type TestBucket, createTestBucket } from '../helpers/s3';
import { codeOf, describeExecutorBehaviour, sha256 } from './behaviour';
import { MiB, S3_CAPABILITIES, freshLocation as freshIn, keyOf, openS3 as open, readRaw, stagingKeys } from './s3-fixture';

let shared: TestBucket;
beforeAll(async () => {
  shared = await createTestBucket('s3-executor');
});
afterAll(async () => {
  await shared?.cleanup();
});
const freshLocation = (extra: Partial<S3Location> = {}): S3Location => freshIn(shared, extra);

describeExecutorBehaviour('s3', {
  capabilities: S3_CAPABILITIES,
  create: async () => {
    const loc = freshLocation();
    const executor = await open(loc);
    return {
      executor,
      cleanup: async () => executor.client.destroy(),
      readRaw: (p) => readRaw(shared.client, shared.bucket, keyOf(loc, p)),
      async writeRaw(p, data) {
        await shared.client.send(new PutObjectCommand({ Bucket: shared.bucket, Key: keyOf(loc, p), Body: Buffer.from(data) }));
      },
    };
  },
});

describe('S3Executor', () => {
  let seq = 0;
  const tx = (): string => `s3t-${process.pid}-${++seq}`;
  const inline = (s: string | Buffer) => ({ kind: 'inline' as const, data: Buffer.from(s) });

  it('comes from createExecutor for an s3 mount and reports its capabilities', async () => {
    const loc = freshLocation();
    const ex = await createExecutor({ id: 'via-factory', kind: 's3', s3: loc, readOnly: false }, { s3: { transfer: { multipartThreshold: 8 * MiB } } });
    expect(ex.backend).toBe('s3');
    expect(ex.capabilities()).toEqual(S3_CAPABILITIES);
    expect(await codeOf(createExecutor({ id: 'no-bucket', kind: 's3', readOnly: false }))).toBe('MOUNT_UNAVAILABLE');
  });

  it('stat reports size, unquoted ETag, storage class, last-modified and the sha256 the write stored in the metadata (null for an object without one)', async () => {
    const loc = freshLocation();
    const ex = await open(loc);
    const out = await ex.write('m/f.txt', inline('metadata'), { txId: tx() });
    const head = await shared.client.send(new HeadObjectCommand({ Bucket: shared.bucket, Key: keyOf(loc, 'm/f.txt') }));
    const meta = await ex.stat('m/f.txt');
    expect(meta).toMatchObject({
      kind: 'file',
      size: 8,
      etag: head.ETag!.replace(/"/g, ''),
      storageClass: 'STANDARD',
      sha256: sha256('metadata'),
      versionId: null,
      identity: head.ETag!.replace(/"/g, ''),
      mode: null,
    });
    expect(meta!.mtime).toBe(head.LastModified!.toISOString());
    expect(out.upserted.find((m) => m.path === 'm/f.txt')).toMatchObject({ etag: meta!.etag, sha256: sha256('metadata') });
    expect(head.Metadata).toMatchObject({ sha256: sha256('metadata') });
    // stat never reads content: an object written without the metadata (out of band) has no sha256.
    await shared.client.send(new PutObjectCommand({ Bucket: shared.bucket, Key: keyOf(loc, 'm/oob.txt'), Body: 'oob' }));
    expect(await ex.stat('m/oob.txt')).toMatchObject({ kind: 'file', size: 3, sha256: null });
  });

  it('copies objects written out of band (no sha256 in their metadata) by hashing them once, or trusts the catalogued hash while size and mtime match', async () => {
    const loc = freshLocation();
    const ex = await open(loc);
    await shared.client.send(new PutObjectCommand({ Bucket: shared.bucket, Key: keyOf(loc, 'oob/a.bin'), Body: 'alpha' }));
    await shared.client.send(new PutObjectCommand({ Bucket: shared.bucket, Key: keyOf(loc, 'oob/t/b.bin'), Body: 'beta!' }));
    const one = await ex.copy('oob/a.bin', 'c/a.bin', { txId: tx() });
    expect(one.upserted.find((m) => m.path === 'c/a.bin')).toMatchObject({ size: 5, sha256: sha256('alpha') });
    const tree = await ex.copy('oob', 'c/oob', { txId: tx(), recursive: true });
    expect(tree.upserted.find((m) => m.path === 'c/oob/t/b.bin')).toMatchObject({ size: 5, sha256: sha256('beta!') });
    expect(tree.upserted.map((m) => m.path).sort()).toEqual(['c/oob', 'c/oob/a.bin', 'c/oob/t', 'c/oob/t/b.bin']);
    const live = (await ex.stat('oob/a.bin'))!;
    const catalogued = 'f'.repeat(64);
    const known = await ex.copy('oob/a.bin', 'k.bin', { txId: tx(), known: { '': { size: live.size, mtime: live.mtime, sha256: catalogued } } });
    expect(known.upserted.find((m) => m.path === 'k.bin')?.sha256).toBe(catalogued);
  });

  it('refuses a name that is both a file and a directory with NAME_CONFLICT', async () => {
    const loc = freshLocation();
    const ex = await open(loc);
    // A file `x` and a directory marker `x/` (MinIO hides a key below a file name, `x/y`, while `x` exists; AWS shows both).
    await shared.client.send(new PutObjectCommand({ Bucket: shared.bucket, Key: keyOf(loc, 'x'), Body: 'file' }));
    await shared.client.send(new PutObjectCommand({ Bucket: shared.bucket, Key: `${keyOf(loc, 'x')}/`, Body: Buffer.alloc(0) }));
    expect(await codeOf(ex.stat('x'))).toBe('NAME_CONFLICT');
    expect(await codeOf(ex.write('x', inline('new'), { txId: tx(), overwrite: true }))).toBe('NAME_CONFLICT');
    expect(await codeOf(ex.delete('x', { txId: tx(), recursive: true }))).toBe('NAME_CONFLICT');
    expect((await readRaw(shared.client, shared.bucket, keyOf(loc, 'x')))?.toString()).toBe('file');
    expect(await ex.pendingTransactions()).toEqual([]);
  });

  it('refuses a key over 1,024 bytes (prefix included) with KEY_TOO_LONG before any request', async () => {
    const loc = freshLocation({ prefix: `long-${'p'.repeat(900)}` });
    const ex = await open(loc);
    const p = `${'a'.repeat(100)}/${'b'.repeat(30)}`;
    expect(await codeOf(ex.write(p, inline('x'), { txId: tx() }))).toBe('KEY_TOO_LONG');
    expect(await codeOf(ex.mkdir(p, { txId: tx() }))).toBe('KEY_TOO_LONG');
    expect(await codeOf(ex.stat(p))).toBe('KEY_TOO_LONG');
    expect(await ex.pendingTransactions()).toEqual([]);
  });

  it('refuses every mutation on a read-only mount', async () => {
    const ex = await open(freshLocation(), { readOnly: true });
    expect(await codeOf(ex.write('f', inline('x'), { txId: tx() }))).toBe('READ_ONLY_MOUNT');
    expect(await codeOf(ex.mkdir('d', { txId: tx() }))).toBe('READ_ONLY_MOUNT');
    expect(await codeOf(ex.delete('d', { txId: tx() }))).toBe('READ_ONLY_MOUNT');
  });

  it('refuses an explicit POSIX mode with UNSUPPORTED (S3 keeps none)', async () => {
    const ex = await open(freshLocation());
    expect(await codeOf(ex.write('f', inline('x'), { txId: tx(), mode: 0o600 }))).toBe('UNSUPPORTED');
    expect(await ex.stat('f')).toBeNull();
  });

  describe('typed errors for a bad mount, with nothing written', () => {
    it('a missing bucket is BUCKET_NOT_FOUND', async () => {
      const ex = await open({ ...freshLocation(), bucket: `missing-${randomBytes(4).toString('hex')}` });
      expect(await codeOf(ex.stat(''))).toBe('BUCKET_NOT_FOUND');
      expect(await codeOf(ex.write('f', inline('x'), { txId: tx() }))).toBe('BUCKET_NOT_FOUND');
      expect(await codeOf(listAll(ex, ''))).toBe('BUCKET_NOT_FOUND');
    });

    it('wrong credentials are INVALID_CREDENTIALS', async () => {
      const loc = freshLocation();
      const ex = await open(loc, { client: { credentials: { accessKeyId: 'nobody', secretAccessKey: 'wrong-secret-key' }, maxAttempts: 1 } });
      expect(await codeOf(ex.stat('f'))).toBe('INVALID_CREDENTIALS');
      expect(await codeOf(ex.write('f', inline('x'), { txId: tx() }))).toBe('INVALID_CREDENTIALS');
      expect(await stagingKeys(shared.client, shared.bucket, loc.prefix)).toEqual([]);
    });

    it('an unknown storage class is INVALID_REQUEST, and the write leaves no object and no staging', async () => {
      const loc = freshLocation({ storageClass: 'NO_SUCH_CLASS' });
      const ex = await open(loc);
      const id = tx();
      expect(await codeOf(ex.write('f', inline('x'), { txId: id }))).toBe('INVALID_REQUEST');
      expect(await readRaw(shared.client, shared.bucket, keyOf(loc, 'f'))).toBeNull();
      expect(await ex.pendingTransactions()).toEqual([]);
      expect(await stagingKeys(shared.client, shared.bucket, loc.prefix)).toEqual([]);
    });
  });

  it('a whole-bucket mount (empty prefix) keeps staging out of listings too', async () => {
    const b = await createTestBucket('s3-executor-root');
    try {
      const loc: S3Location = { bucket: b.bucket, prefix: '', endpoint: b.endpoint, pathStyle: true };
      const ex = await open(loc);
      await ex.write('top.txt', inline('t'), { txId: 'root-seed' });
      const id = tx();
      await ex.write('top.txt', inline('t2'), { txId: id, overwrite: true });
      expect(await ex.pendingTransactions()).toEqual(expect.arrayContaining(['root-seed', id]));
      expect((await listAll(ex, '', { recursive: true })).map((m) => m.path)).toEqual(['top.txt']);
      await ex.finalize(id);
      await ex.finalize('root-seed');
      expect(await stagingKeys(b.client, b.bucket, '')).toEqual([]);
    } finally {
      await b.cleanup();
    }
  });
});
