/**
 * Cancel at every step. A cancelled mutation ends COMMITTED or ROLLED_BACK / FAILED — matching
 * the disk — and never PENDING: execute and verify are cancelled with WAIT_CANCELLATION_COMPLETED
 * (compensation starts only after they stopped), begin and commit cannot be cancelled half-way.
 *
 * Two kinds of hold: inside the executor between two durable steps (fault injection: the
 * activity is mid-way on the disk when the cancel arrives), and around whole activities (an
 * activity that keeps running after the cancel, like an in-kernel copy would).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { journal } from '../../db/schema';
import { createActivities, type ActivityDeps } from '../../activities';
import { STAGING_DIR } from '../../src/paths';
import { startWorker } from '../../src/worker';
import type { Config } from '../../src/config';
import { exists } from '../helpers/files';
import { createTestStack, type TestStack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let root: string;

beforeAll(async () => {
  stack = await createTestStack({ worker: false });
  root = await stack.addMount('cx');
});
afterAll(async () => stack?.teardown());
afterEach(async () => {
  await stack.worker?.shutdown();
  stack.worker = null;
});

async function runWorker(config: Partial<Config>, activities?: (deps: ActivityDeps) => ReturnType<typeof createActivities>): Promise<void> {
  stack.worker = await startWorker({ ...stack.config, ...config }, { workflowBundle: { codePath: process.env.FILESTORE_TEST_WORKFLOW_BUNDLE! }, metrics: false, activities });
}

async function statusOf(workflowId: string): Promise<string> {
  const [row] = await stack.client.db.select({ status: journal.status }).from(journal).where(eq(journal.workflowId, workflowId));
  return row?.status ?? 'NONE';
}

async function settle(handle: { result(): Promise<unknown> }): Promise<'completed' | 'failed'> {
  return handle.result().then(
    () => 'completed' as const,
    () => 'failed' as const,
  );
}

describe('cancel while execute is between two durable steps on the disk', () => {
  const cases = [
    ['write of a new file', 'write', 'data-staged', 'w1/new.txt'],
    ['write of a new file, after its rename into place', 'write', 'committed', 'w2/new.txt'],
    ['mkdir, after creating its directories', 'mkdir', 'dirs-created', 'd1/x/y'],
  ] as const;

  test.each(cases)('%s: ends ROLLED_BACK with the disk as before', async (_name, op, step, target) => {
    const marker = path.join(stack.tmp, `cx-${op}-${step}`);
    await runWorker({ faultPauseAt: `${op}:${step}:${marker}` });
    const handle = op === 'write' ? await stack.client.put('cx', target, { content: 'cancelled' }) : await stack.client.mkdir('cx', target);
    await waitFor('execute to pause', () => exists(marker), 30_000);
    await stack.client.temporal.workflow.getHandle(handle.workflowId).cancel();
    // Long enough that a compensation not waiting for execute would already have run.
    await new Promise((r) => setTimeout(r, 2500));
    await fs.rm(marker);
    expect(await settle(handle)).toBe('failed');
    expect(['ROLLED_BACK', 'FAILED']).toContain(await statusOf(handle.workflowId));
    expect(await exists(path.join(root, target))).toBe(false);
    expect(await exists(path.join(root, target.split('/')[0]))).toBe(false);
    expect(await fs.readdir(path.join(root, STAGING_DIR)).catch(() => [])).toEqual([]);
  }, 90_000);
});

describe('cancel while a whole activity is held', () => {
  type Step = 'beginJournal' | 'executeMutation' | 'verifyMutation' | 'commitMutation' | 'finalizeMutation';
  const gates = new Map<Step, { reached: () => void; release: Promise<void> }>();

  function holding(step: Step): { reached: Promise<void>; open: () => void } {
    let open!: () => void;
    let reached!: () => void;
    const r = new Promise<void>((res) => (reached = res));
    gates.set(step, { reached, release: new Promise<void>((res) => (open = res)) });
    return { reached: r, open };
  }

  const withGates = (deps: ActivityDeps) => {
    const real = createActivities(deps);
    const wrap = <K extends Step>(name: K) =>
      (async (...args: unknown[]) => {
        const gate = gates.get(name);
        if (gate) {
          gates.delete(name);
          gate.reached();
          await gate.release;
        }
        return (real[name] as (...a: unknown[]) => Promise<unknown>)(...args);
      }) as (typeof real)[K];
    return {
      ...real,
      beginJournal: wrap('beginJournal'),
      executeMutation: wrap('executeMutation'),
      verifyMutation: wrap('verifyMutation'),
      commitMutation: wrap('commitMutation'),
      finalizeMutation: wrap('finalizeMutation'),
    };
  };

  const cases: Array<[Step, 'COMMITTED' | 'ENDED']> = [
    ['beginJournal', 'ENDED'],
    ['executeMutation', 'ENDED'],
    ['verifyMutation', 'ENDED'],
    ['commitMutation', 'COMMITTED'],
    ['finalizeMutation', 'COMMITTED'],
  ];

  test.each(cases)('cancel during %s → %s, matching the disk, never PENDING', async (step, expected) => {
    await runWorker({}, withGates);
    const target = `held-${step}/file.txt`;
    const held = holding(step);
    const handle = await stack.client.put('cx', target, { content: step });
    await held.reached;
    await stack.client.temporal.workflow.getHandle(handle.workflowId).cancel();
    await new Promise((r) => setTimeout(r, 1500));
    held.open();
    const ended = await settle(handle);
    const status = await statusOf(handle.workflowId);
    const onDisk = await exists(path.join(root, target));
    if (expected === 'COMMITTED') {
      expect(ended).toBe('completed');
      expect(status).toBe('COMMITTED');
      expect(onDisk).toBe(true);
      expect((await stack.client.getNode('cx', target))?.state).toBe('ACTIVE');
    } else {
      expect(ended).toBe('failed');
      expect(['ROLLED_BACK', 'FAILED']).toContain(status);
      expect(onDisk).toBe(false);
    }
    expect(await fs.readdir(path.join(root, STAGING_DIR)).catch(() => [])).toEqual([]);
  }, 90_000);
});
