/**
 * `@filestore/client` as a service gets it: packed (`npm pack`, which builds it), installed from the
 * tarball into an empty project (`npm install <tgz>` — its dependency comes from the registry),
 * type-checked there as a TypeScript consumer, and used against a real stack — worker, Temporal,
 * Postgres — with the HTTP API in front of it (src/api). Nothing of the server is imported by the
 * code under test: the test requires the installed copy.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import type * as ClientPackage from '../../packages/client/src';
import { startApi, type RunningApi } from '../../src/api/api-process';
import { createToken } from '../../src/catalog/tokens';
import { createTestStack, type TestStack } from '../helpers/stack';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');
const PKG_DIR = path.join(ROOT, 'packages', 'client');
const MiB = 1024 * 1024;

let tmp: string;
let appDir: string;
let pkg: typeof ClientPackage;
let stack: TestStack;
let api: RunningApi;
let fsc: ClientPackage.Filestore;
let token: string;

/** The error a promise rejects with (fails the test when it resolves). */
async function rejectionOf(p: Promise<unknown>): Promise<{ code?: string; status?: number; name?: string; retryable?: boolean }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string };
  }
  throw new Error('expected a rejection');
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'filestore-client-e2e-'));
  // `npm pack` runs prepack, i.e. the package's build: the tarball holds what the sources make now.
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: PKG_DIR, maxBuffer: 16 * MiB });
  const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string }>;
  appDir = path.join(tmp, 'app');
  fs.mkdirSync(appDir);
  fs.writeFileSync(path.join(appDir, 'package.json'), JSON.stringify({ name: 'a-service', version: '1.0.0', private: true }));
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', path.join(tmp, packed!.filename)], { cwd: appDir, maxBuffer: 16 * MiB, timeout: 600_000 });
  pkg = require(path.join(appDir, 'node_modules', '@filestore', 'client')) as typeof ClientPackage;

  stack = await createTestStack();
  await stack.addMount('docs');
  await stack.addMount('other');
  api = await startApi({ ...stack.config, apiHost: '127.0.0.1', apiPort: 0 }, { client: stack.client });
  ({ token } = await createToken(stack.client.db, { admin: true }));
  fsc = new pkg.Filestore({ url: api.url, token });
}, 900_000);

afterAll(async () => {
  await fsc?.close();
  await api?.close();
  await stack?.teardown();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('the installed package holds dist/ only and depends on the Temporal client alone', () => {
  const installed = path.join(appDir, 'node_modules', '@filestore', 'client');
  const manifest = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  expect(Object.keys(manifest.dependencies)).toEqual(['@temporalio/client']);
  expect(fs.readdirSync(installed).filter((f) => !['dist', 'package.json', 'README.md', 'LICENSE'].includes(f))).toEqual([]);
  const tree = fs.readdirSync(path.join(appDir, 'node_modules'));
  for (const heavy of ['drizzle-orm', 'pg', 'chokidar', 'bullmq', 'ioredis', 'fastify']) expect(tree).not.toContain(heavy);
  expect(fs.existsSync(path.join(appDir, 'node_modules', '@temporalio', 'worker'))).toBe(false);
  expect(fs.existsSync(path.join(appDir, 'node_modules', '@aws-sdk'))).toBe(false);
});

test.each(['node10', 'node16'])('a TypeScript service type-checks against the installed declarations (moduleResolution %s)', async (resolution) => {
  fs.writeFileSync(
    path.join(appDir, 'service.ts'),
    `import { Filestore, isFilestoreError, NotFoundError, ERROR_STATUS, type MutationResult, type CatalogNode, type MutationHandle } from '@filestore/client';
type IsAny<T> = 0 extends 1 & T ? true : false;
const notAny: [IsAny<MutationResult>, IsAny<CatalogNode>, IsAny<MutationHandle>, IsAny<typeof ERROR_STATUS>] = [false, false, false, false];
export async function main(): Promise<string> {
  const fs = new Filestore({ url: 'http://127.0.0.1:8080', token: 't', temporal: { address: '127.0.0.1:7233' } });
  const h = await fs.put('docs', 'a.txt', Buffer.from('hi'), { idempotencyKey: 'k1', overwrite: true });
  const r: MutationResult = await h.result();
  const journalId: string = r.journalId;
  for await (const node of fs.listAll('docs', '', { recursive: true })) node.sha256?.toUpperCase();
  try { await fs.get('docs', 'b'); } catch (err) { if (isFilestoreError(err) && err.code === 'NOT_FOUND' && err.status === 404 && !(err instanceof NotFoundError)) return 'x'; }
  return journalId + String(notAny.length) + ERROR_STATUS.NOT_FOUND!.http;
}
`,
  );
  const module = resolution === 'node16' ? 'node16' : 'commonjs';
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  // Under node16 resolution @temporalio/common's own declarations want @types/ms (its `ms` is ESM
  // with types of its own only for `import`), so library checks are skipped there; the IsAny guard
  // above still fails if a type of this package does not resolve.
  const skipLibCheck = resolution === 'node16' ? 'true' : 'false';
  const args = ['--noEmit', '--strict', '--target', 'ES2022', '--module', module, '--moduleResolution', resolution, '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), '--skipLibCheck', skipLibCheck, 'service.ts'];
  const result = await run(process.execPath, [tsc, ...args], { cwd: appDir }).catch((err: { stdout: string; stderr: string }) => err);
  expect(`${result.stdout}${result.stderr}`).toBe('');
}, 120_000);

describe('against the HTTP API', () => {
  const small = Buffer.from('hello from a service\n');
  const big = randomBytes(20 * MiB);

  test('put from a Buffer, get it back byte-identical; stat and head agree', async () => {
    const h = await fsc.put('docs', 'hello.txt', small, { idempotencyKey: 'hello-1' });
    expect(h.workflowId).toBe('filestore:docs:write:hello-1');
    const result = await h.result();
    expect(result).toMatchObject({ status: 'COMMITTED', op: 'write', mountId: 'docs', path: 'hello.txt' });
    expect(result.node).toMatchObject({ size: small.length, sha256: sha256(small) });
    expect((await fsc.get('docs', 'hello.txt')).equals(small)).toBe(true);
    expect(await fsc.stat('docs', 'hello.txt')).toMatchObject({ kind: 'file', size: small.length, sha256: sha256(small), state: 'ACTIVE' });
    expect(await fsc.head('docs', 'hello.txt')).toMatchObject({ size: small.length, etag: `"${sha256(small)}"` });
    // The same key again: the same mutation, not a second one.
    const again = await (await fsc.put('docs', 'hello.txt', small, { idempotencyKey: 'hello-1' })).result();
    expect(again.journalId).toBe(result.journalId);
  }, 60_000);

  test('put a 20 MiB stream (chunked, never buffered whole), read it back whole, as a stream and by range', async () => {
    async function* chunks() {
      for (let off = 0; off < big.length; off += 256 * 1024) yield big.subarray(off, off + 256 * 1024);
    }
    const result = await (await fsc.put('docs', 'big/blob.bin', Readable.from(chunks()))).result();
    expect(result.node).toMatchObject({ size: big.length, sha256: sha256(big) });
    expect((await fsc.get('docs', 'big/blob.bin')).equals(big)).toBe(true);
    const hash = createHash('sha256');
    let n = 0;
    for await (const chunk of await fsc.openRead('docs', 'big/blob.bin')) {
      hash.update(chunk as Buffer);
      n += (chunk as Buffer).length;
    }
    expect({ n, sha: hash.digest('hex') }).toEqual({ n: big.length, sha: sha256(big) });
    const slice = await fsc.get('docs', 'big/blob.bin', { range: { start: 5 * MiB, end: 5 * MiB + 99 } });
    expect(slice.equals(big.subarray(5 * MiB, 5 * MiB + 100))).toBe(true);
  }, 120_000);

  test('put from an async iterable and from a file (sent with its Content-Length)', async () => {
    async function* parts() {
      yield new TextEncoder().encode('part one, ');
      yield new TextEncoder().encode('part two');
    }
    await (await fsc.put('docs', 'parts.txt', parts())).result();
    expect((await fsc.get('docs', 'parts.txt')).toString()).toBe('part one, part two');
    const file = path.join(tmp, 'from-disk.bin');
    fs.writeFileSync(file, big.subarray(0, 3 * MiB));
    const r = await (await fsc.put('docs', 'from-disk.bin', { file }, { mode: 0o640 })).result();
    expect(r.node).toMatchObject({ size: 3 * MiB, sha256: sha256(big.subarray(0, 3 * MiB)) });
  }, 60_000);

  test('list pages through the catalog; listAll walks every page', async () => {
    const first = await fsc.list('docs', '', { limit: 2 });
    expect(first.nodes).toHaveLength(2);
    expect(first.nextCursor).toEqual(expect.any(String));
    const all: string[] = [];
    for await (const node of fsc.listAll('docs', '', { recursive: true, limit: 2 })) all.push(node.path);
    expect(all).toEqual(expect.arrayContaining(['hello.txt', 'big', 'big/blob.bin', 'parts.txt', 'from-disk.bin']));
    expect((await fsc.list('docs', 'big')).nodes.map((n) => n.path)).toEqual(['big/blob.bin']);
  }, 60_000);

  test('mkdir, copy, move (across mounts) and remove, each awaited by polling the API', async () => {
    expect((await (await fsc.mkdir('docs', 'tree/sub')).result()).node).toMatchObject({ kind: 'directory', path: 'tree/sub' });
    await (await fsc.copy('docs', 'hello.txt', 'tree/sub/copy.txt')).result();
    expect((await fsc.get('docs', 'tree/sub/copy.txt')).equals(small)).toBe(true);
    const moved = await (await fsc.move('docs', 'tree/sub/copy.txt', 'arrived.txt', { targetMount: 'other' })).result();
    expect(moved).toMatchObject({ op: 'move', targetMountId: 'other', targetPath: 'arrived.txt' });
    expect((await fsc.get('other', 'arrived.txt')).equals(small)).toBe(true);
    // The catalog keeps a deleted path's row (state DELETED); the file itself is gone.
    const gone = await fsc.stat('docs', 'tree/sub/copy.txt').catch((err: { code?: string }) => err);
    expect((gone as { code?: string }).code === 'NOT_FOUND' || (gone as { state?: string }).state === 'DELETED').toBe(true);
    expect((await rejectionOf(fsc.get('docs', 'tree/sub/copy.txt'))).code).toBe('NOT_FOUND');
    await (await fsc.remove('docs', 'tree', { recursive: true })).result();
    expect((await rejectionOf(fsc.get('docs', 'tree/sub'))).code).toBe('NOT_FOUND');
    const status = await fsc.run(moved.workflowId);
    expect(status).toMatchObject({ workflowId: moved.workflowId, status: 'COMMITTED' });
  }, 120_000);

  test('awaiting through Temporal gives the same results and the same typed failures', async () => {
    const viaTemporal = new pkg.Filestore({ url: api.url, token, temporal: { address: stack.config.temporalAddress, namespace: stack.config.temporalNamespace } });
    try {
      const r = await (await viaTemporal.mkdir('docs', 'via-temporal')).result();
      expect(r).toMatchObject({ status: 'COMMITTED', op: 'mkdir', path: 'via-temporal' });
      const failed = await rejectionOf((await viaTemporal.copy('docs', 'hello.txt', 'parts.txt')).result());
      expect({ code: failed.code, name: failed.name }).toEqual({ code: 'ALREADY_EXISTS', name: 'AlreadyExistsError' });
    } finally {
      await viaTemporal.close();
    }
  }, 60_000);

  test('errors come back typed: UNKNOWN_MOUNT, NOT_FOUND, a failed run, a refused stream upload, bad paths before any request', async () => {
    expect(await rejectionOf(fsc.get('no-such-mount', 'a.txt'))).toMatchObject({ code: 'UNKNOWN_MOUNT', status: 404, retryable: false, name: 'UnknownMountError' });
    expect(await rejectionOf(fsc.get('docs', 'missing.txt'))).toMatchObject({ code: 'NOT_FOUND', status: 404, name: 'NotFoundError' });
    expect(await rejectionOf(fsc.stat('docs', 'missing.txt'))).toMatchObject({ code: 'NOT_FOUND', status: 404 });
    expect(await rejectionOf(fsc.list('no-such-mount', ''))).toMatchObject({ code: 'UNKNOWN_MOUNT' });
    // The server refuses before it reads the body: the client gets the answer, not a broken pipe.
    expect(await rejectionOf(fsc.put('no-such-mount', 'x.bin', Readable.from([big])))).toMatchObject({ code: 'UNKNOWN_MOUNT', status: 404 });
    // A run that fails: copy onto an existing file without overwrite (polling /v1/runs).
    expect(await rejectionOf((await fsc.copy('docs', 'hello.txt', 'parts.txt')).result())).toMatchObject({ code: 'ALREADY_EXISTS', name: 'AlreadyExistsError' });
    expect(await rejectionOf(fsc.get('docs', '../etc/passwd'))).toMatchObject({ code: 'PATH_TRAVERSAL' });
    const anonymous = new pkg.Filestore({ url: api.url });
    expect(await rejectionOf(anonymous.mounts())).toMatchObject({ code: 'UNAUTHORIZED', status: 401 });
    const nowhere = new pkg.Filestore({ url: 'http://127.0.0.1:1', token });
    expect(await rejectionOf(nowhere.mounts())).toMatchObject({ code: 'SERVICE_UNAVAILABLE', retryable: true });
  }, 60_000);

  test('journal, journal entry by key, drift, mounts', async () => {
    const { entries } = await fsc.journal({ mount: 'docs', limit: 100 });
    expect(entries.map((e) => e.idempotencyKey)).toContain('hello-1');
    expect(await fsc.journalEntry('hello-1')).toMatchObject({ op: 'write', path: 'hello.txt', status: 'COMMITTED', workflowId: 'filestore:docs:write:hello-1' });
    const failed = await fsc.journal({ mount: 'docs', status: 'FAILED' });
    for (const e of failed.entries) expect(e.status).toBe('FAILED');
    expect(Array.isArray((await fsc.drift({ mount: 'docs' })).events)).toBe(true);
    expect((await fsc.mounts()).map((m) => m.id).sort()).toEqual(['docs', 'other']);
    expect(await fsc.mount('docs')).toMatchObject({ id: 'docs', kind: 'local' });
  }, 60_000);

  test('reconcile accepts a change made behind Filestore\'s back', async () => {
    const root = (await stack.client.getMount('docs')).rootPath!;
    fs.writeFileSync(path.join(root, 'hello.txt'), 'changed outside\n');
    const r = await (await fsc.reconcile('docs', 'hello.txt')).result();
    expect(r).toMatchObject({ status: 'COMMITTED', op: 'reconcile', path: 'hello.txt' });
    expect(await fsc.stat('docs', 'hello.txt')).toMatchObject({ sha256: sha256(Buffer.from('changed outside\n')), state: 'ACTIVE' });
  }, 60_000);
});
