/**
 * ATTACK: the lock is claimed on one real location, the executor acts on another.
 *
 * executeMutation resolves the request's paths, claims those real locations in the catalog
 * (claimRealPaths), then hands the claimed real path to the executor — which resolves it AGAIN
 * (LocalExecutor.copy/write/... call `this.dirs.resolve(...)`), following any in-mount symlinked
 * parent it finds now. A mount user who swaps a claimed parent directory for a symlink to another
 * in-mount directory between the claim and the executor's resolve makes the mutation act in a
 * place it never locked — one another PENDING mutation may hold.
 *
 * The window (two catalog round trips) is widened without touching Filestore's code: a test session
 * holds an ACCESS EXCLUSIVE lock on `nodes`, so the real execute blocks in knownContent() — after
 * claimRealPaths, before executor.copy. The copy is `force`d so beginJournal does not read `nodes`.
 *
 * Found by an adversarial review; fixed: execute passes `claimedPaths`, and the executor refuses
 * with PATH_CHANGED a claimed path that now resolves elsewhere instead of following it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { Client as PgClient } from 'pg';
import { journal } from '../../db/schema';
import { createTestStack, type TestStack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let root: string;

beforeAll(async () => {
  stack = await createTestStack({ config: { janitorIntervalMs: 3_600_000 } });
  root = await stack.addMount('lk');
});
afterAll(async () => stack?.teardown());

test('a parent swapped for an in-mount symlink after the claim: the copy must not land outside its claimed (locked) location', async () => {
  await (await stack.client.put('lk', 'src.txt', { content: 'payload' })).result();
  await fs.mkdir(path.join(root, 'real'));
  await fs.mkdir(path.join(root, 'other'));
  // Another mutation holds `other` (a PENDING entry: e.g. a recursive delete of it in flight).
  const ghostKey = `holder-${Date.now()}`;
  await stack.client.db
    .insert(journal)
    .values({ idempotencyKey: ghostKey, workflowId: `filestore:lk:delete:${ghostKey}`, op: 'delete', mountId: 'lk', path: 'other', request: {} });

  const pg = new PgClient({ connectionString: stack.config.databaseUrl });
  await pg.connect();
  let locked = true;
  try {
    await pg.query('BEGIN');
    await pg.query('LOCK TABLE nodes IN ACCESS EXCLUSIVE MODE');
    const handle = await stack.client.copy('lk', 'src.txt', 'real/x', { force: true });
    await waitFor(
      'execute to claim real/x and then block before the executor',
      async () => {
        const [e] = await stack.client.db.select().from(journal).where(eq(journal.workflowId, handle.workflowId));
        if (e?.realTargetPath !== 'real/x') return false;
        const { rows } = await pg.query(`SELECT count(*)::int AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'nodes' AND NOT l.granted`);
        return rows[0].n > 0;
      },
      60_000,
    );
    // The hostile mount user swaps the claimed parent for a symlink into `other`.
    await fs.rename(path.join(root, 'real'), path.join(root, 'real-old'));
    await fs.symlink('other', path.join(root, 'real'));
    await pg.query('COMMIT');
    locked = false;

    const outcome = await handle.result().then(
      (r) => `COMMITTED ${JSON.stringify(r.node?.path ?? null)}`,
      (e: { code?: string }) => `failed ${e.code}`,
    );
    const [entry] = await stack.client.db.select().from(journal).where(eq(journal.workflowId, handle.workflowId));
    const landed = await fs.readFile(path.join(root, 'other', 'x'), 'utf8').catch(() => null);
    // Nothing may be written into `other`: this mutation never locked it, and another PENDING entry holds it.
    expect(landed).toBeNull();
    // Refused, not followed: the claimed place now resolves elsewhere.
    expect(outcome).toBe('failed PATH_CHANGED');
    expect(['ROLLED_BACK', 'FAILED']).toContain(entry.status);
  } finally {
    if (locked) await pg.query('ROLLBACK').catch(() => undefined);
    await pg.end();
  }
}, 120_000);
