/**
 * Mutations on nodes the catalog marks INCONSISTENT (changed behind Filestore's back) are refused
 * with INCONSISTENT_NODE — no journal entry, nothing touched on disk — unless forced; a forced
 * mutation commits like any other and leaves its nodes ACTIVE (or DELETED) with a new version.
 * The drift watcher is not needed: nodes are marked directly in the catalog.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { and, eq, sql } from 'drizzle-orm';
import { journal, nodes } from '../../db/schema';
import type { MutationHandle } from '../../src/client';
import { exists } from '../helpers/files';
import { createTestStack, type TestStack } from '../helpers/stack';

const MOUNT = 'inc';

let stack: TestStack;
let root: string;

beforeAll(async () => {
  stack = await createTestStack();
  root = await stack.addMount(MOUNT);
});
afterAll(async () => stack?.teardown());

async function commit(started: Promise<MutationHandle>) {
  return (await started).result();
}

/** What the drift watcher would do: tag the node INCONSISTENT (state only, same version). */
async function markInconsistent(p: string): Promise<void> {
  const rows = await stack.client.db
    .update(nodes)
    .set({ state: 'INCONSISTENT' })
    .where(and(eq(nodes.mountId, MOUNT), eq(nodes.path, p)))
    .returning({ id: nodes.id });
  expect(rows).toHaveLength(1);
}

async function node(p: string) {
  return stack.client.getNode(MOUNT, p);
}

async function journalCount(): Promise<number> {
  const [row] = await stack.client.db.select({ n: sql<number>`count(*)::int` }).from(journal).where(eq(journal.mountId, MOUNT));
  return row.n;
}

async function expectRefused(started: Promise<MutationHandle>, inconsistentPath: string): Promise<void> {
  await expect((await started).result()).rejects.toMatchObject({
    code: 'INCONSISTENT_NODE',
    name: 'InconsistentNodeError',
    details: { mountId: MOUNT, path: inconsistentPath },
    message: expect.stringContaining('pass force'),
  });
}

describe('refused without force', () => {
  beforeAll(async () => {
    await commit(stack.client.put(MOUNT, 'docs/a.txt', { content: 'catalogued' }));
    await commit(stack.client.put(MOUNT, 'docs/b.txt', { content: 'bee' }));
    await commit(stack.client.put(MOUNT, 'docs/deep/c.txt', { content: 'sea' }));
    // Changed behind Filestore's back, then tagged by the watcher.
    await fs.writeFile(path.join(root, 'docs/a.txt'), 'changed behind the back');
    await markInconsistent('docs/a.txt');
  });

  test('put overwrite, rm, mv and cp of the node, and mv / cp onto it: refused, disk and journal untouched', async () => {
    const before = await journalCount();
    const c = stack.client;

    await expectRefused(c.put(MOUNT, 'docs/a.txt', { content: 'new' }, { overwrite: true }), 'docs/a.txt');
    await expectRefused(c.remove(MOUNT, 'docs/a.txt'), 'docs/a.txt');
    await expectRefused(c.move(MOUNT, 'docs/a.txt', 'moved.txt'), 'docs/a.txt');
    await expectRefused(c.copy(MOUNT, 'docs/a.txt', 'copied.txt'), 'docs/a.txt');
    await expectRefused(c.move(MOUNT, 'docs/b.txt', 'docs/a.txt', { overwrite: true }), 'docs/a.txt');
    await expectRefused(c.copy(MOUNT, 'docs/b.txt', 'docs/a.txt', { overwrite: true }), 'docs/a.txt');

    expect(await fs.readFile(path.join(root, 'docs/a.txt'), 'utf8')).toBe('changed behind the back');
    expect(await fs.readFile(path.join(root, 'docs/b.txt'), 'utf8')).toBe('bee');
    expect(await exists(path.join(root, 'moved.txt'))).toBe(false);
    expect(await exists(path.join(root, 'copied.txt'))).toBe(false);
    expect(await journalCount()).toBe(before);
    expect(await node('docs/a.txt')).toMatchObject({ state: 'INCONSISTENT', version: 1 });
    expect(await node('docs/b.txt')).toMatchObject({ state: 'ACTIVE', version: 1 });
  });

  test('rm -r, mv and cp -r of a parent directory: refused for the node below', async () => {
    const before = await journalCount();
    await expectRefused(stack.client.remove(MOUNT, 'docs', { recursive: true }), 'docs/a.txt');
    await expectRefused(stack.client.move(MOUNT, 'docs', 'archive'), 'docs/a.txt');
    await expectRefused(stack.client.copy(MOUNT, 'docs', 'backup', { recursive: true }), 'docs/a.txt');

    expect(await exists(path.join(root, 'docs/deep/c.txt'))).toBe(true);
    expect(await exists(path.join(root, 'archive'))).toBe(false);
    expect(await exists(path.join(root, 'backup'))).toBe(false);
    expect(await journalCount()).toBe(before);
    expect(await node('docs')).toMatchObject({ state: 'ACTIVE' });
  });

  test('mutations that do not act on the node still commit (a sibling, a subtree beside it)', async () => {
    await commit(stack.client.put(MOUNT, 'docs/b.txt', { content: 'bee 2' }, { overwrite: true }));
    await commit(stack.client.move(MOUNT, 'docs/deep', 'deep'));
    await commit(stack.client.mkdir(MOUNT, 'docs/new'));
    expect(await node('deep/c.txt')).toMatchObject({ state: 'ACTIVE' });
    expect(await node('docs/a.txt')).toMatchObject({ state: 'INCONSISTENT', version: 1 });
  });
});

describe('forced', () => {
  test('put overwrite with force commits: the node is ACTIVE again with a new version', async () => {
    await commit(stack.client.put(MOUNT, 'f/write.txt', { content: 'one' }));
    await fs.writeFile(path.join(root, 'f/write.txt'), 'drifted');
    await markInconsistent('f/write.txt');

    const result = await commit(stack.client.put(MOUNT, 'f/write.txt', { content: 'two' }, { overwrite: true, force: true }));
    expect(result.node).toMatchObject({ version: 2, size: 3 });
    expect(await fs.readFile(path.join(root, 'f/write.txt'), 'utf8')).toBe('two');
    expect(await node('f/write.txt')).toMatchObject({ state: 'ACTIVE', version: 2, lastJournalId: result.journalId });
    const [entry] = await stack.client.db.select().from(journal).where(eq(journal.id, result.journalId));
    expect(entry).toMatchObject({ status: 'COMMITTED', request: expect.objectContaining({ force: true }) });
  });

  test('rm with force: the node is DELETED with a new version', async () => {
    await commit(stack.client.put(MOUNT, 'f/rm.txt', { content: 'x' }));
    await markInconsistent('f/rm.txt');
    await commit(stack.client.remove(MOUNT, 'f/rm.txt', { force: true }));
    expect(await exists(path.join(root, 'f/rm.txt'))).toBe(false);
    expect(await node('f/rm.txt')).toMatchObject({ state: 'DELETED', version: 2 });
  });

  test('mv with force: source DELETED, target ACTIVE', async () => {
    await commit(stack.client.put(MOUNT, 'f/mv.txt', { content: 'moving' }));
    await markInconsistent('f/mv.txt');
    const result = await commit(stack.client.move(MOUNT, 'f/mv.txt', 'f/moved.txt', { force: true }));
    expect(result.node).toMatchObject({ path: 'f/moved.txt', version: 1 });
    expect(await fs.readFile(path.join(root, 'f/moved.txt'), 'utf8')).toBe('moving');
    expect(await node('f/mv.txt')).toMatchObject({ state: 'DELETED', version: 2 });
    expect(await node('f/moved.txt')).toMatchObject({ state: 'ACTIVE', version: 1 });
  });

  test('cp with force: the copy is ACTIVE; the source, which a copy does not touch, stays INCONSISTENT', async () => {
    await commit(stack.client.put(MOUNT, 'f/cp.txt', { content: 'copy me' }));
    await fs.writeFile(path.join(root, 'f/cp.txt'), 'copy me, drifted');
    await markInconsistent('f/cp.txt');
    const result = await commit(stack.client.copy(MOUNT, 'f/cp.txt', 'f/copy.txt', { force: true }));
    // The bytes on disk are copied (and hashed), not the catalogued ones.
    expect(result.node).toMatchObject({ path: 'f/copy.txt', version: 1, size: 'copy me, drifted'.length });
    expect(await fs.readFile(path.join(root, 'f/copy.txt'), 'utf8')).toBe('copy me, drifted');
    expect(await node('f/copy.txt')).toMatchObject({ state: 'ACTIVE', version: 1 });
    expect(await node('f/cp.txt')).toMatchObject({ state: 'INCONSISTENT', version: 1 });
  });

  test('rm -r of a parent with force deletes the whole subtree', async () => {
    await commit(stack.client.put(MOUNT, 'tree/sub/x.txt', { content: 'x' }));
    await markInconsistent('tree/sub/x.txt');
    await expectRefused(stack.client.remove(MOUNT, 'tree', { recursive: true }), 'tree/sub/x.txt');
    await commit(stack.client.remove(MOUNT, 'tree', { recursive: true, force: true }));
    expect(await exists(path.join(root, 'tree'))).toBe(false);
    for (const p of ['tree', 'tree/sub', 'tree/sub/x.txt']) expect(await node(p)).toMatchObject({ state: 'DELETED', version: 2 });
  });

  test('force is part of the request an idempotency key stands for', async () => {
    await commit(stack.client.put(MOUNT, 'f/key.txt', { content: 'v1' }));
    await markInconsistent('f/key.txt');
    const key = 'inconsistent-force-key';
    // Refused: nothing journaled, so the same key may be retried with force.
    await expectRefused(stack.client.put(MOUNT, 'f/key.txt', { content: 'v2' }, { overwrite: true, idempotencyKey: key }), 'f/key.txt');
    expect(await stack.client.getJournalEntry(key)).toBeNull();
    const forced = await commit(stack.client.put(MOUNT, 'f/key.txt', { content: 'v2' }, { overwrite: true, force: true, idempotencyKey: key }));
    expect(forced.node).toMatchObject({ version: 2 });
    // The same key without force is a different request.
    const unforced = await stack.client.put(MOUNT, 'f/key.txt', { content: 'v2' }, { overwrite: true, idempotencyKey: key });
    await expect(unforced.result()).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    // With force again: answered from the journal, not executed twice.
    const replay = await commit(stack.client.put(MOUNT, 'f/key.txt', { content: 'v2' }, { overwrite: true, force: true, idempotencyKey: key }));
    expect(replay).toEqual(forced);
  });
});
