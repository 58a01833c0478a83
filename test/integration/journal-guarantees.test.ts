/**
 * Idempotency, path locking and compensation: the journal's promises, on real services.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { journal, snapshots } from '../../db/schema';
import { createActivities } from '../../activities';
import { CommitError } from '../../src/errors';
import { STAGING_DIR } from '../../src/paths';
import { exists, writeRandomFile } from '../helpers/files';
import { createTestStack, type TestStack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let root: string;

beforeAll(async () => {
  stack = await createTestStack();
  root = await stack.addMount('jg');
});
afterAll(async () => stack?.teardown());


describe('idempotency', () => {
  test('the same key twice → one execution, one journal entry, the same result', async () => {
    const key = `same-key-${Date.now()}`;
    const first = await (await stack.client.put('jg', 'idem/a.txt', { content: 'v1' }, { idempotencyKey: key })).result();
    // Change the bytes on disk by hand: a second execution would overwrite them (or fail ALREADY_EXISTS).
    await fs.writeFile(path.join(root, 'idem/a.txt'), 'changed by hand');
    const again = await stack.client.put('jg', 'idem/a.txt', { content: 'v1' }, { idempotencyKey: key });
    expect(again.workflowId).toBe(first.workflowId);
    expect(await again.result()).toEqual(first);

    expect(await fs.readFile(path.join(root, 'idem/a.txt'), 'utf8')).toBe('changed by hand');
    const entries = await stack.client.db.select().from(journal).where(eq(journal.idempotencyKey, key));
    expect(entries).toHaveLength(1);
    expect(await stack.client.db.select().from(snapshots).where(eq(snapshots.journalId, first.journalId))).toHaveLength(2);
  });

  test('the same key started twice concurrently → one workflow, one entry', async () => {
    const key = `concurrent-key-${Date.now()}`;
    const [h1, h2] = await Promise.all([
      stack.client.mkdir('jg', 'idem/dir', { idempotencyKey: key }),
      stack.client.mkdir('jg', 'idem/dir', { idempotencyKey: key }),
    ]);
    const [r1, r2] = await Promise.all([h1.result(), h2.result()]);
    expect(r1).toEqual(r2);
    expect(await stack.client.db.select().from(journal).where(eq(journal.idempotencyKey, key))).toHaveLength(1);
  });

  test('the same key for a different request is refused', async () => {
    const key = `reused-key-${Date.now()}`;
    await (await stack.client.put('jg', 'idem/b.txt', { content: 'one' }, { idempotencyKey: key })).result();
    await expect((await stack.client.put('jg', 'idem/b.txt', { content: 'two' }, { idempotencyKey: key })).result()).rejects.toMatchObject({
      code: 'IDEMPOTENCY_KEY_REUSED',
    });
  });
});

describe('path locks', () => {
  test('two concurrent mutations of one path → one commits, the other gets CONFLICT', async () => {
    const src = path.join(stack.tmp, 'slow.bin');
    await writeRandomFile(src, 256 * 1024 * 1024);
    const slow = await stack.client.put('jg', 'locked/file.bin', { file: src });
    // The first mutation holds the lock as soon as its PENDING entry exists.
    await waitFor('the first mutation\'s PENDING entry', async () => (await stack.client.listJournal({ status: 'PENDING' })).find((e) => e.path === 'locked/file.bin'), 30_000);
    const rival = await stack.client.put('jg', 'locked/file.bin', { content: 'rival' }, { overwrite: true });
    const rivalInDir = await stack.client.remove('jg', 'locked', { recursive: true });

    await expect(rival.result()).rejects.toMatchObject({ code: 'CONFLICT', name: 'ConflictError' });
    await expect(rivalInDir.result()).rejects.toMatchObject({ code: 'CONFLICT' });
    const committed = await slow.result();
    expect(committed.node).toMatchObject({ size: 256 * 1024 * 1024 });
    expect((await fs.stat(path.join(root, 'locked/file.bin'))).size).toBe(256 * 1024 * 1024);
    // The refused mutations left no journal entry behind, and nothing is PENDING.
    expect(await stack.client.listJournal({ status: 'PENDING' })).toEqual([]);
  });

  test('waitForLock waits for the holder and then commits', async () => {
    const src = path.join(stack.tmp, 'slow2.bin');
    await writeRandomFile(src, 128 * 1024 * 1024);
    const slow = await stack.client.put('jg', 'wait/file.bin', { file: src });
    await waitFor('the first mutation\'s PENDING entry', async () => (await stack.client.listJournal({ status: 'PENDING' })).find((e) => e.path === 'wait/file.bin'), 30_000);
    const waiter = await stack.client.put('jg', 'wait/file.bin', { content: 'after' }, { overwrite: true, waitForLock: true });
    await slow.result();
    const after = await waiter.result();
    expect(after.node).toMatchObject({ size: 5, version: 2 });
    expect(await fs.readFile(path.join(root, 'wait/file.bin'), 'utf8')).toBe('after');
  });
});

describe('compensation', () => {
  let failing: TestStack;
  let failRoot: string;
  beforeAll(async () => {
    // The standard activities, except that the commit fails permanently after execute and verify succeeded.
    failing = await createTestStack({
      activities: (deps) => ({
        ...createActivities(deps),
        commitMutation: async () => {
          throw new CommitError('injected: the catalog refused the commit');
        },
      }),
    });
    failRoot = await failing.addMount('comp');
  });
  afterAll(async () => failing?.teardown());

  test('overwrite rolled back: the old bytes are restored and the journal says ROLLED_BACK', async () => {
    await fs.writeFile(path.join(failRoot, 'keep.txt'), 'original');
    const handle = await failing.client.put('comp', 'keep.txt', { content: 'new content' }, { overwrite: true });
    await expect(handle.result()).rejects.toMatchObject({ code: 'COMMIT_FAILED' });
    expect(await fs.readFile(path.join(failRoot, 'keep.txt'), 'utf8')).toBe('original');
    const [entry] = await failing.client.listJournal({});
    expect(entry).toMatchObject({ status: 'ROLLED_BACK', error: expect.objectContaining({ code: 'COMMIT_FAILED' }) });
    expect(await failing.client.getNode('comp', 'keep.txt')).toBeNull();
    expect(await fs.readdir(path.join(failRoot, STAGING_DIR)).catch(() => [])).toEqual([]);
  });

  test('new file and its new parents removed; move, copy and delete undone', async () => {
    await expect((await failing.client.put('comp', 'new/deep/file.txt', { content: 'x' })).result()).rejects.toMatchObject({ code: 'COMMIT_FAILED' });
    expect(await exists(path.join(failRoot, 'new'))).toBe(false);

    await fs.mkdir(path.join(failRoot, 'dir'));
    await fs.writeFile(path.join(failRoot, 'dir/a.txt'), 'A');
    await expect((await failing.client.move('comp', 'dir', 'moved')).result()).rejects.toMatchObject({ code: 'COMMIT_FAILED' });
    expect(await fs.readFile(path.join(failRoot, 'dir/a.txt'), 'utf8')).toBe('A');
    expect(await exists(path.join(failRoot, 'moved'))).toBe(false);

    await expect((await failing.client.copy('comp', 'dir', 'copied', { recursive: true })).result()).rejects.toMatchObject({ code: 'COMMIT_FAILED' });
    expect(await exists(path.join(failRoot, 'copied'))).toBe(false);

    await expect((await failing.client.remove('comp', 'dir', { recursive: true })).result()).rejects.toMatchObject({ code: 'COMMIT_FAILED' });
    expect(await fs.readFile(path.join(failRoot, 'dir/a.txt'), 'utf8')).toBe('A');

    const entries = await failing.client.listJournal({});
    expect(entries.map((e) => e.status)).toEqual(['ROLLED_BACK', 'ROLLED_BACK', 'ROLLED_BACK', 'ROLLED_BACK', 'ROLLED_BACK']);
    expect(await fs.readdir(path.join(failRoot, STAGING_DIR)).catch(() => [])).toEqual([]);
  });
});
