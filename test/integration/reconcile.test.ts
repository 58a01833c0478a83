/**
 * Reconcile (issue 9, deliverable 2) on real Temporal, Postgres, disk and MinIO: a file changed
 * behind Filestore's back is found by the drift processor (a `check` job, as the watcher would
 * run it) and marked INCONSISTENT; a write is then refused with INCONSISTENT_NODE naming
 * `filestore reconcile`; reconcile accepts what the backend shows (new sha256, size, version, a
 * snapshot, drift events resolved, ACTIVE again) and a normal write succeeds afterwards.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { and, eq, isNull, sql } from 'drizzle-orm';
import { driftEvents, journal, nodes, snapshots } from '../../db/schema';
import { ExecutorRegistry } from '../../src/executor-registry';
import type { MutationHandle } from '../../src/client';
import { runDriftJob } from '../../src/watcher/drift-processor';
import { sha256 } from '../helpers/files';
import type { TestBucket } from '../helpers/s3';
import { createTestStack, type TestStack } from '../helpers/stack';

const LOCAL = 'rec-local';
const S3 = 'rec-s3';
const RO = 'rec-ro';

let stack: TestStack;
let root: string;
let roRoot: string;
let bucket: TestBucket;
let registry: ExecutorRegistry;

beforeAll(async () => {
  stack = await createTestStack();
  root = await stack.addMount(LOCAL);
  bucket = await stack.addS3Mount(S3);
  registry = new ExecutorRegistry(stack.client.db);
}, 120_000);
afterAll(async () => stack?.teardown());

async function commit(started: Promise<MutationHandle>) {
  return (await started).result();
}

/** What the watcher's processor does for a changed path: stat, compare, mark INCONSISTENT, record drift. */
async function detectDrift(mountId: string, paths: string[]): Promise<number> {
  const res = await runDriftJob({ db: stack.client.db, executors: registry }, { kind: 'check', mountId, paths, firstEventAt: Date.now() }, 'reconcile-test');
  return res.detected;
}

async function node(mountId: string, p: string) {
  return stack.client.getNode(mountId, p);
}

async function openDrift(mountId: string, p: string) {
  return stack.client.db
    .select()
    .from(driftEvents)
    .where(and(eq(driftEvents.mountId, mountId), eq(driftEvents.path, p), isNull(driftEvents.resolvedAt)));
}

const outOfBand = {
  put: (key: string, body: string) => bucket.client.send(new PutObjectCommand({ Bucket: bucket.bucket, Key: key, Body: body })),
  delete: (key: string) => bucket.client.send(new DeleteObjectCommand({ Bucket: bucket.bucket, Key: key })),
};

describe.each([
  {
    name: 'local',
    mount: LOCAL,
    change: (p: string, body: string) => fs.writeFile(path.join(root, p), body),
  },
  {
    name: 'S3',
    mount: S3,
    change: (p: string, body: string) => outOfBand.put(p, body).then(() => undefined),
  },
])('$name mount: a file changed behind Filestore’s back', ({ mount, change }) => {
  test('is refused INCONSISTENT_NODE naming `filestore reconcile`; reconcile accepts the backend; a write then succeeds', async () => {
    const written = await commit(stack.client.put(mount, 'docs/report.txt', { content: 'as Filestore wrote it' }));
    expect(written.node).toMatchObject({ version: 1, sha256: sha256('as Filestore wrote it') });

    const edited = 'edited out of band, and longer than before';
    await change('docs/report.txt', edited);
    expect(await detectDrift(mount, ['docs/report.txt'])).toBe(1);
    expect(await node(mount, 'docs/report.txt')).toMatchObject({ state: 'INCONSISTENT', version: 1 });
    expect(await openDrift(mount, 'docs/report.txt')).toHaveLength(1);

    const refused = await stack.client.put(mount, 'docs/report.txt', { content: 'new' }, { overwrite: true });
    await expect(refused.result()).rejects.toMatchObject({
      code: 'INCONSISTENT_NODE',
      message: expect.stringContaining(`filestore reconcile ${mount}:docs/report.txt`),
    });

    const handle = await stack.client.reconcile(mount, 'docs/report.txt');
    expect(handle.workflowId).toBe(`filestore:${mount}:reconcile:${handle.idempotencyKey}`);
    const result = await handle.result();
    expect(result).toMatchObject({
      status: 'COMMITTED',
      op: 'reconcile',
      mountId: mount,
      path: 'docs/report.txt',
      targetPath: null,
      nodesAffected: 1,
      bytesWritten: 0,
      node: { path: 'docs/report.txt', kind: 'file', size: Buffer.byteLength(edited), sha256: sha256(edited), version: 2 },
    });
    const [entry] = await stack.client.db.select().from(journal).where(eq(journal.id, result.journalId));
    expect(entry).toMatchObject({ status: 'COMMITTED', op: 'reconcile', path: 'docs/report.txt' });
    expect(await node(mount, 'docs/report.txt')).toMatchObject({
      state: 'ACTIVE',
      version: 2,
      size: Buffer.byteLength(edited),
      sha256: sha256(edited),
      lastJournalId: result.journalId,
    });
    const snaps = await stack.client.db.select().from(snapshots).where(eq(snapshots.journalId, result.journalId));
    expect(snaps).toEqual([expect.objectContaining({ path: 'docs/report.txt', version: 2, state: 'ACTIVE', sha256: sha256(edited) })]);
    expect(await openDrift(mount, 'docs/report.txt')).toHaveLength(0);
    // The processor, looking again, sees nothing to report.
    expect(await detectDrift(mount, ['docs/report.txt'])).toBe(0);

    const after = await commit(stack.client.put(mount, 'docs/report.txt', { content: 'written after reconcile' }, { overwrite: true }));
    expect(after.node).toMatchObject({ version: 3, sha256: sha256('written after reconcile') });
  }, 120_000);

  test('recursive reconcile of a subtree: added, modified and removed files', async () => {
    await commit(stack.client.put(mount, 'tree/keep.txt', { content: 'keep' }));
    await commit(stack.client.put(mount, 'tree/mod.txt', { content: 'before' }));
    await commit(stack.client.put(mount, 'tree/sub/gone.txt', { content: 'to be removed' }));
    await commit(stack.client.put(mount, 'tree/sub/deeper/gone-too.txt', { content: 'to be removed too' }));
    const keepBefore = await node(mount, 'tree/keep.txt');

    await change('tree/mod.txt', 'after, modified');
    if (mount === LOCAL) {
      await fs.mkdir(path.join(root, 'tree/new'), { recursive: true });
      await fs.writeFile(path.join(root, 'tree/new/added.txt'), 'added');
      await fs.rm(path.join(root, 'tree/sub'), { recursive: true });
    } else {
      await outOfBand.put('tree/new/added.txt', 'added');
      await outOfBand.delete('tree/sub/gone.txt');
      await outOfBand.delete('tree/sub/deeper/gone-too.txt');
    }
    await detectDrift(mount, ['tree/mod.txt', 'tree/new/added.txt', 'tree/sub/gone.txt']);
    expect(await node(mount, 'tree/mod.txt')).toMatchObject({ state: 'INCONSISTENT' });

    const result = await commit(stack.client.reconcile(mount, 'tree', { recursive: true }));
    expect(result).toMatchObject({ op: 'reconcile', node: { path: 'tree', kind: 'directory' } });
    expect(await node(mount, 'tree/mod.txt')).toMatchObject({ state: 'ACTIVE', sha256: sha256('after, modified'), size: 15, version: 2 });
    expect(await node(mount, 'tree/new/added.txt')).toMatchObject({ state: 'ACTIVE', kind: 'file', sha256: sha256('added'), lastJournalId: result.journalId });
    expect(await node(mount, 'tree/new')).toMatchObject({ state: 'ACTIVE', kind: 'directory' });
    for (const p of ['tree/sub', 'tree/sub/gone.txt', 'tree/sub/deeper', 'tree/sub/deeper/gone-too.txt']) {
      expect(await node(mount, p)).toMatchObject({ state: 'DELETED', lastJournalId: result.journalId });
    }
    // Unchanged: no new version.
    expect(await node(mount, 'tree/keep.txt')).toMatchObject({ state: 'ACTIVE', version: keepBefore!.version, lastJournalId: keepBefore!.lastJournalId });
    for (const p of ['tree/mod.txt', 'tree/new/added.txt', 'tree/sub/gone.txt']) expect(await openDrift(mount, p)).toHaveLength(0);
    const inconsistent = await stack.client.db.select().from(nodes).where(and(eq(nodes.mountId, mount), eq(nodes.state, 'INCONSISTENT')));
    expect(inconsistent.filter((n) => n.path.startsWith('tree'))).toEqual([]);
    // A second reconcile of an unchanged tree changes nothing.
    const again = await commit(stack.client.reconcile(mount, 'tree', { recursive: true }));
    expect(again.nodesAffected).toBe(0);
  }, 120_000);
});

describe('read-only mount', () => {
  test('reconcile works (it only reads the backend); writes stay refused', async () => {
    roRoot = await stack.addMount(RO);
    await commit(stack.client.put(RO, 'a.txt', { content: 'first' }));
    await stack.client.setMountOptions(RO, { readOnly: true });
    await fs.writeFile(path.join(roRoot, 'a.txt'), 'changed on a read-only mount');
    await detectDrift(RO, ['a.txt']);
    expect(await node(RO, 'a.txt')).toMatchObject({ state: 'INCONSISTENT' });

    await expect(stack.client.put(RO, 'a.txt', { content: 'x' }, { overwrite: true, force: true })).rejects.toMatchObject({ code: 'READ_ONLY_MOUNT' });
    const result = await commit(stack.client.reconcile(RO, 'a.txt'));
    expect(result.node).toMatchObject({ sha256: sha256('changed on a read-only mount'), version: 2 });
    expect(await node(RO, 'a.txt')).toMatchObject({ state: 'ACTIVE' });
  }, 120_000);
});

describe('journal and errors', () => {
  test('the same idempotency key twice answers with the same journal entry', async () => {
    await commit(stack.client.put(LOCAL, 'idem.txt', { content: 'one' }));
    await fs.writeFile(path.join(root, 'idem.txt'), 'two, out of band');
    const key = 'reconcile-idem-key';
    const first = await commit(stack.client.reconcile(LOCAL, 'idem.txt', { idempotencyKey: key }));
    // Changed again: a replay under the key must not capture anew.
    await fs.writeFile(path.join(root, 'idem.txt'), 'three, out of band');
    const second = await commit(stack.client.reconcile(LOCAL, 'idem.txt', { idempotencyKey: key }));
    expect(second).toEqual(first);
    const entries = await stack.client.db.select().from(journal).where(eq(journal.idempotencyKey, key));
    expect(entries).toHaveLength(1);
    expect(await node(LOCAL, 'idem.txt')).toMatchObject({ sha256: sha256('two, out of band'), version: 2 });
    // The same key for another request is refused.
    await expect(commit(stack.client.reconcile(LOCAL, 'idem.txt', { idempotencyKey: key, recursive: true }))).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  }, 120_000);

  test('a path neither the backend nor the catalog knows: NOT_FOUND', async () => {
    await expect(commit(stack.client.reconcile(LOCAL, 'never/was.txt'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(commit(stack.client.reconcile(S3, 'never/was.txt'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  }, 120_000);

  test('a path the catalog knows but the backend lost is marked DELETED, with its subtree', async () => {
    await commit(stack.client.put(LOCAL, 'lost/x.txt', { content: 'x' }));
    await fs.rm(path.join(root, 'lost'), { recursive: true });
    const result = await commit(stack.client.reconcile(LOCAL, 'lost'));
    expect(result).toMatchObject({ op: 'reconcile', node: null, nodesAffected: 2 });
    expect(await node(LOCAL, 'lost')).toMatchObject({ state: 'DELETED' });
    expect(await node(LOCAL, 'lost/x.txt')).toMatchObject({ state: 'DELETED' });
  }, 120_000);

  test('a file added out of band in a new directory: the file and its parent are recorded', async () => {
    await fs.mkdir(path.join(root, 'fresh/dir'), { recursive: true });
    await fs.writeFile(path.join(root, 'fresh/dir/new.txt'), 'new');
    const result = await commit(stack.client.reconcile(LOCAL, 'fresh/dir/new.txt'));
    expect(result.node).toMatchObject({ kind: 'file', version: 1, sha256: sha256('new') });
    expect(await node(LOCAL, 'fresh')).toMatchObject({ state: 'ACTIVE', kind: 'directory' });
    expect(await node(LOCAL, 'fresh/dir')).toMatchObject({ state: 'ACTIVE', kind: 'directory' });
  }, 120_000);

  test('a tree larger than a payload holds (600 files added out of band) is captured through outcome_nodes', async () => {
    const dir = path.join(root, 'many');
    await fs.mkdir(dir);
    for (let i = 0; i < 600; i++) await fs.writeFile(path.join(dir, `f${String(i).padStart(4, '0')}.txt`), `file ${i}`);
    const result = await commit(stack.client.reconcile(LOCAL, 'many', { recursive: true }));
    expect(result.nodesAffected).toBe(601);
    const rows = await stack.client.listNodes(LOCAL, 'many', { limit: 1000 });
    expect(rows).toHaveLength(600);
    expect(rows.find((r) => r.path === 'many/f0599.txt')).toMatchObject({ state: 'ACTIVE', sha256: sha256('file 599'), lastJournalId: result.journalId });
    // The stored capture went with the commit.
    const [{ n }] = (await stack.client.db.execute<{ n: number }>(sql`SELECT count(*)::int AS n FROM outcome_nodes WHERE journal_id = ${result.journalId}::uuid`)).rows;
    expect(n).toBe(0);
  }, 120_000);

  test('more entries than FILESTORE_MAX_TREE_ENTRIES: TREE_TOO_LARGE, nothing changed', async () => {
    const small = await createTestStack({ config: { maxTreeEntries: 3 } });
    try {
      const r = await small.addMount('tiny');
      for (const n of ['a', 'b', 'c', 'd']) await fs.mkdir(path.join(r, 'big', n), { recursive: true });
      await expect(commit(small.client.reconcile('tiny', 'big', { recursive: true }))).rejects.toMatchObject({ code: 'TREE_TOO_LARGE' });
      expect(await small.client.getNode('tiny', 'big')).toBeNull();
    } finally {
      await small.teardown();
    }
  }, 120_000);
});
