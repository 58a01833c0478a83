/**
 * Point 13 — nothing grows with tree size in a payload. A 100,000-entry tree is copied, moved and
 * deleted through the SDK on the real stack; each mutation commits, the catalog holds the 100,000
 * nodes at the right paths, and no workflow history carries the tree (per-node outcomes stay in
 * Postgres). Listings page with a cursor through the parent index and drop nothing.
 *
 * Before: the copy's outcome (~25 MiB of NodeMeta) went into the execute activity's result —
 * Temporal refuses payloads over 2 MiB, so the copy failed — and a non-recursive `ls` read at most
 * 100,000 rows of the subtree and filtered depth in JavaScript, dropping the later children of a
 * big directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { main } from '../../src/cli/main';
import { stackEnv } from '../helpers/cli';
import { createTestStack, type TestStack } from '../helpers/stack';

const MOUNT = 'scale';
const DIRS = 100;
/** Entries of the tree, its root included: 1 + 100 directories + 99,899 empty files. */
const ENTRIES = 100_000;
const FILES = ENTRIES - 1 - DIRS;
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

let stack: TestStack;
let root: string;

const dirName = (d: number) => `d${String(d).padStart(3, '0')}`;
const fileName = (f: number) => `f${String(f).padStart(4, '0')}`;
/** Files of directory `d`: 999 each, one fewer in the last so the tree has exactly ENTRIES entries. */
const filesIn = (d: number) => (d < DIRS - 1 ? 999 : FILES - 999 * (DIRS - 1));

beforeAll(async () => {
  stack = await createTestStack();
  root = await stack.addMount(MOUNT);
  // Behind Filestore's back on purpose (the copy source need not be catalogued); synchronous
  // calls: ~10× faster than 100,000 promises through libuv's pool.
  const src = path.join(root, 'src');
  fs.mkdirSync(src);
  for (let d = 0; d < DIRS; d++) {
    const dir = path.join(src, dirName(d));
    fs.mkdirSync(dir);
    for (let f = 0; f < filesIn(d); f++) fs.closeSync(fs.openSync(path.join(dir, fileName(f)), 'w'));
  }
});

afterAll(async () => {
  await stack?.teardown();
});

async function countNodes(prefix: string, state: 'ACTIVE' | 'DELETED'): Promise<number> {
  const res = await stack.client.db.execute<{ n: number }>(
    sql`SELECT count(*)::int AS n FROM nodes WHERE mount_id = ${MOUNT} AND state = ${state} AND (path = ${prefix} OR path LIKE ${`${prefix}/%`})`,
  );
  return res.rows[0].n;
}

/** Bytes of every payload the workflow's history holds (workflow input/result, activity inputs/results). */
async function payloadSizes(workflowId: string): Promise<{ total: number; largest: number }> {
  const history = await stack.client.temporal.workflow.getHandle(workflowId).fetchHistory();
  const sizes: number[] = [];
  for (const e of history.events ?? []) {
    for (const list of [
      e.workflowExecutionStartedEventAttributes?.input,
      e.workflowExecutionCompletedEventAttributes?.result,
      e.activityTaskScheduledEventAttributes?.input,
      e.activityTaskCompletedEventAttributes?.result,
    ]) {
      for (const p of list?.payloads ?? []) sizes.push((p.data?.length ?? 0) + Object.values(p.metadata ?? {}).reduce((n, v) => n + (v?.length ?? 0), 0));
    }
  }
  return { total: sizes.reduce((a, b) => a + b, 0), largest: Math.max(0, ...sizes) };
}

async function expectSmallHistory(workflowId: string): Promise<void> {
  const { total, largest } = await payloadSizes(workflowId);
  // The tree would be ~25 MiB; a mutation's own request, outcome summary and result are ~1 KiB each.
  expect(largest).toBeLessThan(8 * 1024);
  expect(total).toBeLessThan(32 * 1024);
}

async function outcomeRows(): Promise<number> {
  const res = await stack.client.db.execute<{ n: number }>(sql`SELECT count(*)::int AS n FROM outcome_nodes`);
  return res.rows[0].n;
}

test('a subtree move in SQL keeps what the per-row merge kept: hashes of ACTIVE nodes, none of INCONSISTENT ones, one version and snapshot per node', async () => {
  for (const [p, content] of [['small/a.txt', 'a'], ['small/sub/b.txt', 'bb'], ['small/sub/c.txt', 'ccc']]) {
    await (await stack.client.put(MOUNT, p, { content })).result();
  }
  await stack.client.db.execute(sql`UPDATE nodes SET state = 'INCONSISTENT' WHERE mount_id = ${MOUNT} AND path = 'small/sub/c.txt'`);
  const result = await (await stack.client.move(MOUNT, 'small', 'moved-small/inner', { force: true })).result();
  const node = (p: string) => stack.client.getNode(MOUNT, p);
  expect(await node('moved-small/inner/a.txt')).toMatchObject({ state: 'ACTIVE', version: 1, size: 1, sha256: expect.stringMatching(/^[0-9a-f]{64}$/), lastJournalId: result.journalId });
  expect(await node('moved-small/inner/sub/b.txt')).toMatchObject({ state: 'ACTIVE', version: 1, size: 2, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
  expect(await node('moved-small/inner/sub/c.txt')).toMatchObject({ state: 'ACTIVE', version: 1, size: 3, sha256: null });
  // The created parent and the target come from the executor's fresh stat.
  expect(await node('moved-small')).toMatchObject({ kind: 'directory', state: 'ACTIVE' });
  expect(await node('moved-small/inner')).toMatchObject({ kind: 'directory', state: 'ACTIVE', version: 1 });
  for (const p of ['small', 'small/a.txt', 'small/sub', 'small/sub/b.txt', 'small/sub/c.txt']) expect(await node(p)).toMatchObject({ state: 'DELETED', version: 2 });
  const snaps = await stack.client.db.execute<{ path: string; n: number }>(
    sql`SELECT path, count(*)::int AS n FROM snapshots WHERE journal_id = ${result.journalId} GROUP BY path ORDER BY path`,
  );
  // 5 sources DELETED + 5 moved + the created parent, each exactly once.
  expect(snaps.rows).toHaveLength(11);
  expect(snaps.rows.every((r) => r.n === 1)).toBe(true);
  expect(result.nodesAffected).toBe(11);
});

describe('a 100,000-entry tree', () => {
  test('cp -r commits: 100,000 nodes catalogued with their hashes, no payload carries the tree, no outcome rows left', async () => {
    const handle = await stack.client.copy(MOUNT, 'src', 'copy', { recursive: true });
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'COMMITTED', op: 'copy', nodesAffected: ENTRIES, node: { path: 'copy', kind: 'directory' } });
    expect(await countNodes('copy', 'ACTIVE')).toBe(ENTRIES);
    const last = `copy/${dirName(DIRS - 1)}/${fileName(filesIn(DIRS - 1) - 1)}`;
    expect(await stack.client.getNode(MOUNT, last)).toMatchObject({ kind: 'file', size: 0, sha256: EMPTY_SHA256, state: 'ACTIVE' });
    expect(fs.statSync(path.join(root, ...last.split('/'))).isFile()).toBe(true);
    await expectSmallHistory(handle.workflowId);
    expect(await outcomeRows()).toBe(0);
  }, 600_000);

  test('ls of a directory larger than a page: every child exactly once through the cursor', async () => {
    const dir = `copy/${dirName(7)}`;
    const expected = Array.from({ length: 999 }, (_, f) => `${dir}/${fileName(f)}`);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await stack.client.listPage(MOUNT, dir, { limit: 100, cursor });
      pages++;
      // A page is full or the end.
      if (page.nextCursor) expect(page.nodes).toHaveLength(100);
      seen.push(...page.nodes.map((n) => n.path));
      cursor = page.nextCursor;
    } while (cursor);
    expect(pages).toBe(10);
    expect(seen).toEqual(expected);

    // The whole subtree, recursively, in pages of 7,000: nothing dropped, nothing twice.
    const all = new Set<string>();
    let total = 0;
    cursor = null;
    do {
      const page = await stack.client.listPage(MOUNT, 'copy', { recursive: true, limit: 7000, cursor });
      for (const n of page.nodes) all.add(n.path);
      total += page.nodes.length;
      cursor = page.nextCursor;
    } while (cursor);
    expect(total).toBe(ENTRIES - 1);
    expect(all.size).toBe(ENTRIES - 1);

    // listNodes keeps its array shape and returns everything.
    expect(await stack.client.listNodes(MOUNT, 'copy')).toHaveLength(DIRS);
    expect(await stack.client.listNodes(MOUNT, dir)).toHaveLength(999);

    // A cursor belongs to its listing.
    const first = await stack.client.listPage(MOUNT, dir, { limit: 10 });
    await expect(stack.client.listPage(MOUNT, 'copy', { cursor: first.nextCursor })).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    await expect(stack.client.listPage(MOUNT, dir, { limit: 10_001 })).rejects.toMatchObject({ code: 'INVALID_REQUEST' });

    // The CLI pages the same way and prints where to go on.
    const env = stackEnv(stack.config);
    const saved = { ...process.env };
    Object.assign(process.env, env);
    const lines: string[] = [];
    try {
      await main(['node', 'filestore', 'ls', `${MOUNT}:${dir}`, '--limit', '600', '--json'], (s) => lines.push(s));
      const page1 = JSON.parse(lines.pop()!) as { nodes: Array<{ path: string }>; nextCursor: string };
      await main(['node', 'filestore', 'ls', `${MOUNT}:${dir}`, '--limit', '600', '--json', '--cursor', page1.nextCursor], (s) => lines.push(s));
      const page2 = JSON.parse(lines.pop()!) as { nodes: Array<{ path: string }>; nextCursor: string | null };
      expect([...page1.nodes, ...page2.nodes].map((n) => n.path)).toEqual(expected);
      expect(page2.nextCursor).toBeNull();
      await main(['node', 'filestore', 'ls', `${MOUNT}:${dir}`, '--limit', '998'], (s) => lines.push(s));
      expect(lines.pop()).toMatch(/^next cursor: \S+/);
    } finally {
      process.env = saved;
    }
  }, 120_000);

  test('non-recursive ls of a directory with 150,000 descendants but 3 children returns exactly the 3', async () => {
    // Catalog rows only: this is about the read path, and 150,000 real files would add minutes.
    await stack.client.db.execute(sql`
      INSERT INTO nodes (mount_id, path, kind, size, state, version)
      SELECT ${MOUNT}, 'wide/' || c, 'directory'::node_kind, 0, 'ACTIVE'::node_state, 1 FROM unnest(ARRAY['a', 'b', 'c']) AS c
      UNION ALL
      SELECT ${MOUNT}, 'wide/a/' || lpad(i::text, 6, '0'), 'file'::node_kind, 0, 'ACTIVE'::node_state, 1 FROM generate_series(1, 150000) AS i`);
    expect((await stack.client.listNodes(MOUNT, 'wide')).map((n) => n.path)).toEqual(['wide/a', 'wide/b', 'wide/c']);
    expect(await stack.client.listPage(MOUNT, 'wide', { limit: 2 })).toMatchObject({ nodes: [{ path: 'wide/a' }, { path: 'wide/b' }], nextCursor: expect.any(String) });
  }, 60_000);

  test('mv commits: the 100,000 nodes now live at the target, the source is DELETED, hashes kept', async () => {
    const handle = await stack.client.move(MOUNT, 'copy', 'moved');
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'COMMITTED', op: 'move', node: { path: 'moved', kind: 'directory' } });
    expect(await countNodes('moved', 'ACTIVE')).toBe(ENTRIES);
    expect(await countNodes('copy', 'ACTIVE')).toBe(0);
    expect(await countNodes('copy', 'DELETED')).toBe(ENTRIES);
    expect(await stack.client.getNode(MOUNT, `moved/${dirName(42)}/${fileName(123)}`)).toMatchObject({ kind: 'file', sha256: EMPTY_SHA256, state: 'ACTIVE' });
    await expectSmallHistory(handle.workflowId);
  }, 600_000);

  test('rm -r commits: all 100,000 nodes DELETED, the tree gone from disk', async () => {
    const handle = await stack.client.remove(MOUNT, 'moved', { recursive: true });
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'COMMITTED', op: 'delete', nodesAffected: ENTRIES });
    expect(await countNodes('moved', 'ACTIVE')).toBe(0);
    expect(await countNodes('moved', 'DELETED')).toBe(ENTRIES);
    expect(fs.existsSync(path.join(root, 'moved'))).toBe(false);
    await expectSmallHistory(handle.workflowId);
    expect(await outcomeRows()).toBe(0);
  }, 600_000);
});
