/**
 * The transaction fence against a real Postgres: one holder at a time, a holder whose session the
 * server ended (a frozen worker's, after idle_session_timeout) learns it at its next check, and
 * pooled sessions carry no listeners from earlier fences.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { FencePool, fenceKey } from '../../activities/tx-fence';
import { dropDatabase, runMigrations } from '../../db/client';
import { testDatabaseUrl } from '../helpers/stack';

const url = testDatabaseUrl(`filestore_fence_${process.pid}`);
let pool: FencePool;

beforeAll(async () => {
  await runMigrations(url);
  pool = new FencePool(url, { idleTimeoutMs: 1500 });
});
afterAll(async () => {
  await pool.close();
  await dropDatabase(url);
});

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (e: { code?: string }) => e.code,
  );
}

test('a second attempt cannot take a held fence; after release it can', async () => {
  const id = randomUUID();
  const first = await pool.acquire(id);
  expect(await codeOf(pool.acquire(id))).toBe('TX_BUSY');
  await first.check();
  await first.release();
  expect(await codeOf(first.check())).toBe('FENCE_LOST');
  const second = await pool.acquire(id);
  await second.check();
  await second.release();
});

test('a holder whose session the server ended stops at its next check, and the fence is free', async () => {
  const id = randomUUID();
  const fence = await pool.acquire(id);
  // What idle_session_timeout does to a frozen worker's session, done at once by an operator.
  const admin = new Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(
      `SELECT pg_terminate_backend(l.pid) FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted
          AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($1, 0)`,
      [fenceKey(id)],
    );
  } finally {
    await admin.end();
  }
  expect(await codeOf(fence.check())).toBe('FENCE_LOST');
  const next = await pool.acquire(id);
  await next.release();
  await fence.release();
});

test('a cancelled attempt fails its next check', async () => {
  const ac = new AbortController();
  const fence = await pool.acquire(randomUUID(), ac.signal);
  await fence.check();
  ac.abort(new Error('cancelled by Temporal'));
  await expect(fence.check()).rejects.toThrow('cancelled by Temporal');
  await fence.release();
});

test('many fences on reused sessions leave no listeners behind', async () => {
  type WithClient = { client: { listenerCount(event: string): number } };
  const first = await pool.acquire(randomUUID());
  const baseline = (first as unknown as WithClient).client.listenerCount('end');
  await first.release();
  for (let i = 0; i < 40; i++) await (await pool.acquire(randomUUID())).release();
  // Sequential acquire/release reuses the one idle session: its listeners must not pile up.
  const last = await pool.acquire(randomUUID());
  expect((last as unknown as WithClient).client.listenerCount('end')).toBe(baseline);
  await last.release();
});
