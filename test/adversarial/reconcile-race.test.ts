/**
 * Reconcile under attack, on real Temporal, Postgres and disk:
 *  - a reconcile that overlaps a mutation in flight is refused with CONFLICT (nothing captured),
 *    or with waitForLock waits for it and then captures what that mutation left;
 *  - a file — or a directory — swapped for a symlink leading out of the mount is never followed:
 *    the catalog records nothing from outside the mount (the node is gone from the mount's point
 *    of view, as the drift processor sees it too).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { and, eq } from 'drizzle-orm';
import { createActivities } from '../../activities';
import { journal, nodes } from '../../db/schema';
import type { MutationHandle } from '../../src/client';
import { sha256 } from '../helpers/files';
import { createTestStack, type TestStack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';

const MOUNT = 'rec-race';

let stack: TestStack;
let root: string;
/** Test seam: verify of a request whose path starts with `held/` waits for this gate. */
let gate: Promise<void> | null = null;

beforeAll(async () => {
  stack = await createTestStack({
    activities: (deps) => {
      const real = createActivities(deps);
      return {
        ...real,
        verifyMutation: (async (...args: unknown[]) => {
          const req = (args[0] as { request: { path: string } }).request;
          if (req.path.startsWith('held/') && gate) await gate;
          return (real.verifyMutation as (...a: unknown[]) => Promise<unknown>)(...args);
        }) as typeof real.verifyMutation,
      };
    },
  });
  root = await stack.addMount(MOUNT);
}, 120_000);
afterAll(async () => stack?.teardown());

async function commit(started: Promise<MutationHandle>) {
  return (await started).result();
}

async function pendingOn(p: string): Promise<boolean> {
  const rows = await stack.client.db.select().from(journal).where(and(eq(journal.mountId, MOUNT), eq(journal.path, p), eq(journal.status, 'PENDING')));
  return rows.length > 0;
}

/** Every catalogued hash of the mount (any state). */
async function allHashes(): Promise<string[]> {
  const rows = await stack.client.db.select({ sha256: nodes.sha256 }).from(nodes).where(eq(nodes.mountId, MOUNT));
  return rows.map((r) => r.sha256).filter((h): h is string => h !== null);
}

describe('a conflicting mutation holds the lock', () => {
  test('reconcile of the path (or an ancestor) fails fast with CONFLICT; with waitForLock it waits and captures the result', async () => {
    await commit(stack.client.put(MOUNT, 'held/f.txt', { content: 'v1' }));
    let open!: () => void;
    gate = new Promise<void>((r) => (open = r));
    const write = await stack.client.put(MOUNT, 'held/f.txt', { content: 'v2, from the write in flight' }, { overwrite: true });
    await waitFor('the write to hold its lock', () => pendingOn('held/f.txt'), 30_000);

    await expect(commit(stack.client.reconcile(MOUNT, 'held/f.txt'))).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(commit(stack.client.reconcile(MOUNT, 'held', { recursive: true }))).rejects.toMatchObject({ code: 'CONFLICT' });
    const refused = await stack.client.db.select().from(journal).where(and(eq(journal.mountId, MOUNT), eq(journal.op, 'reconcile')));
    expect(refused).toEqual([]);

    const waiting = await stack.client.reconcile(MOUNT, 'held', { recursive: true, waitForLock: true });
    // Still waiting while the write holds the path.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await pendingOn('held/f.txt')).toBe(true);
    open();
    gate = null;
    const written = await write.result();
    const reconciled = await waiting.result();
    expect(reconciled).toMatchObject({ op: 'reconcile', nodesAffected: 0 });
    expect(await stack.client.getNode(MOUNT, 'held/f.txt')).toMatchObject({
      state: 'ACTIVE',
      sha256: sha256('v2, from the write in flight'),
      version: written.node!.version,
    });
  }, 120_000);
});

describe('symlinks leading out of the mount are never followed', () => {
  test('a file swapped for a symlink to a file outside: the node is DELETED, no outside content recorded', async () => {
    const outside = path.join(stack.tmp, 'outside-secret.txt');
    await fs.writeFile(outside, 'outside the mount: must never reach the catalog');
    await commit(stack.client.put(MOUNT, 'swap/secret.txt', { content: 'inside' }));
    await fs.rm(path.join(root, 'swap/secret.txt'));
    await fs.symlink(outside, path.join(root, 'swap/secret.txt'));

    const result = await commit(stack.client.reconcile(MOUNT, 'swap/secret.txt'));
    expect(result.node).toBeNull();
    expect(await stack.client.getNode(MOUNT, 'swap/secret.txt')).toMatchObject({ state: 'DELETED' });
    // A recursive reconcile of the parent does not pick it up either.
    await commit(stack.client.reconcile(MOUNT, 'swap', { recursive: true }));
    expect(await stack.client.getNode(MOUNT, 'swap/secret.txt')).toMatchObject({ state: 'DELETED' });
    expect(await allHashes()).not.toContain(sha256('outside the mount: must never reach the catalog'));
  }, 120_000);

  test('a directory swapped for a symlink to a directory outside: its catalogued files are DELETED, nothing outside is listed', async () => {
    const outsideDir = path.join(stack.tmp, 'outside-dir');
    await fs.mkdir(outsideDir, { recursive: true });
    await fs.writeFile(path.join(outsideDir, 'a.txt'), 'outside a');
    await fs.writeFile(path.join(outsideDir, 'planted.txt'), 'outside planted');
    await commit(stack.client.put(MOUNT, 'dirswap/inner/a.txt', { content: 'inside a' }));
    await fs.rm(path.join(root, 'dirswap/inner'), { recursive: true });
    await fs.symlink(outsideDir, path.join(root, 'dirswap/inner'));

    await commit(stack.client.reconcile(MOUNT, 'dirswap', { recursive: true }));
    expect(await stack.client.getNode(MOUNT, 'dirswap/inner')).toMatchObject({ state: 'DELETED' });
    expect(await stack.client.getNode(MOUNT, 'dirswap/inner/a.txt')).toMatchObject({ state: 'DELETED' });
    expect(await stack.client.getNode(MOUNT, 'dirswap/inner/planted.txt')).toBeNull();
    // Through the link itself: refused or gone, never read.
    const direct = await stack.client.reconcile(MOUNT, 'dirswap/inner/planted.txt').then(
      (h) => h.result().then(() => 'OK', (err: { code?: string }) => err.code),
      (err: { code?: string }) => err.code,
    );
    expect(['SYMLINK_ESCAPE', 'NOT_FOUND']).toContain(direct);
    expect(await stack.client.getNode(MOUNT, 'dirswap/inner/planted.txt')).toBeNull();
    const hashes = await allHashes();
    expect(hashes).not.toContain(sha256('outside a'));
    expect(hashes).not.toContain(sha256('outside planted'));
  }, 120_000);
});
