/**
 * Locks compare real locations: two spellings of one place (a path through an in-mount symlinked
 * directory, and its real path) must conflict. claimRealPaths and beginJournal against a fresh
 * Postgres catalog — no disk, no Temporal: the lock is pure catalog logic.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { createJournalActivities } from '../../activities/journal';
import { dropDatabase, openCatalog, runMigrations, type Catalog } from '../../db/client';
import { backendMounts, journal } from '../../db/schema';
import { claimRealPaths } from '../../src/catalog/locks';
import type { MutationRequest } from '../../src/mutations';
import { testDatabaseUrl } from '../helpers/stack';

let databaseUrl: string;
let catalog: Catalog;
let acts: ReturnType<typeof createJournalActivities>;

beforeAll(async () => {
  databaseUrl = testDatabaseUrl(`filestore_test_${process.pid}_${randomBytes(4).toString('hex')}`);
  await runMigrations(databaseUrl);
  catalog = openCatalog(databaseUrl, { max: 4 });
  await catalog.db.insert(backendMounts).values({ id: 'm', kind: 'local', rootPath: '/nonexistent/real-path-locks', options: {} });
  acts = createJournalActivities({ db: catalog.db, inlineMaxBytes: 1024, taskQueue: 'rpl' });
});
afterAll(async () => {
  await catalog?.close();
  if (databaseUrl) await dropDatabase(databaseUrl);
});

/** A PENDING entry through the real beginJournal; returns its journal id. */
async function begin(req: Partial<MutationRequest> & { op: MutationRequest['op']; path: string }): Promise<string> {
  const key = randomUUID();
  const request = { idempotencyKey: key, mountId: 'm', ...(req.op === 'write' ? { source: { kind: 'inline', base64: '' } } : {}), ...req } as MutationRequest;
  const begun = await acts.beginJournal({ request, workflowId: `wf-${key}`, runId: 'r' });
  expect(begun.state).toBe('new');
  return begun.journalId;
}

async function end(journalId: string): Promise<void> {
  await catalog.db.update(journal).set({ status: 'ROLLED_BACK' }).where(eq(journal.id, journalId));
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'OK',
    (err: { code?: string }) => err.code ?? String(err),
  );
}

afterEach(async () => {
  await catalog.db.update(journal).set({ status: 'ROLLED_BACK' }).where(eq(journal.status, 'PENDING'));
});

test('a claimed real path locks its real spelling against a later beginJournal', async () => {
  const a = await begin({ op: 'write', path: 'alias/x.txt' });
  await claimRealPaths(catalog.db, { journalId: a, mountId: 'm', realPath: 'inside/x.txt', realTargetPath: null });
  const [row] = await catalog.db.select().from(journal).where(eq(journal.id, a));
  expect(row).toMatchObject({ realPath: 'inside/x.txt', realTargetPath: null });

  // The same file, the same directory, and a file below it: all one place.
  await expect(begin({ op: 'write', path: 'inside/x.txt' })).rejects.toMatchObject({ code: 'CONFLICT' });
  await expect(begin({ op: 'delete', path: 'inside', recursive: true })).rejects.toMatchObject({ code: 'CONFLICT' });
  // waitForLock turns the clash into the retryable PATH_LOCKED.
  await expect(begin({ op: 'write', path: 'inside/x.txt', waitForLock: true })).rejects.toMatchObject({ code: 'PATH_LOCKED' });
  // An unrelated sibling is free.
  await begin({ op: 'write', path: 'inside/y.txt' });

  // Once the holder ends, its real path no longer locks anything.
  await end(a);
  await begin({ op: 'write', path: 'inside/x.txt' });
});

test('a claim that lands on another pending entry\'s place is refused and stores nothing', async () => {
  // Lexically different, so both begin; only the real locations reveal the clash.
  const first = await begin({ op: 'write', path: 'inside/x.txt' });
  const second = await begin({ op: 'write', path: 'alias/x.txt' });
  const err = await claimRealPaths(catalog.db, { journalId: second, mountId: 'm', realPath: 'inside/x.txt', realTargetPath: null }).catch((e) => e);
  expect(err).toMatchObject({ code: 'CONFLICT', details: expect.objectContaining({ path: 'inside/x.txt', journalId: first }) });
  expect(err.message).toMatch(/^m:inside\/x\.txt is locked by a pending write \(wf-.*\); retry later or pass waitForLock$/);
  const [row] = await catalog.db.select().from(journal).where(eq(journal.id, second));
  expect(row.realPath).toBeNull();

  await expect(
    claimRealPaths(catalog.db, { journalId: second, mountId: 'm', realPath: 'inside/x.txt', realTargetPath: null, waitForLock: true }),
  ).rejects.toMatchObject({ code: 'PATH_LOCKED' });
  // The holder itself claims its own place without tripping over its own lock.
  await claimRealPaths(catalog.db, { journalId: first, mountId: 'm', realPath: 'inside/x.txt', realTargetPath: null });
});

test('claimed real paths conflict with each other, ancestors and move targets included', async () => {
  const a = await begin({ op: 'write', path: 'l1/deep/file.txt' });
  await claimRealPaths(catalog.db, { journalId: a, mountId: 'm', realPath: 'real/deep/file.txt', realTargetPath: null });

  // A move whose real target is an ancestor of a's real path.
  const mv = await begin({ op: 'move', path: 'src.txt', targetPath: 'l2' });
  expect(await codeOf(claimRealPaths(catalog.db, { journalId: mv, mountId: 'm', realPath: 'src.txt', realTargetPath: 'real' }))).toBe('CONFLICT');
  // A copy whose real source is below a's real path.
  const cp = await begin({ op: 'copy', path: 'l3', targetPath: 'elsewhere' });
  expect(await codeOf(claimRealPaths(catalog.db, { journalId: cp, mountId: 'm', realPath: 'real/deep/file.txt/x', realTargetPath: 'elsewhere' }))).toBe(
    'CONFLICT',
  );
  // A real target that only shares a name prefix is a different place.
  expect(await codeOf(claimRealPaths(catalog.db, { journalId: cp, mountId: 'm', realPath: 'l3', realTargetPath: 'real/deep/file.txt.bak' }))).toBe('OK');

  // And a later begin is refused by the copy's claimed real target, not just its requested one.
  await expect(begin({ op: 'mkdir', path: 'real/deep/file.txt.bak' })).rejects.toMatchObject({ code: 'CONFLICT' });
});

test('a retried claim is idempotent; a changed resolution replaces the stored one', async () => {
  const a = await begin({ op: 'move', path: 'p/a', targetPath: 'p/b' });
  const claim = { journalId: a, mountId: 'm', realPath: 'q/a', realTargetPath: 'q/b' };
  await claimRealPaths(catalog.db, claim);
  await claimRealPaths(catalog.db, claim);
  await claimRealPaths(catalog.db, { ...claim, realPath: 'r/a' });
  const [row] = await catalog.db.select().from(journal).where(eq(journal.id, a));
  expect(row).toMatchObject({ realPath: 'r/a', realTargetPath: 'q/b' });
  // q/a is free again, q/b is still held.
  await begin({ op: 'write', path: 'q/a' });
  await expect(begin({ op: 'write', path: 'q/b' })).rejects.toMatchObject({ code: 'CONFLICT' });
});

test('an entry that is no longer PENDING cannot claim (the mutation must not act)', async () => {
  const a = await begin({ op: 'write', path: 'gone.txt' });
  await end(a);
  await expect(claimRealPaths(catalog.db, { journalId: a, mountId: 'm', realPath: 'gone.txt', realTargetPath: null })).rejects.toMatchObject({
    code: 'NOT_FOUND',
  });
  const [row] = await catalog.db.select().from(journal).where(eq(journal.id, a));
  expect(row.realPath).toBeNull();
});

test('two spellings claimed at the same moment: exactly one wins', async () => {
  for (let round = 0; round < 10; round++) {
    const x = await begin({ op: 'write', path: `race${round}/via-a/f` });
    const y = await begin({ op: 'write', path: `race${round}/via-b/f` });
    const real = `race${round}/real/f`;
    const codes = await Promise.all([
      codeOf(claimRealPaths(catalog.db, { journalId: x, mountId: 'm', realPath: real, realTargetPath: null })),
      codeOf(claimRealPaths(catalog.db, { journalId: y, mountId: 'm', realPath: real, realTargetPath: null })),
    ]);
    expect(codes.sort()).toEqual(['CONFLICT', 'OK']);
  }
});
