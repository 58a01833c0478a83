/**
 * The `filestore` command as a person runs it (bin/filestore.js on the built dist/), against a
 * real worker process, Temporal and Postgres: every verb, JSON output, exit codes, one-line errors,
 * and the worker's /metrics.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { and, eq } from 'drizzle-orm';
import { nodes } from '../../db/schema';
import { ENV_NAMES } from '../../src/config';
import { sha256 } from '../helpers/files';
import { FILESTORE_BIN, runCli, stackEnv } from '../helpers/cli';
import { createTestStack, type TestStack } from '../helpers/stack';

const BIN = FILESTORE_BIN;
const cli = (...args: string[]) => runCli(env, ...args);

let stack: TestStack;
let env: NodeJS.ProcessEnv;
let worker: ChildProcess;
let metricsPort: number;
let dir: string;

beforeAll(async () => {
  stack = await createTestStack({ worker: false });
  metricsPort = 20000 + Math.floor(Math.random() * 20000);
  env = stackEnv(stack.config);
  worker = spawn(process.execPath, [BIN, 'worker'], { env: { ...env, [ENV_NAMES.metricsPort]: String(metricsPort) }, stdio: 'ignore' });
  dir = path.join(stack.tmp, 'cli-mount');
  await fs.mkdir(dir);
});
afterAll(async () => {
  worker?.kill('SIGTERM');
  await new Promise((r) => (worker.exitCode !== null ? r(null) : worker.once('exit', r)));
  await stack?.teardown();
});

test('mount add / mount ls', async () => {
  const added = await cli('mount', 'add', 'files', '--local', dir);
  expect(added).toMatchObject({ code: 0 });
  expect(added.stdout).toContain('mount files →');
  const ls = await cli('mount', 'ls', '--json');
  expect(JSON.parse(ls.stdout)).toEqual({ mounts: [expect.objectContaining({ id: 'files', kind: 'local', rootPath: await fs.realpath(dir) })], nextCursor: null });
  const dup = await cli('mount', 'add', 'files', '--local', dir);
  expect(dup.code).not.toBe(0);
  expect(dup.stderr.trim()).toBe('filestore: MOUNT_EXISTS: a mount named "files" already exists');
});

test('put, stat, ls, mkdir, cp, mv, rm and journal ls', async () => {
  const src = path.join(stack.tmp, 'hello.txt');
  await fs.writeFile(src, 'hello from the cli\n');

  // The worker picks the new mount up from the catalog (NOTIFY, or the refresh interval).
  const put = await cli('put', src, 'files:docs/hello.txt', '--key', 'cli-put-1');
  expect(put.code).toBe(0);
  expect(put.stdout).toContain('workflow filestore:files:write:cli-put-1');
  expect(put.stdout).toContain(`sha256 ${sha256('hello from the cli\n')}`);
  expect(await fs.readFile(path.join(dir, 'docs/hello.txt'), 'utf8')).toBe('hello from the cli\n');

  const stat = JSON.parse((await cli('stat', 'files:docs/hello.txt', '--json')).stdout);
  expect(stat).toMatchObject({ path: 'docs/hello.txt', kind: 'file', size: 19, state: 'ACTIVE', version: 1 });

  expect((await cli('mkdir', 'files:docs/sub')).code).toBe(0);
  expect((await cli('cp', 'files:docs/hello.txt', 'files:docs/sub/copy.txt')).code).toBe(0);
  expect((await cli('mv', 'files:docs/sub/copy.txt', 'files:docs/sub/moved.txt')).code).toBe(0);
  const ls = JSON.parse((await cli('ls', 'files:docs', '--json')).stdout) as { nodes: Array<{ path: string }>; nextCursor: string | null };
  expect(ls.nodes.map((n) => n.path)).toEqual(['docs/hello.txt', 'docs/sub']);
  expect(ls.nextCursor).toBeNull();
  const human = await cli('ls', 'files:docs/sub');
  expect(human.stdout).toContain('docs/sub/moved.txt');

  const rm = await cli('rm', 'files:docs', '-r', '--json');
  expect(JSON.parse(rm.stdout)).toMatchObject({ status: 'COMMITTED', op: 'delete', path: 'docs' });
  await expect(fs.stat(path.join(dir, 'docs'))).rejects.toMatchObject({ code: 'ENOENT' });

  const journal = (JSON.parse((await cli('journal', 'ls', '--json')).stdout) as { entries: Array<{ op: string; status: string }> }).entries;
  expect(journal.map((j) => j.op)).toEqual(['delete', 'move', 'copy', 'mkdir', 'write']);
  expect(journal.every((j) => j.status === 'COMMITTED')).toBe(true);
});

test('errors: non-zero exit and exactly one clear line', async () => {
  const traversal = await cli('mkdir', 'files:../escape');
  expect(traversal.code).not.toBe(0);
  expect(traversal.stderr.trim().split('\n')).toHaveLength(1);
  expect(traversal.stderr).toMatch(/^filestore: PATH_TRAVERSAL: /);

  const unknown = await cli('rm', 'nowhere:x');
  expect(unknown.stderr.trim()).toBe('filestore: UNKNOWN_MOUNT: no mount named "nowhere"');

  const missing = await cli('rm', 'files:not-there.txt');
  expect(missing.code).not.toBe(0);
  expect(missing.stdout).toContain('workflow filestore:files:delete:');
  expect(missing.stderr.trim()).toBe('filestore: NOT_FOUND: "not-there.txt" does not exist');

  const badLimit = await cli('journal', 'ls', '--limit', 'abc');
  expect(badLimit.code).not.toBe(0);
  expect(badLimit.stderr.trim()).toBe('filestore: INVALID_REQUEST: expected a positive whole number, got "abc"');

  const badTarget = await cli('stat', 'no-colon');
  expect(badTarget.stderr.trim()).toMatch(/^filestore: INVALID_REQUEST: expected <mount>:<path>/);
});

test('the worker serves Prometheus metrics without paths in labels', async () => {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  expect(res.status).toBe(200);
  const body = await res.text();
  expect(body).toMatch(/filestore_executor_duration_seconds_count\{backend="local",op="write",outcome="ok"\} [1-9]/);
  expect(body).toMatch(/filestore_mutations_total\{mount="files",op="write",outcome="committed"\} 1/);
  expect(body).toMatch(/filestore_bytes_written_total\{backend="local",mount="files"\} [1-9]/);
  expect(body).not.toContain('docs/hello.txt');
  expect(body).not.toMatch(/path="/);
  expect((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status).toBe(200);
});

test('rm of an INCONSISTENT node is refused with one clear line; --force commits it', async () => {
  expect((await cli('mkdir', 'files:drifted')).code).toBe(0);
  await stack.client.db
    .update(nodes)
    .set({ state: 'INCONSISTENT' })
    .where(and(eq(nodes.mountId, 'files'), eq(nodes.path, 'drifted')));

  const refused = await cli('rm', 'files:drifted');
  expect(refused.code).toBe(7); // INCONSISTENT_NODE's exit code (docs/cli.md)
  // The message names the command that resolves it.
  expect(refused.stderr.trim()).toMatch(/^filestore: INCONSISTENT_NODE: files:drifted changed outside Filestore .*`filestore reconcile files:drifted`.*pass force\)?$/);
  expect(await fs.stat(path.join(dir, 'drifted'))).toBeTruthy();

  const forced = await cli('rm', 'files:drifted', '--force', '--json');
  expect(forced.code).toBe(0);
  expect(JSON.parse(forced.stdout)).toMatchObject({ status: 'COMMITTED', op: 'delete', path: 'drifted' });
  await expect(fs.stat(path.join(dir, 'drifted'))).rejects.toMatchObject({ code: 'ENOENT' });
});
