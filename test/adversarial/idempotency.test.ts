/**
 * Point 10: an idempotency key stands for ONE request. A different request under a key that is
 * running (or done) fails with IDEMPOTENCY_KEY_REUSED — it never attaches to the first run (and
 * gets its result), and never runs twice. The same request under the same key still attaches.
 *
 * The first mutation is held inside its execute activity by a gate the test opens, so "while the
 * first runs" is certain, not a race against a fast disk.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { heartbeat } from '@temporalio/activity';
import { eq } from 'drizzle-orm';
import { createActivities } from '../../activities';
import { createJournalActivities } from '../../activities/journal';
import { journal } from '../../db/schema';
import { mountTaskQueue } from '../../src/config';
import { mutationWorkflowId, type MutationRequest } from '../../src/mutations';
import { sha256 } from '../helpers/files';
import { createTestStack, type TestStack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let root: string;

interface Gate {
  started: boolean;
  open: boolean;
}
/** Gated idempotency keys: their execute waits (heartbeating) until the test opens the gate. */
const gates = new Map<string, Gate>();
/** One line per execute attempt that reached the executor: `<key> <op> <path>`. */
const executions: string[] = [];

beforeAll(async () => {
  stack = await createTestStack({
    activities: (deps) => {
      const standard = createActivities(deps);
      return {
        ...standard,
        async executeMutation(input: Parameters<typeof standard.executeMutation>[0]) {
          const req = input.request as MutationRequest;
          const gate = gates.get(req.idempotencyKey);
          if (gate) {
            gate.started = true;
            while (!gate.open) {
              heartbeat();
              await new Promise((r) => setTimeout(r, 100));
            }
          }
          executions.push(`${req.idempotencyKey} ${req.op} ${req.path}`);
          return standard.executeMutation(input);
        },
      };
    },
  });
  root = await stack.addMount('idem');
});
afterAll(async () => stack?.teardown());

/** Opens a gate for `key` and returns a function that releases it. */
function hold(key: string): { started: () => Promise<void>; release: () => void } {
  const gate: Gate = { started: false, open: false };
  gates.set(key, gate);
  return {
    started: () => waitFor(`the gated execute of ${key}`, async () => gate.started, 30_000).then(() => undefined),
    release: () => {
      gate.open = true;
    },
  };
}

async function journalEntries(key: string) {
  return stack.client.db.select().from(journal).where(eq(journal.idempotencyKey, key));
}

test('same key, different content while the first runs → IDEMPOTENCY_KEY_REUSED; the first commits its own bytes, once', async () => {
  const key = `content-${Date.now()}`;
  const gate = hold(key);
  const first = await stack.client.put('idem', 'a.txt', { content: 'first' }, { idempotencyKey: key });
  await gate.started();

  await expect(stack.client.put('idem', 'a.txt', { content: 'second' }, { idempotencyKey: key })).rejects.toMatchObject({
    code: 'IDEMPOTENCY_KEY_REUSED',
  });
  // Also a different path under the same op (same workflow id), and an overwrite flag.
  await expect(stack.client.put('idem', 'other.txt', { content: 'first' }, { idempotencyKey: key })).rejects.toMatchObject({
    code: 'IDEMPOTENCY_KEY_REUSED',
  });
  await expect(stack.client.put('idem', 'a.txt', { content: 'first' }, { idempotencyKey: key, overwrite: true })).rejects.toMatchObject({
    code: 'IDEMPOTENCY_KEY_REUSED',
  });

  gate.release();
  const result = await first.result();
  expect(result.node).toMatchObject({ path: 'a.txt', sha256: sha256('first') });
  expect(await fs.readFile(path.join(root, 'a.txt'), 'utf8')).toBe('first');
  expect(executions.filter((e) => e.startsWith(`${key} `))).toEqual([`${key} write a.txt`]);
  expect(await journalEntries(key)).toHaveLength(1);
  expect(await fs.readdir(root)).not.toContain('other.txt');

  // Done now: the different request is still refused; the same one answers with the same result.
  await expect((await stack.client.put('idem', 'a.txt', { content: 'second' }, { idempotencyKey: key })).result()).rejects.toMatchObject({
    code: 'IDEMPOTENCY_KEY_REUSED',
  });
  expect(await (await stack.client.put('idem', 'a.txt', { content: 'first' }, { idempotencyKey: key })).result()).toEqual(result);
  expect(executions.filter((e) => e.startsWith(`${key} `))).toHaveLength(1);
  expect(await fs.readFile(path.join(root, 'a.txt'), 'utf8')).toBe('first');
});

test('the same request again while it runs attaches (waiting options are not part of the request)', async () => {
  const key = `attach-${Date.now()}`;
  const gate = hold(key);
  const first = await stack.client.mkdir('idem', 'dir-attach', { idempotencyKey: key });
  await gate.started();
  const second = await stack.client.mkdir('idem', 'dir-attach', { idempotencyKey: key, waitForLock: true, lockTimeoutMs: 1_000 });
  expect(second.workflowId).toBe(first.workflowId);
  gate.release();
  const [r1, r2] = await Promise.all([first.result(), second.result()]);
  expect(r2).toEqual(r1);
  expect(executions.filter((e) => e.startsWith(`${key} `))).toEqual([`${key} mkdir dir-attach`]);
  expect(await journalEntries(key)).toHaveLength(1);
});

test('same key, different op (another workflow id) while the first runs → refused by the journal, never executed', async () => {
  const key = `op-${Date.now()}`;
  const gate = hold(key);
  const first = await stack.client.put('idem', 'b.txt', { content: 'bee' }, { idempotencyKey: key });
  await gate.started();
  const rival = await stack.client.mkdir('idem', 'b-dir', { idempotencyKey: key });
  expect(rival.workflowId).not.toBe(first.workflowId);
  await expect(rival.result()).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  gate.release();
  expect((await first.result()).node).toMatchObject({ path: 'b.txt', sha256: sha256('bee') });
  expect(executions.filter((e) => e.startsWith(`${key} `))).toEqual([`${key} write b.txt`]);
  expect(await fs.readdir(root)).not.toContain('b-dir');
  expect(await journalEntries(key)).toHaveLength(1);
});

test('a run started without the fingerprint memo (older client, raw start) is still compared by its input', async () => {
  const key = `raw-${Date.now()}`;
  const gate = hold(key);
  const workflowId = mutationWorkflowId('idem', 'mkdir', key);
  // Key order differs from the client's, and it carries the (ignored) queue field: still the same request.
  const raw = { path: 'raw-dir', op: 'mkdir', mountTaskQueue: mountTaskQueue(stack.config, 'idem'), mountId: 'idem', idempotencyKey: key };
  const started = await stack.client.temporal.workflow.start('mutationWorkflow', { taskQueue: stack.config.taskQueue, workflowId, args: [raw] });
  await gate.started();

  await expect(stack.client.mkdir('idem', 'raw-dir', { idempotencyKey: key, parents: false })).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  const same = await stack.client.mkdir('idem', 'raw-dir', { idempotencyKey: key });
  expect(same.workflowId).toBe(workflowId);
  gate.release();
  expect(await same.result()).toEqual(await started.result());
  expect(executions.filter((e) => e.startsWith(`${key} `))).toHaveLength(1);
});

test('the same key begun on two mounts at the same moment → one entry; the other is refused, not a raw unique violation', async () => {
  await stack.addMount('idem-b');
  const acts = createJournalActivities({ db: stack.client.db, inlineMaxBytes: 1024, taskQueue: stack.config.taskQueue });
  for (let round = 0; round < 10; round++) {
    const key = `two-mounts-${Date.now()}-${round}`;
    const begin = (mountId: string) =>
      acts
        .beginJournal({ request: { idempotencyKey: key, mountId, op: 'mkdir', path: `race-${round}` }, workflowId: `wf-${mountId}-${key}`, runId: 'r' })
        .then(
          (b) => b.state,
          (err: { code?: string; message?: string }) => err.code ?? `raw: ${err.message}`,
        );
    const outcomes = await Promise.all([begin('idem'), begin('idem-b')]);
    expect(outcomes.sort()).toEqual(['IDEMPOTENCY_KEY_REUSED', 'new']);
    expect(await journalEntries(key)).toHaveLength(1);
    await stack.client.db.update(journal).set({ status: 'ROLLED_BACK' }).where(eq(journal.idempotencyKey, key));
  }
});
