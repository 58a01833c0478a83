/**
 * Point 4 of issue 6 — sources restricted. A `put` file source used to be any path the worker
 * could open: /proc/self/environ (the worker's secrets) landed in a mount, a FIFO blocked a libuv
 * thread for ever (four of them stall every fs call of the worker), /dev/zero streamed until the
 * size limit. Now a file source must be a regular file under FILESTORE_SOURCE_ROOTS, reached
 * without symlinks, opened without blocking, re-checked with fstat and read no further than the
 * size seen at open; everything else is a typed, immediate refusal — by the SDK where it can, and
 * by the worker, which is the authority (here reached with `checkSource: false`).
 *
 * Time bounds are liveness checks (a blocked FIFO never ends), not performance assertions.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { LocalExecutor } from '../../src/executors/local/local-executor';
import { openWriteSource } from '../../src/executors/local/local-source';
import { streamIntoFile } from '../../src/executors/local/local-transfer';
import { sha256, sha256File } from '../helpers/files';
import { createTestStack, type TestStack } from '../helpers/stack';

let stack: TestStack;
let root: string;
/** Inside the stack's source roots. */
let inside: string;
/** Outside every source root of the stack. */
let outside: string;

const SECRET = `secret-${randomUUID()}`;

/** A directory outside the stack's roots (they cover the OS temp dir): /var/tmp, or the home directory. */
async function makeOutsideDir(roots: readonly string[]): Promise<string> {
  const realRoots = await Promise.all(roots.map((r) => fs.realpath(r)));
  for (const base of ['/var/tmp', os.homedir()]) {
    const real = await fs.realpath(base).catch(() => null);
    if (real && !realRoots.some((r) => real === r || real.startsWith(r + path.sep))) return fs.mkdtemp(path.join(real, 'filestore-sources-outside-'));
  }
  throw new Error('no directory outside the source roots to test with');
}

beforeAll(async () => {
  stack = await createTestStack();
  root = await stack.addMount('src');
  inside = await fs.realpath(await fs.mkdtemp(path.join(stack.tmp, 'sources-')));
  outside = await makeOutsideDir(stack.config.sourceRoots);
  await fs.writeFile(path.join(outside, 'secret.txt'), SECRET);
  await fs.writeFile(path.join(inside, 'good.txt'), 'good content\n');
  await fs.mkdir(path.join(inside, 'sub'));
  await fs.writeFile(path.join(inside, 'sub', 'deep.txt'), 'deep\n');
  await fs.symlink(path.join(outside, 'secret.txt'), path.join(inside, 'link-out'));
  await fs.symlink(path.join(inside, 'good.txt'), path.join(inside, 'link-in'));
  await fs.symlink(path.join(inside, 'sub'), path.join(inside, 'dir-link'));
  for (let i = 0; i < 6; i++) execFileSync('mkfifo', [path.join(inside, `fifo-${i}`)]);
}, 60_000);
afterAll(async () => {
  await stack?.teardown();
  if (outside) await fs.rm(outside, { recursive: true, force: true });
});

/** What the mount holds, Filestore's own bookkeeping (staging, identity marker) left out. */
async function mountContent(): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(root, { recursive: true })) {
    if (!String(e).startsWith('.filestore')) out.push(String(e));
  }
  return out.sort();
}

/** Asserts the worker refuses `source` (SDK check skipped): typed code, promptly, journal FAILED, nothing in the mount. */
async function expectWorkerRefuses(source: string, code: string): Promise<void> {
  const key = `src-${randomUUID()}`;
  const started = Date.now();
  const handle = await stack.client.put('src', `w/${key}.bin`, { file: source, checkSource: false }, { idempotencyKey: key });
  await expect(handle.result()).rejects.toMatchObject({ code });
  expect(Date.now() - started).toBeLessThan(20_000);
  const entry = await stack.client.getJournalEntry(key);
  expect(entry).toMatchObject({ status: 'FAILED', error: expect.objectContaining({ code }) });
  expect(await mountContent()).toEqual([]);
}

const refusals: Array<[string, () => string, string]> = [
  ['/proc/self/environ (the worker\'s secrets)', () => '/proc/self/environ', 'SOURCE_NOT_ALLOWED'],
  ['/dev/zero (a device)', () => '/dev/zero', 'SOURCE_NOT_ALLOWED'],
  ['a regular file outside the roots', () => path.join(outside, 'secret.txt'), 'SOURCE_NOT_ALLOWED'],
  ['a symlink inside the roots pointing outside', () => path.join(inside, 'link-out'), 'SOURCE_NOT_ALLOWED'],
  ['a symlink inside the roots pointing inside', () => path.join(inside, 'link-in'), 'SOURCE_NOT_ALLOWED'],
  ['a path through a symlinked directory', () => path.join(inside, 'dir-link', 'deep.txt'), 'SOURCE_NOT_ALLOWED'],
  ['a directory', () => path.join(inside, 'sub'), 'SOURCE_NOT_ALLOWED'],
  ['a FIFO', () => path.join(inside, 'fifo-0'), 'SOURCE_NOT_ALLOWED'],
  ['a missing file', () => path.join(inside, 'nope.bin'), 'NOT_FOUND'],
];

describe.each(refusals)('%s', (_name, source, code) => {
  test('the SDK refuses it before starting anything', async () => {
    const key = `sdk-${randomUUID()}`;
    await expect(stack.client.put('src', `s/${key}.bin`, { file: source() }, { idempotencyKey: key })).rejects.toMatchObject({ code });
    expect(await stack.client.getJournalEntry(key)).toBeNull();
    expect(await mountContent()).toEqual([]);
  });

  test('the worker refuses it at once: journal FAILED, nothing written', async () => {
    await expectWorkerRefuses(source(), code);
  });
});

test('FIFOs never block the worker: parallel FIFO puts are refused, then a normal put commits promptly', async () => {
  const fifos = [1, 2, 3, 4, 5].map((i) => path.join(inside, `fifo-${i}`));
  await Promise.all(fifos.map((f) => expectWorkerRefuses(f, 'SOURCE_NOT_ALLOWED')));
  const started = Date.now();
  const result = await (await stack.client.put('src', 'after-fifos.txt', { file: path.join(inside, 'good.txt') })).result();
  expect(Date.now() - started).toBeLessThan(20_000);
  expect(result.node).toMatchObject({ size: 13, sha256: sha256('good content\n') });
  await fs.rm(path.join(root, 'after-fifos.txt'));
});

test('a regular file inside the roots is still written (SDK checks on, and off)', async () => {
  const a = await (await stack.client.put('src', 'ok/a.txt', { file: path.join(inside, 'good.txt') })).result();
  const b = await (await stack.client.put('src', 'ok/b.txt', { file: path.join(inside, 'sub', 'deep.txt'), checkSource: false })).result();
  expect(a.node).toMatchObject({ sha256: sha256('good content\n') });
  expect(b.node).toMatchObject({ sha256: sha256('deep\n') });
  expect(await fs.readFile(path.join(root, 'ok', 'a.txt'), 'utf8')).toBe('good content\n');
  expect(await fs.readFile(path.join(root, 'ok', 'b.txt'), 'utf8')).toBe('deep\n');
  await fs.rm(path.join(root, 'ok'), { recursive: true });
});

describe('local-source: the size seen at open bounds the read', () => {
  test('a file that grows while it is read is stored at its size at open', async () => {
    const src = path.join(inside, 'growing.bin');
    const first = Buffer.alloc(3 * 1024 * 1024, 1);
    await fs.writeFile(src, first);
    const opened = await openWriteSource(src, { roots: [inside] });
    await fs.appendFile(src, Buffer.alloc(5 * 1024 * 1024, 2));
    const dest = path.join(stack.tmp, 'grown-copy.bin');
    const r = await streamIntoFile({ kind: 'opened', file: opened }, dest);
    expect(r).toEqual({ bytes: first.length, sha256: sha256(first) });
    expect(await sha256File(dest)).toBe(sha256(first));
  });

  test('a file that grows while a write streams it (executor, by path) is stored at its size at open', async () => {
    // Every chunk written to the staging file comes after the source was opened; the source
    // doubles in size during the first chunk's progress callback.
    const src = path.join(inside, 'growing-2.bin');
    const first = Buffer.alloc(9 * 1024 * 1024, 3);
    await fs.writeFile(src, first);
    const ex = await LocalExecutor.open({ id: 'grow', kind: 'local', rootPath: await fs.mkdtemp(path.join(stack.tmp, 'grow-')), readOnly: false });
    let grew = false;
    const out = await ex.write('g.bin', { kind: 'file', path: src }, {
      txId: `tx-${randomUUID()}`,
      sourceRoots: [inside],
      onProgress: () => {
        if (grew) return;
        grew = true;
        appendFileSync(src, Buffer.alloc(16 * 1024 * 1024, 4));
      },
    });
    expect(grew).toBe(true);
    expect(out.upserted.at(-1)).toMatchObject({ size: first.length, sha256: sha256(first) });
  });

  test('a file that shrinks while it is read fails with SOURCE_CHANGED and leaves no partial copy', async () => {
    const src = path.join(inside, 'shrinking.bin');
    await fs.writeFile(src, Buffer.alloc(2 * 1024 * 1024, 7));
    const opened = await openWriteSource(src, { roots: [inside] });
    await fs.truncate(src, 1024);
    const dest = path.join(stack.tmp, 'shrunk-copy.bin');
    await expect(streamIntoFile({ kind: 'opened', file: opened }, dest)).rejects.toMatchObject({ code: 'SOURCE_CHANGED' });
    await expect(fs.stat(dest)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('the executor refuses every file source when no roots are given (fail closed)', async () => {
    const ex = await LocalExecutor.open({ id: 'closed', kind: 'local', rootPath: await fs.mkdtemp(path.join(stack.tmp, 'closed-')), readOnly: false });
    await expect(ex.write('x.txt', { kind: 'file', path: path.join(inside, 'good.txt') }, { txId: `tx-${randomUUID()}` })).rejects.toMatchObject({
      code: 'SOURCE_NOT_ALLOWED',
      message: expect.stringContaining('FILESTORE_SOURCE_ROOTS'),
    });
  });
});

describe('FILESTORE_SOURCE_ROOTS', () => {
  test('default is empty; a comma or colon list of absolute directories is accepted; relative ones are not', () => {
    expect(loadConfig({}).sourceRoots).toEqual([]);
    expect(loadConfig({ FILESTORE_SOURCE_ROOTS: '/srv/in, /tmp:/var/uploads' }).sourceRoots).toEqual(['/srv/in', '/tmp', '/var/uploads']);
    expect(() => loadConfig({ FILESTORE_SOURCE_ROOTS: 'relative/dir' })).toThrow(/FILESTORE_SOURCE_ROOTS/);
  });
});
