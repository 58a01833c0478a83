/**
 * Copy and move between two mounts as one workflow, on real Temporal, Postgres and disks (and a
 * real MinIO for the S3 cases): content and sha256 arrive intact, the catalog shows both mounts
 * after one commit, both (mount, path) pairs are locked, a move deletes its source only after the
 * target was verified, and a failure after the target write rolls both sides back.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { and, eq } from 'drizzle-orm';
import { createActivities } from '../../activities';
import { FencePool } from '../../activities/tx-fence';
import { journal, nodes, snapshots, txPlans } from '../../db/schema';
import { toFilestoreError } from '../../src/client';
import { CommitError, ServiceUnavailableError } from '../../src/errors';
import { ExecutorRegistry } from '../../src/executor-registry';
import { runJanitorPass } from '../../src/janitor';
import { crossMountTarget, mutationWorkflowId, type MutationRequest } from '../../src/mutations';
import { MOUNT_MARKER, STAGING_DIR } from '../../src/paths';
import { runCli, stackEnv } from '../helpers/cli';
import { exists, sha256File } from '../helpers/files';
import type { TestBucket } from '../helpers/s3';
import { createTestStack, type TestStack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';

type Acts = ReturnType<typeof createActivities>;

const MiB = 1024 * 1024;
// The worker's S3 executors read these from the environment: a streamed transfer above 5 MiB is a multipart upload.
process.env.FILESTORE_S3_MULTIPART_THRESHOLD = String(5 * MiB);
process.env.FILESTORE_S3_PART_SIZE = String(5 * MiB);

/** Test seams in the worker's activities, keyed by the request's source path; each runs once. */
const hooks = new Map<string, { beforeTransfer?: () => Promise<void>; afterTargetVerify?: () => Promise<void>; afterSourceVerify?: () => Promise<void>; failCommit?: boolean; failAfterTransferOnce?: boolean }>();
/** What ran, per source path, in order. */
const events = new Map<string, string[]>();
const record = (p: string, what: string) => events.set(p, [...(events.get(p) ?? []), what]);

let stack: TestStack;
let rootA: string;
let rootB: string;

beforeAll(async () => {
  stack = await createTestStack({
    activities: (deps) => {
      const real = createActivities(deps);
      const wrapped: Acts = {
        ...real,
        transferToTarget: async (input) => {
          const hook = hooks.get(input.request.path);
          const gate = hook?.beforeTransfer;
          if (gate) {
            delete hook.beforeTransfer;
            await gate();
          }
          record(input.request.path, 'transfer');
          const out = await real.transferToTarget(input);
          if (hook?.failAfterTransferOnce) {
            delete hook.failAfterTransferOnce;
            // The write landed, then the attempt "crashed": Temporal retries with the same txId.
            throw new ServiceUnavailableError('injected', 'the attempt died after writing');
          }
          return out;
        },
        verifyMutation: async (input) => {
          const out = await real.verifyMutation(input);
          const side = input.mountId ?? input.request.mountId;
          // Only the cross-mount mutations' steps (not the puts that set their sources up).
          if (crossMountTarget(input.request) !== null) record(input.request.path, `verify ${side}`);
          const hook = hooks.get(input.request.path);
          if (side !== input.request.mountId && hook?.afterTargetVerify) {
            const fn = hook.afterTargetVerify;
            delete hook.afterTargetVerify;
            await fn();
          }
          if (side === input.request.mountId && crossMountTarget(input.request) !== null && hook?.afterSourceVerify) {
            const fn = hook.afterSourceVerify;
            delete hook.afterSourceVerify;
            await fn();
          }
          return out;
        },
        deleteTransferSource: async (input) => {
          record(input.request.path, 'delete source');
          return real.deleteTransferSource(input);
        },
        commitTransfer: async (input) => {
          if (hooks.get(input.request.path)?.failCommit) throw new CommitError('injected: the catalog refused the commit');
          record(input.request.path, 'commit');
          return real.commitTransfer(input);
        },
        compensateMutation: async (input) => {
          const out = await real.compensateMutation(input);
          const [entry] = await deps.db.select({ path: journal.path }).from(journal).where(eq(journal.id, input.journalId));
          if (entry) record(entry.path, `undo ${input.mountId}`);
          return out;
        },
      };
      return wrapped;
    },
  });
  rootA = await stack.addMount('xa');
  rootB = await stack.addMount('xb');
});
afterAll(async () => stack?.teardown());

async function node(mountId: string, p: string) {
  const [row] = await stack.client.db.select().from(nodes).where(and(eq(nodes.mountId, mountId), eq(nodes.path, p)));
  return row ?? null;
}

async function stagingOf(root: string): Promise<string[]> {
  return fs.readdir(path.join(root, STAGING_DIR)).catch(() => []);
}

/** Puts `bytes` random bytes at xa:`p` through Filestore (so the catalog records its sha256). */
async function putA(p: string, bytes = 3 * 1024 * 1024 + 17): Promise<{ data: Buffer; sha: string }> {
  const data = randomBytes(bytes);
  const file = path.join(stack.tmp, `src-${randomBytes(4).toString('hex')}`);
  await fs.writeFile(file, data);
  await (await stack.client.put('xa', p, { file })).result();
  return { data, sha: createHash('sha256').update(data).digest('hex') };
}

describe('local ↔ local', () => {
  test('copy: same bytes and sha256 on the target, nodes on both mounts, one COMMITTED entry', async () => {
    const { data, sha } = await putA('copy/a.bin');
    const result = await (await stack.client.copy('xa', 'copy/a.bin', 'in/copied.bin', { targetMountId: 'xb' })).result();

    expect(result).toMatchObject({ status: 'COMMITTED', op: 'copy', mountId: 'xa', targetMountId: 'xb', targetPath: 'in/copied.bin', bytesWritten: data.length });
    expect(result.node).toMatchObject({ path: 'in/copied.bin', size: data.length, sha256: sha });
    expect(await sha256File(path.join(rootB, 'in/copied.bin'))).toBe(sha);
    expect(Buffer.compare(await fs.readFile(path.join(rootB, 'in/copied.bin')), data)).toBe(0);
    // The source is untouched.
    expect(await sha256File(path.join(rootA, 'copy/a.bin'))).toBe(sha);

    expect(await node('xa', 'copy/a.bin')).toMatchObject({ state: 'ACTIVE', sha256: sha });
    expect(await node('xb', 'in/copied.bin')).toMatchObject({ state: 'ACTIVE', kind: 'file', sha256: sha, size: data.length, lastJournalId: result.journalId });
    expect(await node('xb', 'in')).toMatchObject({ state: 'ACTIVE', kind: 'directory' });
    const [entry] = await stack.client.db.select().from(journal).where(eq(journal.id, result.journalId));
    expect(entry).toMatchObject({ status: 'COMMITTED', mountId: 'xa', path: 'copy/a.bin', targetMountId: 'xb', targetPath: 'in/copied.bin' });
    const snaps = await stack.client.db.select().from(snapshots).where(eq(snapshots.journalId, result.journalId));
    expect(snaps.map((s) => `${s.mountId}:${s.path}`).sort()).toEqual(['xb:in', 'xb:in/copied.bin']);
    // The target's plan is keyed by (journal id, target mount); staging is gone on both sides.
    const plans = await stack.client.db.select().from(txPlans).where(eq(txPlans.journalId, result.journalId));
    expect(plans.map((p) => p.mountId)).toEqual(['xb']);
    expect(await stagingOf(rootA)).toEqual([]);
    expect(await stagingOf(rootB)).toEqual([]);
  });

  test('copy of a file Filestore did not write (no catalogued hash) still arrives intact', async () => {
    const data = randomBytes(100_000);
    await fs.mkdir(path.join(rootA, 'byhand'), { recursive: true });
    await fs.writeFile(path.join(rootA, 'byhand/x.bin'), data);
    const result = await (await stack.client.copy('xa', 'byhand/x.bin', 'byhand/x.bin', { targetMountId: 'xb' })).result();
    expect(result.node?.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    expect(Buffer.compare(await fs.readFile(path.join(rootB, 'byhand/x.bin')), data)).toBe(0);
  });

  test('move: the source is deleted only after the target was verified; catalog moves across mounts in one commit', async () => {
    const { data, sha } = await putA('move/m.bin');
    let sourceAtTargetVerify: boolean | null = null;
    hooks.set('move/m.bin', { afterTargetVerify: async () => void (sourceAtTargetVerify = await exists(path.join(rootA, 'move/m.bin'))) });
    const result = await (await stack.client.move('xa', 'move/m.bin', 'moved/m.bin', { targetMountId: 'xb' })).result();

    expect(events.get('move/m.bin')).toEqual(['transfer', 'verify xb', 'delete source', 'verify xa', 'commit']);
    expect(sourceAtTargetVerify).toBe(true);
    expect(await exists(path.join(rootA, 'move/m.bin'))).toBe(false);
    expect(Buffer.compare(await fs.readFile(path.join(rootB, 'moved/m.bin')), data)).toBe(0);
    expect(result).toMatchObject({ op: 'move', mountId: 'xa', targetMountId: 'xb', node: { path: 'moved/m.bin', sha256: sha } });

    expect(await node('xa', 'move/m.bin')).toMatchObject({ state: 'DELETED', lastJournalId: result.journalId });
    expect(await node('xb', 'moved/m.bin')).toMatchObject({ state: 'ACTIVE', sha256: sha, lastJournalId: result.journalId });
    const plans = await stack.client.db.select().from(txPlans).where(eq(txPlans.journalId, result.journalId));
    expect(plans.map((p) => p.mountId).sort()).toEqual(['xa', 'xb']);
    expect(await stagingOf(rootA)).toEqual([]);
    expect(await stagingOf(rootB)).toEqual([]);
  });

  test('both (mount, path) pairs are locked: a mutation of the source or the target path during the transfer is refused', async () => {
    await putA('lock/s.bin', 50_000);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let entered = false;
    hooks.set('lock/s.bin', { beforeTransfer: async () => ((entered = true), gate) });
    const handle = await stack.client.move('xa', 'lock/s.bin', 'lock/t.bin', { targetMountId: 'xb' });
    await waitFor('the transfer to start', async () => entered, 30_000);

    await expect((await stack.client.put('xa', 'lock/s.bin', { content: 'rival' }, { overwrite: true })).result()).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect((await stack.client.remove('xa', 'lock', { recursive: true })).result()).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect((await stack.client.put('xb', 'lock/t.bin', { content: 'rival' })).result()).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect((await stack.client.copy('xb', 'byhand/x.bin', 'lock/s.bin', { targetMountId: 'xa' })).result()).rejects.toMatchObject({ code: 'CONFLICT' });
    // The lock is per (mount, path): the same path on the other mount is free.
    await (await stack.client.put('xb', 'lock/s.bin', { content: 'free' })).result();

    release();
    await expect(handle.result()).resolves.toMatchObject({ status: 'COMMITTED' });
    expect(await exists(path.join(rootB, 'lock/t.bin'))).toBe(true);
    expect(await stack.client.listJournal({ status: 'PENDING' })).toEqual([]);
  });

  test('a failure after the target write (the source changed, its delete refused) rolls the target back', async () => {
    await putA('fail/src.bin', 200_000);
    hooks.set('fail/src.bin', { afterTargetVerify: () => fs.appendFile(path.join(rootA, 'fail/src.bin'), 'changed behind our back') });
    const handle = await stack.client.move('xa', 'fail/src.bin', 'fail/dst.bin', { targetMountId: 'xb' });
    await expect(handle.result()).rejects.toMatchObject({ code: 'SOURCE_CHANGED' });

    expect(events.get('fail/src.bin')).toEqual(['transfer', 'verify xb', 'delete source', 'undo xa', 'undo xb']);
    expect(await exists(path.join(rootB, 'fail/dst.bin'))).toBe(false);
    expect((await fs.readFile(path.join(rootA, 'fail/src.bin'))).subarray(-23).toString()).toBe('changed behind our back');
    const [entry] = await stack.client.db.select().from(journal).where(eq(journal.workflowId, handle.workflowId));
    expect(entry).toMatchObject({ status: 'ROLLED_BACK', error: expect.objectContaining({ code: 'SOURCE_CHANGED' }) });
    expect(await node('xb', 'fail/dst.bin')).toBeNull();
    expect(await node('xa', 'fail/src.bin')).toMatchObject({ state: 'ACTIVE' });
    expect(await stagingOf(rootA)).toEqual([]);
    expect(await stagingOf(rootB)).toEqual([]);
  });

  test('a failure after the source delete (the commit refused) restores the source, then removes the target', async () => {
    const { sha } = await putA('fail2/src.bin', 120_000);
    hooks.set('fail2/src.bin', { failCommit: true });
    await expect((await stack.client.move('xa', 'fail2/src.bin', 'fail2/dst.bin', { targetMountId: 'xb' })).result()).rejects.toMatchObject({
      code: 'COMMIT_FAILED',
    });
    expect(events.get('fail2/src.bin')).toEqual(['transfer', 'verify xb', 'delete source', 'verify xa', 'undo xa', 'undo xb']);
    expect(await sha256File(path.join(rootA, 'fail2/src.bin'))).toBe(sha);
    expect(await exists(path.join(rootB, 'fail2/dst.bin'))).toBe(false);
    expect(await exists(path.join(rootB, 'fail2'))).toBe(false);
    expect(await node('xa', 'fail2/src.bin')).toMatchObject({ state: 'ACTIVE', sha256: sha });
  });

  test('a retried transfer with the same txId reaches the same state (the write answers from its plan)', async () => {
    const { data, sha } = await putA('retry/r.bin', 300_000);
    hooks.set('retry/r.bin', { failAfterTransferOnce: true });
    const result = await (await stack.client.copy('xa', 'retry/r.bin', 'retry/r.bin', { targetMountId: 'xb' })).result();
    expect(events.get('retry/r.bin')?.filter((e) => e === 'transfer')).toHaveLength(2);
    expect(result.node).toMatchObject({ sha256: sha, size: data.length, version: 1 });
    expect(Buffer.compare(await fs.readFile(path.join(rootB, 'retry/r.bin')), data)).toBe(0);
    expect(await stagingOf(rootB)).toEqual([]);
  });

  test('a move whose workflow is gone after the source delete: the janitor restores the source, then removes the target', async () => {
    const { sha } = await putA('jan/j.bin', 150_000);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let entered = false;
    hooks.set('jan/j.bin', { afterSourceVerify: async () => ((entered = true), gate) });
    const handle = await stack.client.move('xa', 'jan/j.bin', 'jan/j.bin', { targetMountId: 'xb' });
    await waitFor('the source delete to be verified', async () => entered, 30_000);
    expect(await exists(path.join(rootA, 'jan/j.bin'))).toBe(false);
    expect(await exists(path.join(rootB, 'jan/j.bin'))).toBe(true);
    await stack.client.temporal.workflow.getHandle(handle.workflowId).terminate('test: the workflow is gone');
    release();

    const fences = new FencePool(stack.config.databaseUrl, { idleTimeoutMs: 5000 });
    try {
      const ended = await runJanitorPass({ db: stack.client.db, executors: new ExecutorRegistry(stack.client.db), fences, temporal: stack.client.temporal, serves: () => true, graceMs: 0 });
      expect(ended).toBeGreaterThanOrEqual(1);
    } finally {
      await fences.close();
    }
    const [entry] = await stack.client.db.select().from(journal).where(eq(journal.workflowId, handle.workflowId));
    expect(entry).toMatchObject({ status: 'ROLLED_BACK', error: expect.objectContaining({ code: 'WORKFLOW_GONE' }) });
    expect(await sha256File(path.join(rootA, 'jan/j.bin'))).toBe(sha);
    expect(await exists(path.join(rootB, 'jan/j.bin'))).toBe(false);
    expect(await exists(path.join(rootB, 'jan'))).toBe(false);
  });

  test('same idempotency key twice → one execution, the same result', async () => {
    await putA('idem/i.bin', 10_000);
    const key = `xm-idem-${Date.now()}`;
    const first = await (await stack.client.copy('xa', 'idem/i.bin', 'idem/i.bin', { targetMountId: 'xb', idempotencyKey: key })).result();
    const again = await (await stack.client.copy('xa', 'idem/i.bin', 'idem/i.bin', { targetMountId: 'xb', idempotencyKey: key })).result();
    expect(again).toEqual(first);
    expect(await stack.client.db.select().from(journal).where(eq(journal.idempotencyKey, key))).toHaveLength(1);
    // The same key for another target mount is another request.
    await stack.addMount('xc');
    await expect(stack.client.copy('xa', 'idem/i.bin', 'idem/i.bin', { targetMountId: 'xc', idempotencyKey: key }).then((h) => h.result())).rejects.toMatchObject({
      code: 'IDEMPOTENCY_KEY_REUSED',
    });
  });

  test('a read-only target → READ_ONLY_MOUNT, nothing written, no entry; a read-only source may be copied from', async () => {
    const roRoot = await stack.addMount('xro', { readOnly: true });
    await putA('ro/a.bin', 1000);
    // The client refuses early …
    await expect(stack.client.copy('xa', 'ro/a.bin', 'a.bin', { targetMountId: 'xro' })).rejects.toMatchObject({ code: 'READ_ONLY_MOUNT' });
    // … and the workflow itself, for a caller that skips the client.
    const req: MutationRequest = { op: 'copy', idempotencyKey: `ro-${Date.now()}`, mountId: 'xa', path: 'ro/a.bin', targetPath: 'a.bin', targetMountId: 'xro' };
    const workflowId = mutationWorkflowId('xa', 'copy', req.idempotencyKey);
    const started = await stack.client.temporal.workflow.start('mutationWorkflow', { taskQueue: stack.config.taskQueue, workflowId, args: [req] });
    const err = await started.result().catch(toFilestoreError);
    expect(err).toMatchObject({ code: 'READ_ONLY_MOUNT', details: { mountId: 'xro' } });
    expect((await fs.readdir(roRoot)).filter((n) => n !== MOUNT_MARKER)).toEqual([]);
    expect(await stack.client.db.select().from(journal).where(eq(journal.workflowId, workflowId))).toEqual([]);
    // A move out of a read-only mount writes it (the source delete): refused.
    await fs.writeFile(path.join(roRoot, 'r.txt'), 'read me');
    await expect(stack.client.move('xro', 'r.txt', 'from-ro/r.txt', { targetMountId: 'xa' })).rejects.toMatchObject({ code: 'READ_ONLY_MOUNT' });
    // Copying from it only reads it.
    await (await stack.client.copy('xro', 'r.txt', 'from-ro/r.txt', { targetMountId: 'xa' })).result();
    expect(await fs.readFile(path.join(rootA, 'from-ro/r.txt'), 'utf8')).toBe('read me');
    expect(await fs.readFile(path.join(roRoot, 'r.txt'), 'utf8')).toBe('read me');
  });

  test('a directory source → UNSUPPORTED, nothing written', async () => {
    await putA('dir/one.bin', 100);
    const handle = await stack.client.copy('xa', 'dir', 'dir-copy', { targetMountId: 'xb', recursive: true });
    await expect(handle.result()).rejects.toMatchObject({ code: 'UNSUPPORTED', message: expect.stringContaining('between mounts') });
    expect(await exists(path.join(rootB, 'dir-copy'))).toBe(false);
    const [entry] = await stack.client.db.select().from(journal).where(eq(journal.workflowId, handle.workflowId));
    expect(entry.status).toBe('FAILED');
  });

  test('CLI: filestore cp a:x b:y and mv a:x b:y cross mounts', async () => {
    const { sha } = await putA('cli/c.bin', 5000);
    const env = stackEnv(stack.config);
    const cp = await runCli(env, 'cp', 'xa:cli/c.bin', 'xb:cli/copy.bin', '--json');
    expect(cp).toMatchObject({ code: 0 });
    expect(JSON.parse(cp.stdout.trim().split('\n').pop()!)).toMatchObject({ status: 'COMMITTED', mountId: 'xa', targetMountId: 'xb', targetPath: 'cli/copy.bin' });
    expect(await sha256File(path.join(rootB, 'cli/copy.bin'))).toBe(sha);

    const mv = await runCli(env, 'mv', 'xa:cli/c.bin', 'xb:cli/moved.bin');
    expect(mv.code).toBe(0);
    expect(mv.stdout).toContain('workflow filestore:xa:move:');
    expect(await exists(path.join(rootA, 'cli/c.bin'))).toBe(false);
    expect(await sha256File(path.join(rootB, 'cli/moved.bin'))).toBe(sha);

    const refused = await runCli(env, 'cp', '-r', 'xa:cli', 'xb:cli-tree');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/^filestore: UNSUPPORTED: .*between mounts/m);
  });

  test('a local target not on the transfer host → MOUNT_NOT_REACHABLE (permanent), nothing written, entry FAILED', async () => {
    const farRoot = await stack.addMount('xfar');
    // The mount's disk is "elsewhere": this host has no marker for it, so no worker here serves it.
    await fs.rm(path.join(farRoot, MOUNT_MARKER));
    await stack.worker?.refreshMounts();
    await putA('far/a.bin', 1000);
    const handle = await stack.client.copy('xa', 'far/a.bin', 'a.bin', { targetMountId: 'xfar' });
    const err = await handle.result().catch((e) => e);
    expect(err).toMatchObject({ code: 'MOUNT_NOT_REACHABLE', retryable: false, details: { mountId: 'xfar' } });
    expect(err.message).toContain('both local mounts must be on one host');
    expect(await fs.readdir(farRoot)).toEqual([]);
    const [entry] = await stack.client.db.select().from(journal).where(eq(journal.workflowId, handle.workflowId));
    expect(entry.status).toBe('FAILED');
  });
});

describe('with S3 (real MinIO)', () => {
  let s1: TestBucket;
  let s2: TestBucket;
  // xs2 lives under a key prefix of its own bucket: xs1 → xs2 crosses buckets and prefixes.
  const PREFIX2 = 'estate';
  const key2 = (p: string) => `${PREFIX2}/${p}`;

  beforeAll(async () => {
    s1 = await stack.addS3Mount('xs1');
    s2 = await stack.addS3Mount('xs2', { prefix: PREFIX2 });
  }, 120_000);

  async function objectSha(b: TestBucket, key: string): Promise<string | null> {
    const res = await b.client.send(new GetObjectCommand({ Bucket: b.bucket, Key: key })).catch((err: Error) => {
      if (err.name === 'NoSuchKey' || err.name === 'NotFound') return null;
      throw err;
    });
    if (!res) return null;
    const hash = createHash('sha256');
    for await (const chunk of res.Body as Readable) hash.update(chunk as Buffer);
    return hash.digest('hex');
  }

  async function etagOf(b: TestBucket, key: string): Promise<string> {
    const h = await b.client.send(new HeadObjectCommand({ Bucket: b.bucket, Key: key }));
    return h.ETag!.replace(/"/g, '');
  }

  /** No staging object and no other key than `keep` below the bucket's staging folder (none at all). */
  async function stagingKeys(b: TestBucket, prefix = ''): Promise<string[]> {
    const page = await b.client.send(new ListObjectsV2Command({ Bucket: b.bucket, Prefix: `${prefix}${STAGING_DIR}/` }));
    return (page.Contents ?? []).map((o) => o.Key!);
  }

  test('local → S3 copy (a streamed multipart upload): the object has the bytes, both catalogs, COMMITTED', async () => {
    const { data, sha } = await putA('s3/big.bin', 12 * MiB + 5);
    const result = await (await stack.client.copy('xa', 's3/big.bin', 'in/big.bin', { targetMountId: 'xs1' })).result();
    expect(result).toMatchObject({ status: 'COMMITTED', mountId: 'xa', targetMountId: 'xs1', bytesWritten: data.length, node: { sha256: sha, size: data.length } });
    expect(await objectSha(s1, 'in/big.bin')).toBe(sha);
    const etag = await etagOf(s1, 'in/big.bin');
    expect(etag).toMatch(/-\d+$/); // multipart
    expect(await node('xs1', 'in/big.bin')).toMatchObject({ state: 'ACTIVE', kind: 'file', sha256: sha, size: data.length, etag });
    expect(await node('xa', 's3/big.bin')).toMatchObject({ state: 'ACTIVE', sha256: sha });
    const [entry] = await stack.client.db.select().from(journal).where(eq(journal.id, result.journalId));
    expect(entry).toMatchObject({ status: 'COMMITTED', mountId: 'xa', targetMountId: 'xs1' });
    expect(await stagingKeys(s1)).toEqual([]);
    expect(await stagingOf(rootA)).toEqual([]);
  });

  test('local → S3 move: the object is written and verified before the local file is deleted', async () => {
    const { sha } = await putA('s3/mv.bin', 700_000);
    let objectAtSourceDelete: string | null = null;
    hooks.set('s3/mv.bin', { afterTargetVerify: async () => void (objectAtSourceDelete = await objectSha(s1, 'moved/mv.bin')) });
    const result = await (await stack.client.move('xa', 's3/mv.bin', 'moved/mv.bin', { targetMountId: 'xs1' })).result();
    expect(events.get('s3/mv.bin')).toEqual(['transfer', 'verify xs1', 'delete source', 'verify xa', 'commit']);
    expect(objectAtSourceDelete).toBe(sha);
    expect(await exists(path.join(rootA, 's3/mv.bin'))).toBe(false);
    expect(await objectSha(s1, 'moved/mv.bin')).toBe(sha);
    expect(await node('xa', 's3/mv.bin')).toMatchObject({ state: 'DELETED', lastJournalId: result.journalId });
    expect(await node('xs1', 'moved/mv.bin')).toMatchObject({ state: 'ACTIVE', sha256: sha, lastJournalId: result.journalId });
  });

  test('S3 → local move: the file lands on the local mount, then the object is deleted', async () => {
    const data = randomBytes(400_000);
    const sha = createHash('sha256').update(data).digest('hex');
    const file = path.join(stack.tmp, 'down.bin');
    await fs.writeFile(file, data);
    await (await stack.client.put('xs1', 'down/o.bin', { file })).result();
    const result = await (await stack.client.move('xs1', 'down/o.bin', 'from-s3/o.bin', { targetMountId: 'xa' })).result();
    expect(result).toMatchObject({ mountId: 'xs1', targetMountId: 'xa', node: { sha256: sha } });
    expect(await sha256File(path.join(rootA, 'from-s3/o.bin'))).toBe(sha);
    expect(await objectSha(s1, 'down/o.bin')).toBeNull();
    expect(await node('xs1', 'down/o.bin')).toMatchObject({ state: 'DELETED' });
    expect(await node('xa', 'from-s3/o.bin')).toMatchObject({ state: 'ACTIVE', sha256: sha });
    expect(await stagingKeys(s1)).toEqual([]);
  });

  test('S3 → S3 across buckets: copy then move, bytes and catalog on both', async () => {
    const data = randomBytes(6 * MiB + 1);
    const sha = createHash('sha256').update(data).digest('hex');
    const file = path.join(stack.tmp, 'across.bin');
    await fs.writeFile(file, data);
    await (await stack.client.put('xs1', 'x/a.bin', { file })).result();

    const copied = await (await stack.client.copy('xs1', 'x/a.bin', 'y/a-copy.bin', { targetMountId: 'xs2' })).result();
    expect(copied).toMatchObject({ mountId: 'xs1', targetMountId: 'xs2', node: { sha256: sha, size: data.length } });
    expect(await objectSha(s2, key2('y/a-copy.bin'))).toBe(sha);
    expect(await objectSha(s1, 'x/a.bin')).toBe(sha);
    expect(await node('xs2', 'y/a-copy.bin')).toMatchObject({ state: 'ACTIVE', sha256: sha, etag: await etagOf(s2, key2('y/a-copy.bin')) });

    const moved = await (await stack.client.move('xs1', 'x/a.bin', 'y/a.bin', { targetMountId: 'xs2' })).result();
    expect(moved.node).toMatchObject({ sha256: sha });
    expect(await objectSha(s2, key2('y/a.bin'))).toBe(sha);
    expect(await objectSha(s1, 'x/a.bin')).toBeNull();
    expect(await node('xs1', 'x/a.bin')).toMatchObject({ state: 'DELETED', lastJournalId: moved.journalId });
    expect(await node('xs2', 'y/a.bin')).toMatchObject({ state: 'ACTIVE', lastJournalId: moved.journalId });
    expect(await stagingKeys(s1)).toEqual([]);
    expect(await stagingKeys(s2, `${PREFIX2}/`)).toEqual([]);
  });

  test('S3 → local move whose source object changes after the transfer: source kept, local target rolled back', async () => {
    const file = path.join(stack.tmp, 'chg.bin');
    await fs.writeFile(file, randomBytes(90_000));
    await (await stack.client.put('xs1', 'chg/o.bin', { file })).result();
    hooks.set('chg/o.bin', {
      afterTargetVerify: async () => void (await s1.client.send(new PutObjectCommand({ Bucket: s1.bucket, Key: 'chg/o.bin', Body: 'rewritten out of band' }))),
    });
    const handle = await stack.client.move('xs1', 'chg/o.bin', 'chg/o.bin', { targetMountId: 'xa' });
    await expect(handle.result()).rejects.toMatchObject({ code: 'SOURCE_CHANGED' });
    expect(await exists(path.join(rootA, 'chg/o.bin'))).toBe(false);
    expect(await objectSha(s1, 'chg/o.bin')).toBe(createHash('sha256').update('rewritten out of band').digest('hex'));
    const [entry] = await stack.client.db.select().from(journal).where(eq(journal.workflowId, handle.workflowId));
    expect(entry.status).toBe('ROLLED_BACK');
    expect(await node('xa', 'chg/o.bin')).toBeNull();
    expect(await stagingOf(rootA)).toEqual([]);
  });

  test('local → S3 move whose commit fails: the local file is restored and the object removed', async () => {
    const { sha } = await putA('s3fail/f.bin', 300_000);
    hooks.set('s3fail/f.bin', { failCommit: true });
    await expect((await stack.client.move('xa', 's3fail/f.bin', 's3fail/f.bin', { targetMountId: 'xs1' })).result()).rejects.toMatchObject({ code: 'COMMIT_FAILED' });
    expect(await sha256File(path.join(rootA, 's3fail/f.bin'))).toBe(sha);
    expect(await objectSha(s1, 's3fail/f.bin')).toBeNull();
    expect(await node('xs1', 's3fail/f.bin')).toBeNull();
    expect(await stagingKeys(s1)).toEqual([]);
  });

  test('a read-only S3 target → READ_ONLY_MOUNT, nothing written', async () => {
    const ro = await stack.addS3Mount('xs-ro', { readOnly: true });
    await putA('s3ro/a.bin', 100);
    await expect(stack.client.copy('xa', 's3ro/a.bin', 'a.bin', { targetMountId: 'xs-ro' })).rejects.toMatchObject({ code: 'READ_ONLY_MOUNT' });
    const page = await ro.client.send(new ListObjectsV2Command({ Bucket: ro.bucket }));
    expect(page.Contents ?? []).toEqual([]);
  });
});
