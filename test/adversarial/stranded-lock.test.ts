/**
 * No stranded lock. A PENDING journal entry locks its path, its ancestors and its descendants, so
 * it must always end: when undo is impossible the entry ends FAILED with compensationIncomplete,
 * the nodes it touched turn INCONSISTENT, staging stays for an operator and a metric counts it; a
 * permanent finalize failure never fails a committed mutation; the janitor ends entries whose
 * workflow was terminated or is unknown; and a silent activity is kept alive by timer heartbeats.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { eq } from 'drizzle-orm';
import { journal } from '../../db/schema';
import { createActivities, type ActivityDeps } from '../../activities';
import { main } from '../../src/cli/main';
import type { Config } from '../../src/config';
import { AccessDeniedError, CommitError } from '../../src/errors';
import type { Executor } from '../../src/executors/executor';
import type { ExecutorRegistry } from '../../src/executor-registry';
import { registry as metrics } from '../../src/metrics';
import { STAGING_DIR } from '../../src/paths';
import { startWorker } from '../../src/worker';
import { stackEnv } from '../helpers/cli';
import { createTestStack, type TestStack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let root: string;

beforeAll(async () => {
  stack = await createTestStack({ worker: false, config: { janitorGraceMs: 0, janitorIntervalMs: 3_600_000 } });
  root = await stack.addMount('sl');
});
afterAll(async () => stack?.teardown());
afterEach(async () => {
  await stack.worker?.shutdown();
  stack.worker = null;
});

async function runWorker(activities?: (deps: ActivityDeps) => ReturnType<typeof createActivities>, config: Partial<Config> = {}): Promise<void> {
  stack.worker = await startWorker({ ...stack.config, ...config }, { workflowBundle: { codePath: process.env.FILESTORE_TEST_WORKFLOW_BUNDLE! }, metrics: false, activities });
}

/** A registry whose executors fail `undo` / `finalize` permanently, as a disk that refuses would. */
function refusing(executors: ExecutorRegistry, which: 'undo' | 'finalize'): ExecutorRegistry {
  return {
    async get(mountId: string): Promise<Executor> {
      const real = await executors.get(mountId);
      return new Proxy(real, {
        get(target, prop, receiver) {
          if (prop === which) return async () => Promise.reject(new AccessDeniedError('the backend refuses (injected)'));
          const v = Reflect.get(target, prop, receiver);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
    },
  } as unknown as ExecutorRegistry;
}

async function metricValue(name: string): Promise<number> {
  const m = await metrics.getSingleMetric(name)?.get();
  return (m?.values ?? []).reduce((n, v) => n + v.value, 0);
}

async function entryOf(workflowId: string) {
  const [row] = await stack.client.db.select().from(journal).where(eq(journal.workflowId, workflowId));
  return row;
}

test('undo impossible: FAILED with compensationIncomplete, nodes INCONSISTENT, staging kept, lock released, counted, listed', async () => {
  await runWorker();
  await (await stack.client.put('sl', 'dir/a.txt', { content: 'v1' })).result();
  await stack.worker!.shutdown();
  await runWorker((deps) => ({
    ...createActivities({ ...deps, executors: refusing(deps.executors, 'undo') }),
    commitMutation: async () => {
      throw new CommitError('injected commit failure');
    },
  }));
  const before = await metricValue('filestore_compensation_incomplete_total');
  const handle = await stack.client.put('sl', 'dir/a.txt', { content: 'v2' }, { overwrite: true });
  await expect(handle.result()).rejects.toMatchObject({ code: 'COMMIT_FAILED' });

  const entry = await entryOf(handle.workflowId);
  expect(entry.status).toBe('FAILED');
  expect(entry.error).toMatchObject({ code: 'COMMIT_FAILED', details: { compensationIncomplete: true, compensationError: { code: 'ACCESS_DENIED' } } });
  expect((await stack.client.getNode('sl', 'dir/a.txt'))?.state).toBe('INCONSISTENT');
  expect(await fs.readdir(path.join(root, STAGING_DIR))).toContain(entry.id);
  expect(await metricValue('filestore_compensation_incomplete_total')).toBe(before + 1);

  // The CLI lists it.
  const lines: string[] = [];
  const env = stackEnv(stack.config);
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    await main(['node', 'filestore', 'journal', 'ls', '--status', 'FAILED', '--json'], (s) => lines.push(s));
  } finally {
    process.env = saved;
  }
  const listed = (JSON.parse(lines.join('\n')) as { entries: Array<{ id: string; error: { details?: { compensationIncomplete?: boolean } } }> }).entries;
  expect(listed.find((e) => e.id === entry.id)?.error.details?.compensationIncomplete).toBe(true);

  // The lock is gone: the same path (forced past INCONSISTENT) and its parent are mutable again.
  await stack.worker!.shutdown();
  await runWorker();
  await expect((await stack.client.put('sl', 'dir/a.txt', { content: 'v3' }, { overwrite: true, force: true })).result()).resolves.toMatchObject({ status: 'COMMITTED' });
  await expect((await stack.client.mkdir('sl', 'dir/sub')).result()).resolves.toMatchObject({ status: 'COMMITTED' });
}, 120_000);

test('finalize impossible: the mutation still commits and completes, staging is kept and counted', async () => {
  await runWorker((deps) => createActivities({ ...deps, executors: refusing(deps.executors, 'finalize') }));
  const before = await metricValue('filestore_finalize_incomplete_total');
  const result = await (await stack.client.put('sl', 'fin/b.txt', { content: 'kept' })).result();
  expect(result.status).toBe('COMMITTED');
  expect(await fs.readFile(path.join(root, 'fin/b.txt'), 'utf8')).toBe('kept');
  expect(await fs.readdir(path.join(root, STAGING_DIR))).toContain(result.journalId);
  expect(await metricValue('filestore_finalize_incomplete_total')).toBe(before + 1);
}, 60_000);

describe('janitor', () => {
  test('a terminated workflow\'s PENDING entry is undone and ended; its path is free again', async () => {
    let reached!: () => void;
    const inExecute = new Promise<void>((r) => (reached = r));
    await runWorker((deps) => {
      const real = createActivities(deps);
      return {
        ...real,
        // Applies the write, then hangs: the workflow is terminated with the disk changed.
        executeMutation: async (input) => {
          const out = await real.executeMutation(input);
          reached();
          const signal = Context.current().cancellationSignal;
          await new Promise((r) => {
            const t = setTimeout(r, 60_000);
            signal.addEventListener('abort', () => (clearTimeout(t), r(undefined)));
          });
          signal.throwIfAborted();
          return out;
        },
      };
    });
    const handle = await stack.client.put('sl', 'jan/c.txt', { content: 'orphan' });
    await inExecute;
    expect(await fs.readFile(path.join(root, 'jan/c.txt'), 'utf8')).toBe('orphan');
    await stack.client.temporal.workflow.getHandle(handle.workflowId).terminate('operator says so');
    expect((await entryOf(handle.workflowId)).status).toBe('PENDING');
    await stack.worker!.shutdown();

    await runWorker();
    expect(await stack.worker!.runJanitor()).toBeGreaterThanOrEqual(1);
    const entry = await entryOf(handle.workflowId);
    expect(entry.status).toBe('ROLLED_BACK');
    expect(entry.error).toMatchObject({ code: 'WORKFLOW_GONE' });
    expect(await fs.stat(path.join(root, 'jan/c.txt')).catch(() => null)).toBeNull();
    await expect((await stack.client.put('sl', 'jan/c.txt', { content: 'again' })).result()).resolves.toMatchObject({ status: 'COMMITTED' });
  }, 120_000);

  test('a PENDING entry whose workflow Temporal never heard of (a reset server) is ended', async () => {
    await runWorker();
    const [row] = await stack.client.db
      .insert(journal)
      .values({ idempotencyKey: `ghost-${Date.now()}`, workflowId: `filestore:sl:mkdir:ghost-${Date.now()}`, op: 'mkdir', mountId: 'sl', path: 'ghost', request: {} })
      .returning();
    await stack.worker!.runJanitor();
    const [after] = await stack.client.db.select().from(journal).where(eq(journal.id, row.id));
    expect(after.status).toBe('FAILED');
    expect(after.error).toMatchObject({ code: 'WORKFLOW_GONE' });
    await expect((await stack.client.mkdir('sl', 'ghost/inside')).result()).resolves.toMatchObject({ status: 'COMMITTED' });
  }, 60_000);
});

test('an activity that reports no progress for longer than its heartbeat timeout is not taken for dead', async () => {
  const attempts: number[] = [];
  await runWorker((deps) => {
    const real = createActivities(deps);
    return {
      ...real,
      // Like an in-kernel copy or a long fsync: busy, silent, longer than the 10 s heartbeat timeout.
      executeMutation: async (input) => {
        attempts.push(Context.current().info.attempt);
        await new Promise((r) => setTimeout(r, 13_000));
        return real.executeMutation(input);
      },
    };
  });
  const result = await (await stack.client.put('sl', 'slow/d.txt', { content: 'slow' })).result();
  expect(result.status).toBe('COMMITTED');
  expect(attempts).toEqual([1]);
}, 90_000);

test('the janitor also runs on its own timer in every worker', async () => {
  await runWorker(undefined, { janitorIntervalMs: 200 });
  const [row] = await stack.client.db
    .insert(journal)
    .values({ idempotencyKey: `ghost2-${Date.now()}`, workflowId: `filestore:sl:mkdir:ghost2-${Date.now()}`, op: 'mkdir', mountId: 'sl', path: 'ghost2', request: {} })
    .returning();
  await waitFor('the janitor timer to end the entry', async () => {
    const [after] = await stack.client.db.select().from(journal).where(eq(journal.id, row.id));
    return after.status !== 'PENDING';
  }, 20_000);
}, 60_000);
