/**
 * ATTACK: a stale compensation attempt keeps undoing after a later attempt finished, the lock was
 * released and another mutation committed.
 *
 * undoPlan (src/executors/local/local-undo.ts) checks the fence ONCE, at its start; everything after
 * (removing the undo victim tree, rmdir of every directory the plan created, removeScratch) runs
 * unchecked. A compensate attempt frozen (SIGSTOP) in the middle of removing a large tree is
 * declared dead, a second worker finishes the undo, the entry ends and the path is free; a new
 * mutation creates the same directories and commits; the frozen attempt wakes and rmdirs them.
 *
 * Found by an adversarial review; fixed: undo checks the fence before every destructive step.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { journal } from '../../db/schema';
import { ENV_NAMES } from '../../src/config';
import { STAGING_DIR } from '../../src/paths';
import { FILESTORE_BIN, stackEnv } from '../helpers/cli';
import { exists } from '../helpers/files';
import { createTestStack, type TestStack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let root: string;
const children: ChildProcess[] = [];
const FENCE_IDLE_MS = 3000;

beforeAll(async () => {
  stack = await createTestStack({ worker: false, config: { fenceIdleTimeoutMs: FENCE_IDLE_MS, janitorIntervalMs: 3_600_000 } });
  root = await stack.addMount('su');
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await stack?.worker?.shutdown();
  await stack?.teardown();
});

test('a compensate attempt frozen mid-undo must not remove what a later, committed mutation created', async () => {
  // A source tree big enough that removing its copy takes a while (created on disk directly).
  const N_DIRS = 100;
  const PER_DIR = 200;
  for (let d = 0; d < N_DIRS; d++) {
    const dir = path.join(root, 'src', `d${d}`);
    await fs.mkdir(dir, { recursive: true });
    await Promise.all(Array.from({ length: PER_DIR }, (_, i) => fs.writeFile(path.join(dir, `f${i}`), 'x')));
  }

  const marker = path.join(stack.tmp, 'paused-copy-committed');
  const a = spawn(process.execPath, [FILESTORE_BIN, 'worker'], {
    env: stackEnv(stack.config, {
      [ENV_NAMES.metricsPort]: '0',
      [ENV_NAMES.faultPauseAt]: `copy:committed:${marker}`,
      [ENV_NAMES.fenceIdleTimeoutMs]: String(FENCE_IDLE_MS),
      [ENV_NAMES.janitorIntervalMs]: '3600000',
    }),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(a);

  // copy src -> p/q/dst creates p and p/q; A stops right after the tree landed.
  const handle = await stack.client.copy('su', 'src', 'p/q/dst', { recursive: true });
  await waitFor('worker A to land the copy', () => exists(marker), 120_000);
  const [entry] = await stack.client.db.select().from(journal).where(eq(journal.workflowId, handle.workflowId));
  // The caller cancels: execute stops at its next check, compensation (on A) removes the tree.
  await stack.client.temporal.workflow.getHandle(handle.workflowId).cancel();
  await new Promise((r) => setTimeout(r, 4000)); // the cancel reaches A through its heartbeat
  const victim = path.join(root, STAGING_DIR, entry.id, 'undo-victim');
  await fs.rm(marker);
  await waitFor('A to start removing the undo victim', () => exists(victim), 60_000, 5);
  await new Promise((r) => setTimeout(r, 150));
  a.kill('SIGSTOP');
  const left = (await fs.readdir(victim).catch(() => [])).length;
  // A really stopped in the middle of its undo, or the test would not exercise the window.
  expect(left).toBeGreaterThan(0);

  try {
    // B takes over the compensation once Temporal declares A's attempt dead (30 s) and A's fence
    // session is ended by the server.
    await stack.startWorker();
    await expect(handle.result()).rejects.toBeDefined();
    await waitFor('the entry to end', async () => {
      const [e] = await stack.client.db.select().from(journal).where(eq(journal.id, entry.id));
      return e.status !== 'PENDING';
    }, 120_000);
    const [ended] = await stack.client.db.select().from(journal).where(eq(journal.id, entry.id));
    expect(ended.status).toBe('ROLLED_BACK');
    expect(await exists(path.join(root, 'p'))).toBe(false);

    // The lock is free: another mutation creates p/q and commits.
    const m3 = await (await stack.client.mkdir('su', 'p/q')).result();
    expect(m3.status).toBe('COMMITTED');
    expect(await exists(path.join(root, 'p/q'))).toBe(true);

    // A wakes.
    a.kill('SIGCONT');
    await new Promise((r) => setTimeout(r, 6000));
    const still = await exists(path.join(root, 'p/q'));
    expect(still).toBe(true);
  } finally {
    if (a.exitCode === null && a.signalCode === null) {
      a.kill('SIGCONT');
      a.kill('SIGKILL');
    }
  }
}, 300_000);
