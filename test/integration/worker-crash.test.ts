/**
 * kill -9 of the worker process in the middle of a large write: a new worker finishes the
 * workflow, no partial file is ever visible at the target, and no staging is left behind.
 * The workers here are real `filestore worker` processes (bin/filestore.js on the built dist/).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ENV_NAMES } from '../../src/config';
import { STAGING_DIR } from '../../src/paths';
import { sha256File, writeRandomFile } from '../helpers/files';
import { FILESTORE_BIN, stackEnv } from '../helpers/cli';
import { createTestStack, type TestStack } from '../helpers/stack';

const BIN = FILESTORE_BIN;
const SIZE = 768 * 1024 * 1024;

let stack: TestStack;
let root: string;
const children: ChildProcess[] = [];

function startWorkerProcess(): ChildProcess {
  const child = spawn(process.execPath, [BIN, 'worker'], {
    env: stackEnv(stack.config, { [ENV_NAMES.metricsPort]: '0' }),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  return child;
}

beforeAll(async () => {
  // No in-process worker: only the child processes serve this test's queues.
  stack = await createTestStack({ worker: false });
  root = await stack.addMount('crash');
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await stack?.teardown();
});

test('kill -9 during a large write; a new worker completes it with no partial file ever visible', async () => {
  const src = path.join(stack.tmp, 'large.bin');
  const digest = await writeRandomFile(src, SIZE);
  const target = path.join(root, 'big', 'large.bin');

  // Watch the target the whole time: it may be absent, or complete — never partial.
  const partialSightings: number[] = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const st = await fs.stat(target).catch(() => null);
      if (st && st.size !== SIZE) partialSightings.push(st.size);
      await new Promise((r) => setTimeout(r, 2));
    }
  })();

  const first = startWorkerProcess();
  const handle = await stack.client.put('crash', 'big/large.bin', { file: src });

  // Kill once the staged temp file holds a good part of the data.
  const stagingRoot = path.join(root, STAGING_DIR);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const txs = await fs.readdir(stagingRoot).catch(() => [] as string[]);
    const sizes = await Promise.all(txs.map((t) => fs.stat(path.join(stagingRoot, t, 'data.tmp')).then((s) => s.size, () => 0)));
    if (sizes.some((s) => s > 64 * 1024 * 1024)) break;
    if (Date.now() > deadline) throw new Error('the write never reached the staging area');
    await new Promise((r) => setTimeout(r, 10));
  }
  first.kill('SIGKILL');
  await new Promise((r) => first.once('exit', r));
  expect((await fs.stat(target).catch(() => null))?.size ?? 0).not.toBe(SIZE);

  startWorkerProcess();
  const result = await handle.result();
  watching = false;
  await watcher;

  expect(partialSightings).toEqual([]);
  expect(result.node).toMatchObject({ size: SIZE, sha256: digest });
  expect(await sha256File(target)).toBe(digest);
  expect(await fs.readdir(stagingRoot).catch(() => [])).toEqual([]);
  const entries = await stack.client.listJournal({});
  expect(entries).toHaveLength(1);
  expect(entries[0]).toMatchObject({ status: 'COMMITTED' });
}, 240_000);
