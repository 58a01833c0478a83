/**
 * Locks compare real locations: a path through an in-mount symlinked directory and its real path
 * are one place. While a write through the alias is in flight, a write of the real path is refused
 * with CONFLICT (and the other way round); the catalog records the node where it really is.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { startWorker } from '../../src/worker';
import { exists } from '../helpers/files';
import { createTestStack, type TestStack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';

let stack: TestStack;
let root: string;

beforeAll(async () => {
  stack = await createTestStack({ worker: false });
  root = await stack.addMount('rl');
  await fs.mkdir(path.join(root, 'inside'));
  await fs.symlink('inside', path.join(root, 'alias'));
});
afterAll(async () => stack?.teardown());
afterEach(async () => {
  await stack.worker?.shutdown();
  stack.worker = null;
});

async function pausedWorker(op: string, step: string, marker: string): Promise<void> {
  stack.worker = await startWorker({ ...stack.config, faultPauseAt: `${op}:${step}:${marker}` }, {
    workflowBundle: { codePath: process.env.FILESTORE_TEST_WORKFLOW_BUNDLE! },
    metrics: false,
  });
}

test.each([
  ['through the alias first, then the real path', 'alias/x.txt', 'inside/x.txt'],
  ['through the real path first, then the alias', 'inside/y.txt', 'alias/y.txt'],
])('%s: the second is a CONFLICT while the first is in flight', async (_name, first, second) => {
  const marker = path.join(stack.tmp, `rl-${path.basename(first)}`);
  await pausedWorker('write', 'data-staged', marker);
  const a = await stack.client.put('rl', first, { content: 'first' });
  await waitFor('the first write to reach its staged data', () => exists(marker), 30_000);
  await expect((await stack.client.put('rl', second, { content: 'second' })).result()).rejects.toMatchObject({ code: 'CONFLICT' });
  await fs.rm(marker);
  const done = await a.result();
  expect(done.status).toBe('COMMITTED');
  const real = path.join(root, 'inside', path.basename(first));
  expect(await fs.readFile(real, 'utf8')).toBe('first');
  // Recorded where it really is, and the result names that node.
  expect(done.node).toMatchObject({ path: `inside/${path.basename(first)}`, size: 5 });
  expect(await stack.client.getNode('rl', `inside/${path.basename(first)}`)).toMatchObject({ state: 'ACTIVE', size: 5 });
}, 90_000);

test('a move into a directory through its alias conflicts with a delete of the real directory', async () => {
  stack.worker = await startWorker(stack.config, { workflowBundle: { codePath: process.env.FILESTORE_TEST_WORKFLOW_BUNDLE! }, metrics: false });
  await (await stack.client.put('rl', 'm.txt', { content: 'move me' })).result();
  await (await stack.client.put('rl', 'inside/keep.txt', { content: 'keep' })).result();
  await stack.worker.shutdown();
  const marker = path.join(stack.tmp, 'rl-move');
  await pausedWorker('move', 'plan-saved', marker);
  const mv = await stack.client.move('rl', 'm.txt', 'alias/m.txt');
  await waitFor('the move to save its plan', () => exists(marker), 30_000);
  await expect((await stack.client.remove('rl', 'inside', { recursive: true })).result()).rejects.toMatchObject({ code: 'CONFLICT' });
  await fs.rm(marker);
  expect((await mv.result()).status).toBe('COMMITTED');
  expect(await fs.readFile(path.join(root, 'inside', 'm.txt'), 'utf8')).toBe('move me');
}, 90_000);
