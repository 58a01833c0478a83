/**
 * ATTACK: the janitor undoes an entry whose commit is still in flight.
 *
 * The janitor decides "abandoned" from (workflow not RUNNING) + (fence free) + (status PENDING read
 * without a lock). commitMutation does not hold the fence, so a commit that is still running when
 * an operator terminates the workflow (a big tree's commit takes tens of seconds) is invisible to
 * the janitor: it undoes the disk, then its endPendingEntry waits on the row lock the commit holds,
 * the commit lands COMMITTED and the janitor's update matches nothing. Journal COMMITTED, disk undone.
 *
 * The slow commit is produced without touching Filestore's code: a test session holds
 * `LOCK TABLE snapshots IN SHARE MODE`, so the real commit blocks inside its transaction (after it
 * locked the journal row), as a long commit or lock contention would.
 *
 * Found by an adversarial review; fixed: commit (and rollback) take the transaction's fence as a
 * transaction-level advisory lock, so the janitor cannot take it while a commit is in flight.
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
  stack = await createTestStack({ config: { janitorGraceMs: 0, janitorIntervalMs: 3_600_000 } });
  root = await stack.addMount('jr');
});
afterAll(async () => stack?.teardown());

async function entryOf(workflowId: string) {
  const [row] = await stack.client.db.select().from(journal).where(eq(journal.workflowId, workflowId));
  return row;
}

test('janitor vs in-flight commit: a terminated workflow whose commit is still running must not end COMMITTED with its file undone', async () => {
  const pg = new PgClient({ connectionString: stack.config.databaseUrl });
  await pg.connect();
  let locked = true;
  try {
    await pg.query('BEGIN');
    await pg.query('LOCK TABLE snapshots IN SHARE MODE');

    const handle = await stack.client.put('jr', 'jc/new.txt', { content: 'committed content' });
    const file = path.join(root, 'jc/new.txt');
    // Execute and verify ran; the commit is inside its transaction, waiting for the snapshots lock.
    await waitFor(
      'the commit to block on snapshots',
      async () => {
        const { rows } = await pg.query(
          `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'snapshots' AND NOT l.granted`,
        );
        return rows[0].n > 0;
      },
      60_000,
    );
    expect(await fs.readFile(file, 'utf8')).toBe('committed content');

    // Operator terminates the "stuck" workflow; the janitor runs (grace 0 here; 60 s by default,
    // and the entry's updated_at is set at execute's claim, so a >60 s execute qualifies too).
    await stack.client.temporal.workflow.getHandle(handle.workflowId).terminate('looks stuck');
    const janitor = stack.worker!.runJanitor();
    // The janitor undoes the write while the commit is still in flight.
    const undone = await waitFor('janitor undo', async () => !(await fs.stat(file).then(() => true, () => false)), 10_000).then(
      () => true,
      () => false,
    );

    await pg.query('COMMIT');
    locked = false;
    await janitor;
    await waitFor('the entry to end', async () => (await entryOf(handle.workflowId)).status !== 'PENDING', 30_000);
    await new Promise((r) => setTimeout(r, 1000));

    const entry = await entryOf(handle.workflowId);
    const onDisk = await fs.readFile(file, 'utf8').catch(() => null);
    // The janitor waits for the commit in flight (it cannot take the fence) and never undoes it.
    expect(undone).toBe(false);
    // The promise: COMMITTED <=> the file is there.
    expect({ status: entry.status, onDisk }).toEqual(
      entry.status === 'COMMITTED' ? { status: 'COMMITTED', onDisk: 'committed content' } : { status: entry.status, onDisk: null },
    );
  } finally {
    if (locked) await pg.query('ROLLBACK').catch(() => undefined);
    await pg.end();
  }
}, 120_000);
