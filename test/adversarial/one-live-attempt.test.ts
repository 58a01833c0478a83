/**
 * One live attempt per transaction. A real `filestore worker` process (A) is paused at an exact
 * step of each op (fault injection), frozen with SIGSTOP past the activity's heartbeat timeout while
 * a second worker (B, in this process) takes the attempt over, then resumed with SIGCONT. Whatever
 * A does after waking must not touch the mount: the journal says COMMITTED and the disk matches,
 * and stays so.
 *
 * Before the fence, the reported failure was: A wakes after B committed and finalized, fails on
 * its vanished plan, and its inline undo deletes the committed file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { journal, txPlans } from '../../db/schema';
import { ENV_NAMES } from '../../src/config';
import { STAGING_DIR } from '../../src/paths';
import { FILESTORE_BIN, stackEnv } from '../helpers/cli';
import { exists, sha256, sha256File, writeRandomFile } from '../helpers/files';
import { createTestStack, type TestStack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';
import type { MutationHandle } from '../../src/client';

let stack: TestStack;
let root: string;
const children: ChildProcess[] = [];
const FENCE_IDLE_MS = 3000;

beforeAll(async () => {
  // No worker yet: each case starts its own worker A, then B in-process once A is frozen.
  stack = await createTestStack({ worker: false, config: { fenceIdleTimeoutMs: FENCE_IDLE_MS } });
  root = await stack.addMount('fence');
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await stack?.teardown();
});

function startWorkerA(pauseAt: string): ChildProcess {
  const child = spawn(process.execPath, [FILESTORE_BIN, 'worker'], {
    env: stackEnv(stack.config, {
      [ENV_NAMES.metricsPort]: '0',
      [ENV_NAMES.faultPauseAt]: pauseAt,
      [ENV_NAMES.fenceIdleTimeoutMs]: String(FENCE_IDLE_MS),
      [ENV_NAMES.janitorIntervalMs]: '3600000',
    }),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  return child;
}

async function killed(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

/** Everything below the mount root except staging: path → kind and content hash. */
async function disk(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await fs.readdir(root, { recursive: true, withFileTypes: true })) {
    const parent = (e as unknown as { parentPath: string }).parentPath;
    const abs = path.join(parent, e.name);
    const rel = path.relative(root, abs);
    if (rel.startsWith(STAGING_DIR) || rel.startsWith('.filestore-mount')) continue;
    out[rel] = e.isDirectory() ? 'dir' : e.isFile() ? await sha256File(abs) : 'other';
  }
  return out;
}

interface Case {
  name: string;
  op: string;
  /** The step after which worker A stops. */
  step: string;
  seed?: () => Promise<void>;
  start: () => Promise<MutationHandle>;
  expectDisk: (d: Record<string, string>) => void;
}

let srcDigest = '';
const cases: Case[] = [
  {
    name: 'write of a new file (stalled after staging its data)',
    op: 'write',
    step: 'data-staged',
    start: async () => {
      const src = path.join(stack.tmp, 'w.bin');
      srcDigest = await writeRandomFile(src, 3 * 1024 * 1024);
      return stack.client.put('fence', 'w/new.bin', { file: src });
    },
    expectDisk: (d) => expect(d['w/new.bin']).toBe(srcDigest),
  },
  {
    name: 'write over a file (stalled after its backup)',
    op: 'write',
    step: 'backup-taken',
    seed: async () => void (await (await stack.client.put('fence', 'over.txt', { content: 'old' })).result()),
    start: () => stack.client.put('fence', 'over.txt', { content: 'new content' }, { overwrite: true }),
    expectDisk: (d) => expect(d['over.txt']).toBe(sha256('new content')),
  },
  {
    name: 'mkdir (stalled after creating its directories)',
    op: 'mkdir',
    step: 'dirs-created',
    start: () => stack.client.mkdir('fence', 'm/a/b'),
    expectDisk: (d) => expect(d['m/a/b']).toBe('dir'),
  },
  {
    name: 'copy (stalled after staging the copy)',
    op: 'copy',
    step: 'data-staged',
    seed: async () => void (await (await stack.client.put('fence', 'c-src.txt', { content: 'copy me' })).result()),
    start: () => stack.client.copy('fence', 'c-src.txt', 'c/dst.txt'),
    expectDisk: (d) => {
      expect(d['c/dst.txt']).toBe(d['c-src.txt']);
      expect(d['c-src.txt']).toBeDefined();
    },
  },
  {
    name: 'move (stalled before its rename)',
    op: 'move',
    step: 'dirs-created',
    seed: async () => void (await (await stack.client.put('fence', 'mv-src.txt', { content: 'move me' })).result()),
    start: () => stack.client.move('fence', 'mv-src.txt', 'mv/dst.txt'),
    expectDisk: (d) => {
      expect(d['mv/dst.txt']).toBeDefined();
      expect(d['mv-src.txt']).toBeUndefined();
    },
  },
  {
    name: 'delete (stalled before its rename into staging)',
    op: 'delete',
    step: 'plan-saved',
    seed: async () => void (await (await stack.client.put('fence', 'del/victim.txt', { content: 'delete me' })).result()),
    start: () => stack.client.remove('fence', 'del/victim.txt'),
    expectDisk: (d) => {
      expect(d['del/victim.txt']).toBeUndefined();
      expect(d.del).toBe('dir');
    },
  },
];

test.each(cases.map((c) => [c.name, c] as const))('%s: SIGSTOP past the heartbeat timeout, a second worker takes over, SIGCONT changes nothing', async (_name, c) => {
  if (c.seed) {
    await stack.startWorker();
    await c.seed();
    await stack.worker!.shutdown();
    stack.worker = null;
  }
  const marker = path.join(stack.tmp, `paused-${c.op}-${c.step}`);
  const a = startWorkerA(`${c.op}:${c.step}:${marker}`);
  const handle = await c.start();
  await waitFor(`worker A to reach ${c.op}:${c.step}`, () => exists(marker), 60_000);
  a.kill('SIGSTOP');
  try {
    // B takes the workflow and, once Temporal declares A's attempt dead and A's fence session is
    // ended by the server, the activity.
    await stack.startWorker();
    const result = await handle.result();
    expect(result.status).toBe('COMMITTED');
    const committed = await disk();
    c.expectDisk(committed);

    // A wakes. Its next step finds its fence gone and stops; nothing it does may change the mount.
    await fs.rm(marker);
    a.kill('SIGCONT');
    await new Promise((r) => setTimeout(r, 4000));
    expect(await disk()).toEqual(committed);
    const [entry] = await stack.client.db.select().from(journal).where(eq(journal.id, result.journalId));
    expect(entry.status).toBe('COMMITTED');
    const [plan] = await stack.client.db.select().from(txPlans).where(eq(txPlans.journalId, result.journalId));
    expect(plan.plan).toMatchObject({ applied: true, finalized: true });
    expect(await fs.readdir(path.join(root, STAGING_DIR)).catch(() => [])).toEqual([]);
  } finally {
    await killed(a);
    await stack.worker?.shutdown();
    stack.worker = null;
  }
}, 180_000);
