/**
 * S3 mounts in the catalog and the CLI: registration, validation (each refusal a typed error in
 * one line, with nothing written), overlap, `mount ls`, the bucket probe against the run's real
 * MinIO, and S3 object metadata (ETag, storage class, version id) persisted by commit into nodes
 * and snapshots.
 */
import { and, eq } from 'drizzle-orm';
import { journal, nodes, snapshots } from '../../db/schema';
import { createCommitActivities } from '../../activities/commit';
import { addS3Mount, getMount, listMounts, mountSpecOf, type AddS3Mount } from '../../src/catalog/mounts';
import { offloadOutcome } from '../../src/catalog/outcomes';
import { errorLine, main } from '../../src/cli/main';
import { ENV_NAMES } from '../../src/config';
import type { MutationOutcome, NodeMeta } from '../../src/executors/executor';
import { probeS3Mount } from '../../src/executors/s3/s3-probe';
import type { MutationRequest } from '../../src/mutations';
import { createTestBucket, type TestBucket } from '../helpers/s3';
import { createTestStack, type TestStack } from '../helpers/stack';

let stack: TestStack;
let bucket: TestBucket;

beforeAll(async () => {
  stack = await createTestStack({ worker: false });
  bucket = await createTestBucket('s3-mounts');
}, 60_000);

afterAll(async () => {
  await bucket?.cleanup();
  await stack?.teardown();
});

/** The typed error a promise rejects with (its code and its one line), or null when it resolves. */
async function refusal(p: Promise<unknown>): Promise<{ code: string; line: string } | null> {
  try {
    await p;
    return null;
  } catch (err) {
    return { code: (err as { code: string }).code, line: errorLine(err) };
  }
}

/** Runs the CLI in this process against the test stack; returns its output, or the error line it would print. */
async function cli(...args: string[]): Promise<{ out: string[]; error: string | null; code: string | null }> {
  const saved = { ...process.env };
  Object.assign(process.env, {
    [ENV_NAMES.databaseUrl]: stack.config.databaseUrl,
    [ENV_NAMES.temporalAddress]: stack.config.temporalAddress,
    [ENV_NAMES.taskQueue]: stack.config.taskQueue,
    [ENV_NAMES.logLevel]: 'silent',
  });
  const out: string[] = [];
  try {
    await main(['node', 'filestore', ...args], (s) => out.push(s));
    return { out, error: null, code: null };
  } catch (err) {
    return { out, error: errorLine(err), code: (err as { code?: string }).code ?? null };
  } finally {
    process.env = saved;
  }
}

const ids = async () => (await listMounts(stack.client.db)).map((m) => m.id);

describe('addS3Mount', () => {
  test('stores the location in its columns, the write settings in options, and no credentials', async () => {
    const row = await addS3Mount(stack.client.db, {
      id: 'archive',
      bucket: 'my-bucket.example',
      prefix: '/team/archive/',
      endpoint: 'http://127.0.0.1:9000/',
      region: 'eu-west-1',
      pathStyle: true,
      profile: 'backup',
      storageClass: 'GLACIER_IR',
      acl: 'bucket-owner-full-control',
      sse: 'aws:kms',
      kmsKeyId: 'alias/filestore',
      readOnly: true,
      watch: true,
    });
    expect(row).toMatchObject({ id: 'archive', kind: 's3', rootPath: null, bucket: 'my-bucket.example', prefix: 'team/archive', endpoint: 'http://127.0.0.1:9000', region: 'eu-west-1' });
    expect(row.options).toEqual({
      readOnly: true,
      watch: true,
      pathStyle: true,
      profile: 'backup',
      storageClass: 'GLACIER_IR',
      acl: 'bucket-owner-full-control',
      sse: 'aws:kms',
      kmsKeyId: 'alias/filestore',
    });
    expect(mountSpecOf(await getMount(stack.client.db, 'archive'))).toEqual({
      id: 'archive',
      kind: 's3',
      rootPath: null,
      readOnly: true,
      s3: {
        bucket: 'my-bucket.example',
        prefix: 'team/archive',
        endpoint: 'http://127.0.0.1:9000',
        region: 'eu-west-1',
        pathStyle: true,
        profile: 'backup',
        storageClass: 'GLACIER_IR',
        acl: 'bucket-owner-full-control',
        sse: 'aws:kms',
        kmsKeyId: 'alias/filestore',
      },
    });
  });

  test('a whole-bucket mount with defaults: prefix "", no endpoint, path style left to the client', async () => {
    const row = await addS3Mount(stack.client.db, { id: 'whole', bucket: 'whole-bucket' });
    expect(row).toMatchObject({ prefix: '', endpoint: null, region: null, options: { readOnly: false, watch: false } });
    expect(mountSpecOf(row).s3).toMatchObject({ bucket: 'whole-bucket', prefix: '', pathStyle: undefined, storageClass: null, sse: null });
    // Local mounts carry no S3 location.
    const root = await stack.addMount('plain');
    expect(mountSpecOf(await getMount(stack.client.db, 'plain'))).toEqual({ id: 'plain', kind: 'local', rootPath: root, readOnly: false });
  });

  const bad: Array<[string, Partial<AddS3Mount>, RegExp]> = [
    ['bucket too short', { bucket: 'ab' }, /bucket name "ab" is not valid: it must be 3 to 63 characters long/],
    ['upper-case bucket', { bucket: 'My-Bucket' }, /only lower-case letters/],
    ['bucket with ..', { bucket: 'a..b' }, /'\.\.'/],
    ['bucket like an IP', { bucket: '192.168.1.10' }, /IP address/],
    ['bucket ending in -', { bucket: 'bucket-' }, /begin and end/],
    ['reserved bucket prefix', { bucket: 'xn--bucket' }, /reserved/],
    ['prefix with ..', { prefix: 'a/../b' }, /'\.\.' segment/],
    ['prefix with //', { prefix: 'a//b' }, /empty segment/],
    ['prefix with NUL', { prefix: 'a\0b' }, /NUL/],
    ['prefix naming the staging folder', { prefix: 'x/.filestore-staging' }, /staging folder/],
    ['prefix over 900 bytes', { prefix: 'é'.repeat(451) }, /902 bytes; at most 900/],
    ['unknown storage class', { storageClass: 'SUPER_CHEAP' }, /^INVALID_REQUEST: unknown storage class "SUPER_CHEAP"; expected one of STANDARD, REDUCED_REDUNDANCY, .*EXPRESS_ONEZONE$/],
    ['lower-case storage class', { storageClass: 'standard' }, /unknown storage class "standard"/],
    ['unknown canned ACL', { acl: 'everyone' }, /unknown canned ACL "everyone"; expected one of private, public-read/],
    ['unknown SSE', { sse: 'aws:kms:dsse' as 'aws:kms' }, /unknown server-side encryption "aws:kms:dsse"; expected one of AES256, aws:kms/],
    ['KMS key without aws:kms', { sse: 'AES256', kmsKeyId: 'alias/x' }, /a KMS key id needs --sse aws:kms/],
    ['KMS key without SSE', { kmsKeyId: 'alias/x' }, /a KMS key id needs --sse aws:kms/],
    ['endpoint with credentials', { endpoint: 'http://AKIA:secret@127.0.0.1:9000' }, /may not carry credentials/],
    ['endpoint not a URL', { endpoint: 'localhost 9000' }, /is not a URL/],
    ['endpoint of another scheme', { endpoint: 'ftp://host' }, /http:\/\/ or https:\/\//],
    ['bad region', { region: 'EU West' }, /S3 region "EU West" is not valid/],
    ['bad profile', { profile: 'a b' }, /AWS profile "a b" is not valid/],
    ['bad mount id', { id: 'Bad Id' }, /mount id "Bad Id" must match/],
  ];
  test.each(bad)('%s → INVALID_REQUEST in one line, nothing written', async (_what, patch, message) => {
    const before = await ids();
    const err = await refusal(addS3Mount(stack.client.db, { id: 'bad', bucket: 'good-bucket', ...patch }));
    expect(err?.code).toBe('INVALID_REQUEST');
    expect(err?.line).toMatch(message);
    expect(err?.line).not.toContain('\n');
    expect(await ids()).toEqual(before);
  });

  test('overlapping locations on one server are refused; siblings, other buckets and other servers are not', async () => {
    const db = stack.client.db;
    await addS3Mount(db, { id: 'ov-a', bucket: 'shared', prefix: 'data/a', endpoint: 'http://s3.local:9000' });
    for (const [id, prefix] of [['ov-inner', 'data/a/deeper'], ['ov-outer', 'data'], ['ov-same', 'data/a/'], ['ov-whole', '']] as const) {
      const err = await refusal(addS3Mount(db, { id, bucket: 'shared', prefix, endpoint: 'http://s3.local:9000/' }));
      expect(err).toEqual({ code: 'INVALID_REQUEST', line: expect.stringMatching(/overlaps mount "ov-a" \(s3:\/\/shared\/data\/a at http:\/\/s3\.local:9000\)/) });
    }
    await addS3Mount(db, { id: 'ov-sibling', bucket: 'shared', prefix: 'data/ab', endpoint: 'http://s3.local:9000' });
    await addS3Mount(db, { id: 'ov-other-server', bucket: 'shared', prefix: 'data/a', endpoint: 'http://other:9000' });
    await addS3Mount(db, { id: 'ov-aws', bucket: 'shared', prefix: 'data/a' });
    await addS3Mount(db, { id: 'ov-other-bucket', bucket: 'shared2', prefix: 'data/a', endpoint: 'http://s3.local:9000' });
    expect(await ids()).toEqual(expect.arrayContaining(['ov-a', 'ov-sibling', 'ov-other-server', 'ov-aws', 'ov-other-bucket']));
    expect(await ids()).not.toEqual(expect.arrayContaining(['ov-inner']));
  });

  test('registrations racing for overlapping prefixes: exactly one wins', async () => {
    const results = await Promise.all(
      ['race/x', 'race', 'race/x/y', 'race/x'].map((prefix, i) => refusal(addS3Mount(stack.client.db, { id: `race-${i}`, bucket: 'racing', prefix }))),
    );
    expect(results.filter((r) => r === null)).toHaveLength(1);
    expect(results.filter((r) => r?.code === 'INVALID_REQUEST')).toHaveLength(3);
  });

  test('a taken id is MOUNT_EXISTS, before any probe runs', async () => {
    let probed = false;
    const err = await refusal(addS3Mount(stack.client.db, { id: 'whole', bucket: 'fresh-bucket', probe: async () => void (probed = true) }));
    expect(err?.code).toBe('MOUNT_EXISTS');
    expect(probed).toBe(false);
  });

  test('a failing probe leaves nothing registered', async () => {
    const before = await ids();
    const err = await refusal(
      addS3Mount(stack.client.db, {
        id: 'probed',
        bucket: 'probed-bucket',
        probe: async (spec) => {
          expect(spec).toMatchObject({ id: 'probed', kind: 's3', s3: { bucket: 'probed-bucket', prefix: '' } });
          throw Object.assign(new Error('nope'), { code: 'BUCKET_NOT_FOUND' });
        },
      }),
    );
    expect(err?.code).toBe('BUCKET_NOT_FOUND');
    expect(await ids()).toEqual(before);
  });
});

describe('probeS3Mount against MinIO', () => {
  const spec = (s3: Record<string, unknown>) => ({ id: 'p', kind: 's3' as const, readOnly: false, s3: { bucket: bucket.bucket, prefix: '', endpoint: bucket.endpoint, ...s3 } });

  test('an existing bucket with working credentials passes', async () => {
    await expect(probeS3Mount(spec({ prefix: 'some/prefix' }))).resolves.toBeUndefined();
  });

  test('a missing bucket is BUCKET_NOT_FOUND', async () => {
    const err = await refusal(probeS3Mount(spec({ bucket: `${bucket.bucket}-missing` })));
    expect(err).toEqual({ code: 'BUCKET_NOT_FOUND', line: `BUCKET_NOT_FOUND: bucket "${bucket.bucket}-missing" does not exist` });
  });

  test('an unknown access key or a wrong secret is INVALID_CREDENTIALS', async () => {
    const wrongKey = await refusal(probeS3Mount(spec({}), { credentials: { accessKeyId: 'nobody-here', secretAccessKey: 'x'.repeat(40) } }));
    expect(wrongKey?.code).toBe('INVALID_CREDENTIALS');
    expect(wrongKey?.line).toMatch(/refused the credentials \(InvalidAccessKeyId\)/);
    const wrongSecret = await refusal(probeS3Mount(spec({}), { credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID!, secretAccessKey: 'wrong-secret-0000000000' } }));
    expect(wrongSecret?.code).toBe('INVALID_CREDENTIALS');
    expect(wrongSecret?.line).toMatch(/SignatureDoesNotMatch/);
  });

  test('a profile that does not exist is INVALID_CREDENTIALS naming it', async () => {
    const err = await refusal(probeS3Mount(spec({ profile: 'no-such-profile-here' })));
    expect(err?.code).toBe('INVALID_CREDENTIALS');
    expect(err?.line).toContain('"no-such-profile-here"');
  });

  test('a server that does not answer is MOUNT_UNAVAILABLE (retryable)', async () => {
    const err = await refusal(probeS3Mount(spec({ endpoint: 'http://127.0.0.1:1' })));
    expect(err?.code).toBe('MOUNT_UNAVAILABLE');
    expect(err?.line).toMatch(/cannot reach http:\/\/127\.0\.0\.1:1/);
  }, 30_000);
});

describe('filestore mount add --s3 / mount ls', () => {
  test('registers after probing the bucket and lists it', async () => {
    const added = await cli('mount', 'add', 'cli-s3', '--s3', `s3://${bucket.bucket}/team/docs/`, '--endpoint', bucket.endpoint, '--storage-class', 'STANDARD_IA', '--sse', 'AES256', '--read-only');
    expect(added.error).toBeNull();
    expect(added.out).toEqual([`mount cli-s3 → s3://${bucket.bucket}/team/docs at ${bucket.endpoint} (read-only)`]);

    const ls = await cli('mount', 'ls');
    const line = ls.out.join('\n').split('\n').find((l) => l.startsWith('cli-s3 '));
    expect(line).toMatch(new RegExp(`^cli-s3\\s+s3\\s+s3://${bucket.bucket}/team/docs\\s+endpoint=${bucket.endpoint.replace(/[.]/g, '\\.')},readOnly,sse=AES256,storageClass=STANDARD_IA$`));
    const json = (JSON.parse((await cli('mount', 'ls', '--json')).out[0]) as { mounts: Array<Record<string, unknown>> }).mounts;
    expect(json.find((m) => m.id === 'cli-s3')).toMatchObject({ kind: 's3', bucket: bucket.bucket, prefix: 'team/docs', endpoint: bucket.endpoint, options: { storageClass: 'STANDARD_IA', sse: 'AES256' } });
  });

  test('a missing bucket fails at mount add with nothing written', async () => {
    const r = await cli('mount', 'add', 'typo', '--s3', `s3://${bucket.bucket}-typo`, '--endpoint', bucket.endpoint);
    expect(r.error).toBe(`BUCKET_NOT_FOUND: bucket "${bucket.bucket}-typo" does not exist`);
    expect(await ids()).not.toContain('typo');
  });

  test('--no-probe registers without asking the server', async () => {
    const r = await cli('mount', 'add', 'offline', '--s3', 's3://not-created-yet/x', '--endpoint', 'http://127.0.0.1:1', '--no-probe');
    expect(r.error).toBeNull();
    expect(await ids()).toContain('offline');
  });

  test('an unknown storage class is one INVALID_REQUEST line, before any probe', async () => {
    const r = await cli('mount', 'add', 'sc', '--s3', `s3://${bucket.bucket}/sc`, '--endpoint', 'http://127.0.0.1:1', '--storage-class', 'CHEAP');
    expect(r.code).toBe('INVALID_REQUEST');
    expect(r.error).toMatch(/^INVALID_REQUEST: unknown storage class "CHEAP"; expected one of STANDARD, [A-Z_, ]+$/);
    expect(await ids()).not.toContain('sc');
  });

  test.each([
    [['--s3', 'http://bucket/x'], /expected s3:\/\/bucket\[\/prefix\], got "http:\/\/bucket\/x"/],
    [['--s3', 's3://Bad_Bucket'], /bucket name "Bad_Bucket" is not valid/],
    [['--s3', 's3://bucket-ok', '--local', '/tmp'], /--local <dir> or --s3 <url>, not both/],
    [[], /mount add needs --local <dir> or --s3 s3:\/\/bucket\[\/prefix\]/],
    [['--local', '/tmp', '--storage-class', 'GLACIER'], /--storage-class applies to --s3 mounts only/],
    [['--local', '/tmp', '--path-style'], /--path-style applies to --s3 mounts only/],
    [['--s3', 's3://bucket-ok', '--allow-special-modes', '--no-probe'], /--allow-special-modes applies to local mounts only/],
  ])('mount add x %j → INVALID_REQUEST', async (args, message) => {
    const r = await cli('mount', 'add', 'x', ...args);
    expect(r.code).toBe('INVALID_REQUEST');
    expect(r.error).toMatch(message);
    expect(await ids()).not.toContain('x');
  });

  test('the local form still works', async () => {
    const dir = `${stack.tmp}/cli-local`;
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    const r = await cli('mount', 'add', 'cli-local', '--local', dir, '--watch');
    expect(r.error).toBeNull();
    expect(r.out[0]).toMatch(/^mount cli-local → .*cli-local$/);
    const ls = await cli('mount', 'ls');
    expect(ls.out.join('\n')).toMatch(/^cli-local\s+local\s+\S+cli-local\s+watch$/m);
  });
});

describe('commit records S3 object metadata', () => {
  let seq = 0;
  async function pending(req: MutationRequest): Promise<string> {
    const key = `meta-${++seq}`;
    const [row] = await stack.client.db
      .insert(journal)
      .values({ idempotencyKey: key, workflowId: `filestore:${req.mountId}:${req.op}:${key}`, op: req.op, mountId: req.mountId, path: req.path, targetPath: 'targetPath' in req ? req.targetPath : null, request: req as unknown as Record<string, unknown> })
      .returning();
    return row.id;
  }
  const file = (p: string, n: number): NodeMeta => ({
    path: p,
    kind: 'file',
    size: n,
    sha256: 'ab'.repeat(32),
    etag: `"etag-${n}"`,
    storageClass: 'STANDARD_IA',
    versionId: `v-${p}-${n}`,
    mode: null,
    uid: null,
    gid: null,
    mtime: '2026-01-02T03:04:05.000Z',
    identity: `"etag-${n}"`,
  });
  const outcome = (op: MutationOutcome['op'], upserted: NodeMeta[], extra: Partial<MutationOutcome> = {}): MutationOutcome => ({ op, upserted, removed: [], bytesWritten: 0, ...extra });
  const nodeOf = async (p: string) => (await stack.client.db.select().from(nodes).where(and(eq(nodes.mountId, 'meta'), eq(nodes.path, p))))[0];
  const snapsOf = async (p: string) => stack.client.db.select().from(snapshots).where(and(eq(snapshots.mountId, 'meta'), eq(snapshots.path, p))).orderBy(snapshots.version);

  beforeAll(async () => {
    await addS3Mount(stack.client.db, { id: 'meta', bucket: 'meta-bucket' });
  });

  test('a write: etag, storage class and version id on the node and its snapshot; a local-style null stays null', async () => {
    const { commitMutation } = createCommitActivities({ db: stack.client.db });
    const req: MutationRequest = { op: 'write', mountId: 'meta', path: 'docs/a.txt', idempotencyKey: 'w1', source: { kind: 'inline', data: '' } } as unknown as MutationRequest;
    const dir: NodeMeta = { path: 'docs', kind: 'directory', size: 0, sha256: null, mode: null, uid: null, gid: null, mtime: '2026-01-02T03:04:05.000Z', identity: null };
    await commitMutation({ journalId: await pending(req), request: req, outcome: outcome('write', [dir, file('docs/a.txt', 5)]) });
    expect(await nodeOf('docs/a.txt')).toMatchObject({ etag: '"etag-5"', storageClass: 'STANDARD_IA', versionId: 'v-docs/a.txt-5', version: 1 });
    expect(await snapsOf('docs/a.txt')).toEqual([expect.objectContaining({ etag: '"etag-5"', storageClass: 'STANDARD_IA', versionId: 'v-docs/a.txt-5', version: 1 })]);
    expect(await nodeOf('docs')).toMatchObject({ etag: null, storageClass: null, versionId: null });

    // An overwrite: the node moves on to the new version's metadata; each snapshot keeps its own.
    const req2 = { ...req, idempotencyKey: 'w2' } as MutationRequest;
    await commitMutation({ journalId: await pending(req2), request: req2, outcome: outcome('write', [{ ...file('docs/a.txt', 7), storageClass: 'GLACIER' }]) });
    expect(await nodeOf('docs/a.txt')).toMatchObject({ etag: '"etag-7"', storageClass: 'GLACIER', versionId: 'v-docs/a.txt-7', version: 2 });
    expect((await snapsOf('docs/a.txt')).map((s) => [s.version, s.storageClass, s.versionId])).toEqual([
      [1, 'STANDARD_IA', 'v-docs/a.txt-5'],
      [2, 'GLACIER', 'v-docs/a.txt-7'],
    ]);
  });

  test('an offloaded tree outcome carries them too', async () => {
    const { commitMutation } = createCommitActivities({ db: stack.client.db });
    const req = { op: 'copy', mountId: 'meta', path: 'docs', targetPath: 'tree', idempotencyKey: 'c1', recursive: true } as unknown as MutationRequest;
    const journalId = await pending(req);
    const metas = [{ ...file('tree', 0), kind: 'directory' as const, etag: null, storageClass: null, versionId: null }, file('tree/a.txt', 3), file('tree/b.txt', 4)];
    const stored = await offloadOutcome(stack.client.db, journalId, outcome('copy', metas), 0);
    expect(stored.upsertedRef).toEqual({ count: 3 });
    await commitMutation({ journalId, request: req, outcome: stored });
    expect(await nodeOf('tree/b.txt')).toMatchObject({ etag: '"etag-4"', storageClass: 'STANDARD_IA', versionId: 'v-tree/b.txt-4' });
    expect(await snapsOf('tree/b.txt')).toEqual([expect.objectContaining({ storageClass: 'STANDARD_IA', versionId: 'v-tree/b.txt-4' })]);
    expect(await nodeOf('tree')).toMatchObject({ storageClass: null, versionId: null });
  });

  test('a move keeps etag and storage class but not version ids of the old keys; the fresh stat wins', async () => {
    const { commitMutation } = createCommitActivities({ db: stack.client.db });
    const req = { op: 'move', mountId: 'meta', path: 'tree', targetPath: 'moved', idempotencyKey: 'm1' } as unknown as MutationRequest;
    const fresh = [{ ...file('moved/a.txt', 3), versionId: 'v-new-a' }];
    await commitMutation({ journalId: await pending(req), request: req, outcome: outcome('move', fresh, { removed: ['tree'], moved: { from: 'tree', to: 'moved' } }) });
    expect(await nodeOf('moved/a.txt')).toMatchObject({ etag: '"etag-3"', storageClass: 'STANDARD_IA', versionId: 'v-new-a' });
    expect(await nodeOf('moved/b.txt')).toMatchObject({ etag: '"etag-4"', storageClass: 'STANDARD_IA', versionId: null, state: 'ACTIVE' });
    expect(await snapsOf('moved/b.txt')).toEqual([expect.objectContaining({ storageClass: 'STANDARD_IA', versionId: null })]);
    // The source's DELETED snapshot still names the version it had.
    expect((await snapsOf('tree/b.txt')).map((s) => [s.state, s.versionId])).toEqual([
      ['ACTIVE', 'v-tree/b.txt-4'],
      ['DELETED', 'v-tree/b.txt-4'],
    ]);
  });
});
