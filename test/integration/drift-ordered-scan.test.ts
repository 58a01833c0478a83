/**
 * Scans of local mounts merge a walk in UTF-8 byte order with the catalog range by range
 * (src/watcher/ordered-scan.ts). These cases lower the batch size so a small tree spans many
 * batches, put changes on both sides of every boundary, and use names that sort around '/'
 * (`a`, `a/b`, `a-b`, `a.b`, `a0`, `a!`): a merge that compared paths in the wrong order, lost a
 * row between two ranges or read a sibling's subtree as a directory's would report drift that is
 * not there, or miss drift that is. Real disk, Postgres and Temporal (the catalogued files are
 * written by Filestore itself).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { and, eq, inArray, notInArray } from 'drizzle-orm';
import { driftEvents, nodes } from '../../db/schema';
import { listAll } from '../../src/executors/executor';
import { driftRescans } from '../../src/metrics';
import { ExecutorRegistry } from '../../src/executor-registry';
import { compareUtf8 } from '../../src/path-order';
import { runDriftJob } from '../../src/watcher/drift-processor';
import { createTestStack, type TestStack } from '../helpers/stack';

const MOUNT = 'ordered';

let stack: TestStack;
let root: string;
let registry: ExecutorRegistry;
/** The catalog as Filestore left it: restored before every scan, so each starts from the same state. */
let catalogued: Array<typeof nodes.$inferSelect>;

const CATALOGUED = [
  'a/b/one.txt',
  'a/b/two.txt',
  'a/b-x.txt',
  'a/b.x.txt',
  'a/z.txt',
  'a-b/one.txt',
  'a-b/two.txt',
  'a.b/one.txt',
  'a0/one.txt',
  'b.txt',
  'c.txt',
  'd.txt',
];

/** Every change made by hand, as the detections a scan of the whole mount must record. */
const EXPECTED_MOUNT = [
  'added a!',
  'added a!/n.txt',
  'added a-b/new.txt',
  'added a-link',
  'added a.b/new.txt',
  'added a/b/three.txt',
  'added aa.txt',
  'added in-link',
  'added é',
  'added é/x.txt',
  'modified a-b/two.txt',
  'modified a/b-x.txt',
  'modified c.txt',
  'removed a.b/one.txt',
  'removed a/b/two.txt',
  'removed a0',
  'removed a0/one.txt',
  'removed d.txt',
].sort();

async function changeByHand(): Promise<void> {
  const w = (p: string, content: string) => fs.writeFile(path.join(root, p), content);
  await w('a/b/three.txt', 'new inside a/b');
  await w('a-b/new.txt', 'new in a sibling that sorts before a/');
  await w('a.b/new.txt', 'new in a sibling that sorts before a/');
  await fs.mkdir(path.join(root, 'a!'));
  await w('a!/n.txt', "'!' sorts before '-', '.' and '/'");
  await fs.mkdir(path.join(root, 'é'));
  await w('é/x.txt', 'two UTF-8 bytes');
  await w('aa.txt', 'after a0');
  await w('a/b-x.txt', 'a different size than before');
  await w('a-b/two.txt', 'a different size than before');
  await w('c.txt', 'a different size than before');
  await fs.rm(path.join(root, 'a/b/two.txt'));
  await fs.rm(path.join(root, 'a.b/one.txt'));
  await fs.rm(path.join(root, 'a0'), { recursive: true });
  await fs.rm(path.join(root, 'd.txt'));
  // Containment: a link inside the mount is reported as what it points to and never descended
  // into; one leading out of the mount is not part of it.
  await fs.symlink('a/z.txt', path.join(root, 'in-link'));
  await fs.symlink('a', path.join(root, 'a-link'));
  await fs.symlink('/etc', path.join(root, 'out-link'));
}

async function restoreCatalog(): Promise<void> {
  const db = stack.client.db;
  await db.delete(driftEvents).where(eq(driftEvents.mountId, MOUNT));
  await db.delete(nodes).where(and(eq(nodes.mountId, MOUNT), notInArray(nodes.path, catalogued.map((r) => r.path))));
  for (const r of catalogued) {
    await db.update(nodes).set({ state: r.state, updatedAt: r.updatedAt }).where(and(eq(nodes.mountId, MOUNT), eq(nodes.path, r.path)));
  }
}

/** Scans that fell back to the whole-view job because a listing was out of order (must stay 0: the merge is what is tested). */
async function unorderedFallbacks(): Promise<number> {
  return (await driftRescans.get()).values.filter((v) => v.labels.mount === MOUNT && v.labels.reason === 'local-unordered').reduce((n, v) => n + v.value, 0);
}

async function scan(dir: string, batchSize: number) {
  const fallbacks = await unorderedFallbacks();
  const result = await runDriftJob(
    { db: stack.client.db, executors: registry, scan: { batchSize, concurrency: 4 } },
    { kind: 'scan', mountId: MOUNT, dir, firstEventAt: Date.now() },
    `ordered-${batchSize}`,
  );
  expect(await unorderedFallbacks()).toBe(fallbacks);
  const events = await stack.client.db.select().from(driftEvents).where(eq(driftEvents.mountId, MOUNT));
  return { result, events: events.map((e) => `${e.kind} ${e.path}`).sort() };
}

beforeAll(async () => {
  stack = await createTestStack();
  root = await stack.addMount(MOUNT);
  registry = new ExecutorRegistry(stack.client.db);
  const handles = await Promise.all(CATALOGUED.map((p) => stack.client.put(MOUNT, p, { content: `catalogued ${p}` })));
  await Promise.all(handles.map((h) => h.result()));
  catalogued = await stack.client.db.select().from(nodes).where(eq(nodes.mountId, MOUNT));
  expect(catalogued.filter((r) => r.state === 'ACTIVE').map((r) => r.path)).toEqual(expect.arrayContaining(['a', 'a/b', 'a-b', 'a.b', 'a0', ...CATALOGUED]));
  await changeByHand();
}, 120_000);
afterAll(async () => {
  await stack?.teardown();
});

test('the sorted listing is in UTF-8 byte order, stays inside the mount and matches the plain walk', async () => {
  const executor = await registry.get(MOUNT);
  const sorted: string[] = [];
  // Iterated as it comes (listAll would sort it again).
  for await (const m of executor.list('', { recursive: true, sorted: true, concurrency: 3 })) sorted.push(m.path);
  const plain = (await listAll(executor, '', { recursive: true })).map((m) => m.path);
  expect(sorted).toEqual([...plain].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
  expect(sorted.slice(0, 6)).toEqual(['a', 'a!', 'a!/n.txt', 'a-b', 'a-b/new.txt', 'a-b/one.txt']);
  expect(sorted).not.toContain('out-link');
  expect(sorted.filter((p) => p.startsWith('a-link/'))).toEqual([]);
  for (let i = 1; i < sorted.length; i++) expect(compareUtf8(sorted[i - 1], sorted[i])).toBeLessThan(0);
});

test.each([1, 2, 3, 5, 2000])('a whole-mount scan in batches of %i records exactly the changes, and a repeat records nothing', async (batchSize) => {
  await restoreCatalog();
  const first = await scan('', batchSize);
  expect(first.events).toEqual(EXPECTED_MOUNT);
  expect(first.result).toEqual({ detected: EXPECTED_MOUNT.length, deferred: [] });
  // Everything unchanged stays as Filestore left it.
  const untouched = ['a/b/one.txt', 'a/b.x.txt', 'a/z.txt', 'a-b/one.txt', 'b.txt', 'a', 'a/b', 'a-b', 'a.b'];
  const states = await stack.client.db.select({ path: nodes.path, state: nodes.state }).from(nodes).where(and(eq(nodes.mountId, MOUNT), inArray(nodes.path, untouched)));
  expect(states.map((s) => s.state)).toEqual(untouched.map(() => 'ACTIVE'));

  const again = await scan('', batchSize);
  expect(again.result).toEqual({ detected: 0, deferred: [] });
  expect(again.events).toEqual(EXPECTED_MOUNT);
});

test.each([1, 2, 2000])("a scan of directory 'a' in batches of %i sees its subtree only, not the siblings 'a-b', 'a.b', 'a0' or 'a!'", async (batchSize) => {
  await restoreCatalog();
  const { events, result } = await scan('a', batchSize);
  expect(events).toEqual(['added a/b/three.txt', 'modified a/b-x.txt', 'removed a/b/two.txt']);
  expect(result).toEqual({ detected: 3, deferred: [] });
});

test('a scan of a directory that is gone reports it and everything catalogued below it as removed', async () => {
  await restoreCatalog();
  const { events } = await scan('a0', 2);
  expect(events).toEqual(['removed a0', 'removed a0/one.txt']);
});
