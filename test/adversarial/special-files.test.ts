/**
 * Special files a mount user drops into a mount (a FIFO, a device node) must never block a worker:
 * stat reports a FIFO as a file, so drift checks hash it and copies read it — both go through the
 * non-blocking, regular-file-only open and are refused at once with a typed error.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalExecutor } from '../../src/executors/local/local-executor';
import { codeOf } from '../executors/behaviour';

let root: string;
let ex: LocalExecutor;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'filestore-special-'));
  execFileSync('mkfifo', [path.join(root, 'pipe')]);
  ex = await LocalExecutor.open({ id: 'special', kind: 'local', rootPath: root, readOnly: false });
});
afterAll(async () => fs.rm(root, { recursive: true, force: true }));

test('hashing a FIFO (a drift check) is refused at once, never blocks', async () => {
  const started = Date.now();
  const code = await codeOf(ex.checksum('pipe'));
  expect(code).toMatch(/^[A-Z_]+$/);
  expect(code).not.toBe('INTERNAL');
  // Liveness only: a blocking open would never return at all.
  expect(Date.now() - started).toBeLessThan(5_000);
});

test('copying a FIFO is refused with a typed error and leaves nothing behind', async () => {
  const code = await codeOf(ex.copy('pipe', 'copy-of-pipe', { txId: 'fifo-copy' }));
  expect(code).toMatch(/^[A-Z_]+$/);
  expect(code).not.toBe('INTERNAL');
  expect(await fs.readdir(root)).not.toContain('copy-of-pipe');
});

test('many FIFO reads in parallel leave the thread pool free for ordinary work', async () => {
  await Promise.allSettled(Array.from({ length: 8 }, () => ex.checksum('pipe')));
  await fs.writeFile(path.join(root, 'plain.txt'), 'still works');
  expect(await ex.checksum('plain.txt')).toMatch(/^[0-9a-f]{64}$/);
});
