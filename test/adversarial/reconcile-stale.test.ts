/**
 * A change made behind Filestore's back while a reconcile is capturing is newer than the capture:
 * the commit must not record the stale capture over it nor resolve its drift event — the node
 * stays INCONSISTENT and the event open, for the next reconcile.
 *
 * The interleaving is built at the catalog level (a long capture cannot be timed reliably): a
 * committed reconcile's capture is stored again, a drift event is detected after the capture's
 * start, and the commit step applies the capture.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { and, eq, isNull, sql } from 'drizzle-orm';
import { driftEvents } from '../../db/schema';
import { applyReconcile, catalogNow, clearCaptured, storeCaptured } from '../../src/catalog/reconcile';
import { createTestStack, type TestStack } from '../helpers/stack';

jest.setTimeout(60_000);

let stack: TestStack;
let root: string;
beforeAll(async () => {
  stack = await createTestStack();
  root = await stack.addMount('m');
});
afterAll(() => stack?.teardown());

async function detectedAt(p: string, when: string) {
  await stack.client.db.execute(sql`UPDATE nodes SET state = 'INCONSISTENT' WHERE mount_id = 'm' AND path = ${p}`);
  await stack.client.db.execute(sql`
    INSERT INTO drift_events (mount_id, path, kind, observed, detected_at)
    VALUES ('m', ${p}, 'modified', '{"kind":"file","size":1,"mtime":null,"mode":null}'::jsonb, ${when}::timestamptz)`);
}

const openEvents = (p: string) =>
  stack.client.db.select().from(driftEvents).where(and(eq(driftEvents.mountId, 'm'), eq(driftEvents.path, p), isNull(driftEvents.resolvedAt)));

it('drift detected after capture began survives the commit; drift from before it is resolved', async () => {
  await (await stack.client.put('m', 'f.txt', { content: 'one' })).result();
  await fs.writeFile(path.join(root, 'f.txt'), 'two, by hand');
  const result = await (await stack.client.reconcile('m', 'f.txt')).result();
  const journalId = result.journalId;
  const committed = await stack.client.getNode('m', 'f.txt');
  expect(committed?.state).toBe('ACTIVE');

  // A second application of that (now stale) capture, with one event from before its start and one after.
  const since = await catalogNow(stack.client.db);
  await clearCaptured(stack.client.db, journalId);
  await storeCaptured(stack.client.db, journalId, [{ path: 'f.txt', kind: 'file', size: 1, sha256: 'a'.repeat(64), mode: 0o644, uid: null, gid: null, identity: null, mtime: new Date().toISOString() }]);
  await detectedAt('f.txt', `${since}`);
  await stack.client.db.execute(sql`UPDATE drift_events SET detected_at = detected_at - interval '1 second' WHERE mount_id = 'm' AND path = 'f.txt' AND resolved_at IS NULL`);
  await detectedAt('f.txt', new Date(Date.now() + 60_000).toISOString());
  expect(await openEvents('f.txt')).toHaveLength(2);

  await stack.client.db.transaction((tx) => applyReconcile(tx, journalId, { mountId: 'm', path: 'f.txt', subtree: true }, [], since));

  const after = await stack.client.getNode('m', 'f.txt');
  expect(after?.state).toBe('INCONSISTENT');
  expect(after?.sha256).toBe(committed?.sha256);
  const open = await openEvents('f.txt');
  expect(open).toHaveLength(1);
  expect(open[0]!.detectedAt.getTime()).toBeGreaterThan(Date.now());
});
