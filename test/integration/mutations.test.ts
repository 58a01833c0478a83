/**
 * Every op end to end through the mutation workflow (real Temporal, Postgres and disk), checking
 * the disk, and the nodes, snapshots and journal rows the commit wrote.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { and, eq } from 'drizzle-orm';
import { journal, nodes, snapshots } from '../../db/schema';
import { STAGING_DIR } from '../../src/paths';
import { exists, listTree, sha256, sha256File, writeRandomFile } from '../helpers/files';
import { createTestStack, type TestStack } from '../helpers/stack';

let stack: TestStack;
let root: string;

beforeAll(async () => {
  stack = await createTestStack();
  root = await stack.addMount('docs');
});
afterAll(async () => stack?.teardown());

async function node(p: string) {
  return stack.client.getNode('docs', p);
}
async function snapshotsOf(journalId: string) {
  return stack.client.db.select().from(snapshots).where(eq(snapshots.journalId, journalId)).orderBy(snapshots.path);
}
async function stagingLeft(): Promise<string[]> {
  return (await fs.readdir(path.join(root, STAGING_DIR)).catch(() => [])).sort();
}

test('put inline content: file on disk, node, snapshot and COMMITTED journal entry', async () => {
  const handle = await stack.client.put('docs', 'notes/hello.txt', { content: 'hello world\n' });
  expect(handle.workflowId).toBe(`filestore:docs:write:${handle.idempotencyKey}`);
  const result = await handle.result();

  expect(await fs.readFile(path.join(root, 'notes/hello.txt'), 'utf8')).toBe('hello world\n');
  expect(result).toMatchObject({ status: 'COMMITTED', op: 'write', mountId: 'docs', path: 'notes/hello.txt', bytesWritten: 12 });
  expect(result.node).toMatchObject({ kind: 'file', size: 12, sha256: sha256('hello world\n'), version: 1 });

  const file = await node('notes/hello.txt');
  expect(file).toMatchObject({ kind: 'file', size: 12, sha256: sha256('hello world\n'), state: 'ACTIVE', version: 1, lastJournalId: result.journalId });
  expect(file!.mode! & 0o777).toBe((await fs.stat(path.join(root, 'notes/hello.txt'))).mode & 0o777);
  // The missing parent was created and catalogued by the same mutation.
  expect(await node('notes')).toMatchObject({ kind: 'directory', state: 'ACTIVE' });

  const [entry] = await stack.client.db.select().from(journal).where(eq(journal.id, result.journalId));
  expect(entry).toMatchObject({ status: 'COMMITTED', op: 'write', mountId: 'docs', path: 'notes/hello.txt', workflowId: handle.workflowId });
  expect(entry.completedAt).not.toBeNull();
  expect((await snapshotsOf(result.journalId)).map((s) => [s.path, s.version, s.state])).toEqual([
    ['notes', 1, 'ACTIVE'],
    ['notes/hello.txt', 1, 'ACTIVE'],
  ]);
  expect(await stagingLeft()).toEqual([]);
});

test('put a file source, then overwrite it: new version, new snapshot, old bytes gone', async () => {
  const src = path.join(stack.tmp, 'big.bin');
  const digest = await writeRandomFile(src, 3 * 1024 * 1024 + 17);
  const first = await (await stack.client.put('docs', 'data/big.bin', { file: src })).result();
  expect(first.node).toMatchObject({ size: 3 * 1024 * 1024 + 17, sha256: digest, version: 1 });
  expect(await sha256File(path.join(root, 'data/big.bin'))).toBe(digest);

  await expect((await stack.client.put('docs', 'data/big.bin', { content: 'x' })).result()).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });

  const second = await (await stack.client.put('docs', 'data/big.bin', { content: 'replaced' }, { overwrite: true })).result();
  expect(second.node).toMatchObject({ size: 8, sha256: sha256('replaced'), version: 2 });
  expect(await fs.readFile(path.join(root, 'data/big.bin'), 'utf8')).toBe('replaced');
  const history = await stack.client.db
    .select()
    .from(snapshots)
    .where(and(eq(snapshots.mountId, 'docs'), eq(snapshots.path, 'data/big.bin')))
    .orderBy(snapshots.version);
  expect(history.map((s) => [s.version, s.size])).toEqual([
    [1, 3 * 1024 * 1024 + 17],
    [2, 8],
  ]);
  expect(await stagingLeft()).toEqual([]);
});

test('mkdir creates missing parents and catalogues each directory', async () => {
  const result = await (await stack.client.mkdir('docs', 'a/b/c')).result();
  for (const d of ['a', 'a/b', 'a/b/c']) {
    expect((await fs.stat(path.join(root, d))).isDirectory()).toBe(true);
    expect(await node(d)).toMatchObject({ kind: 'directory', state: 'ACTIVE' });
  }
  expect(result.node).toMatchObject({ path: 'a/b/c', kind: 'directory' });
  expect((await snapshotsOf(result.journalId)).map((s) => s.path)).toEqual(expect.arrayContaining(['a', 'a/b', 'a/b/c']));
});

test('move a file: disk renamed, target node carries the hash, source node DELETED', async () => {
  await (await stack.client.put('docs', 'mv/src.txt', { content: 'move me' })).result();
  const result = await (await stack.client.move('docs', 'mv/src.txt', 'mv/dst.txt')).result();
  expect(await exists(path.join(root, 'mv/src.txt'))).toBe(false);
  expect(await fs.readFile(path.join(root, 'mv/dst.txt'), 'utf8')).toBe('move me');
  expect(await node('mv/src.txt')).toMatchObject({ state: 'DELETED', version: 2 });
  expect(await node('mv/dst.txt')).toMatchObject({ state: 'ACTIVE', sha256: sha256('move me'), size: 7 });
  expect(result).toMatchObject({ op: 'move', path: 'mv/src.txt', targetPath: 'mv/dst.txt' });
  expect((await snapshotsOf(result.journalId)).map((s) => [s.path, s.state])).toEqual(
    expect.arrayContaining([
      ['mv/dst.txt', 'ACTIVE'],
      ['mv/src.txt', 'DELETED'],
    ]),
  );
});

test('move a directory tree: every catalogued descendant follows', async () => {
  await (await stack.client.put('docs', 'tree/x/one.txt', { content: '1' })).result();
  await (await stack.client.put('docs', 'tree/x/two.txt', { content: '22' })).result();
  await (await stack.client.move('docs', 'tree/x', 'tree/y')).result();
  expect(await fs.readFile(path.join(root, 'tree/y/two.txt'), 'utf8')).toBe('22');
  expect(await node('tree/y/one.txt')).toMatchObject({ state: 'ACTIVE', sha256: sha256('1') });
  expect(await node('tree/y/two.txt')).toMatchObject({ state: 'ACTIVE', sha256: sha256('22') });
  expect(await node('tree/x/one.txt')).toMatchObject({ state: 'DELETED' });
  const children = await stack.client.listNodes('docs', 'tree');
  expect(children.map((n) => n.path)).toEqual(['tree/y']);
});

test('copy a file and a tree: bytes and hashes at the target, source untouched', async () => {
  await (await stack.client.put('docs', 'cp/a.txt', { content: 'copy me' })).result();
  const file = await (await stack.client.copy('docs', 'cp/a.txt', 'cp/b.txt')).result();
  expect(file.node).toMatchObject({ path: 'cp/b.txt', sha256: sha256('copy me'), size: 7 });
  expect(await fs.readFile(path.join(root, 'cp/a.txt'), 'utf8')).toBe('copy me');
  expect(await fs.readFile(path.join(root, 'cp/b.txt'), 'utf8')).toBe('copy me');

  await expect(stack.client.copy('docs', 'cp', 'cp2').then((h) => h.result())).rejects.toMatchObject({ code: 'IS_A_DIRECTORY' });
  const tree = await (await stack.client.copy('docs', 'cp', 'cp2', { recursive: true })).result();
  expect(await listTree(path.join(root, 'cp2'))).toEqual(['a.txt', 'b.txt']);
  expect(await node('cp2/b.txt')).toMatchObject({ state: 'ACTIVE', sha256: sha256('copy me') });
  expect(tree.nodesAffected).toBe(3);
});

test('delete a file, then a tree with recursive; nodes DELETED, bytes gone, no staging left', async () => {
  await (await stack.client.put('docs', 'rm/one.txt', { content: 'bye' })).result();
  await (await stack.client.put('docs', 'rm/sub/two.txt', { content: 'bye bye' })).result();
  const one = await (await stack.client.remove('docs', 'rm/one.txt')).result();
  expect(one.node).toBeNull();
  expect(await exists(path.join(root, 'rm/one.txt'))).toBe(false);
  expect(await node('rm/one.txt')).toMatchObject({ state: 'DELETED' });

  await expect((await stack.client.remove('docs', 'rm')).result()).rejects.toMatchObject({ code: 'DIRECTORY_NOT_EMPTY' });
  expect(await exists(path.join(root, 'rm/sub/two.txt'))).toBe(true);

  const tree = await (await stack.client.remove('docs', 'rm', { recursive: true })).result();
  expect(await exists(path.join(root, 'rm'))).toBe(false);
  expect(await node('rm/sub/two.txt')).toMatchObject({ state: 'DELETED' });
  expect(await node('rm/sub')).toMatchObject({ state: 'DELETED' });
  expect(tree.nodesAffected).toBeGreaterThanOrEqual(3);
  expect(await stagingLeft()).toEqual([]);

  // A deleted path can be written again: the same row comes back ACTIVE with a new version.
  const again = await (await stack.client.put('docs', 'rm/one.txt', { content: 'back' })).result();
  expect(again.node).toMatchObject({ version: 3 });
});

test('failed mutations are journalled FAILED with their error, and nothing stays PENDING', async () => {
  await expect((await stack.client.remove('docs', 'does/not/exist.txt')).result()).rejects.toMatchObject({ code: 'NOT_FOUND' });
  const failed = await stack.client.listJournal({ status: 'FAILED' });
  expect(failed[0]).toMatchObject({ op: 'delete', path: 'does/not/exist.txt', error: expect.objectContaining({ code: 'NOT_FOUND' }) });
  expect(await stack.client.listJournal({ status: 'PENDING' })).toEqual([]);
  const allNodes = await stack.client.db.select().from(nodes).where(eq(nodes.path, 'does/not/exist.txt'));
  expect(allNodes).toEqual([]);
});
