/**
 * The CLI's reads and run inspection as a person runs them (bin/filestore.js on the built dist/)
 * against a real stack, on a local and an S3 mount: `get` to a file and to stdout byte for byte,
 * `get` refusing to overwrite and never leaving a partial file, `cat`, `journal show`, `status`,
 * paging of every list, JSON output, exit codes from ERROR_STATUS, and the grouped `--help`.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { statusOf } from '../../src/errors';
import { FILESTORE_BIN, runCli, stackEnv } from '../helpers/cli';
import { sha256 } from '../helpers/files';
import { createTestStack, type TestStack } from '../helpers/stack';

let stack: TestStack;
let env: NodeJS.ProcessEnv;
let out: string;
const cli = (...args: string[]) => runCli(env, ...args);

/** `filestore <args>` with stdout as raw bytes (runCli decodes it as UTF-8). */
function cliBytes(...args: string[]): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FILESTORE_BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(chunks), stderr }));
  });
}

/** Binary content that is not valid UTF-8 (a text decode would change it), 3 MiB and a bit. */
const BLOB = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, 0x80]), randomBytes(3 * 1024 * 1024 + 17)]);
const HELLO = 'hello from get\n';
const MOUNTS = ['loc', 's3m'] as const;

beforeAll(async () => {
  stack = await createTestStack();
  env = stackEnv(stack.config);
  await stack.addMount('loc');
  await stack.addS3Mount('s3m');
  const src = path.join(stack.tmp, 'src');
  await fs.mkdir(src);
  await fs.writeFile(path.join(src, 'blob.bin'), BLOB);
  await fs.writeFile(path.join(src, 'hello.txt'), HELLO);
  for (const m of MOUNTS) {
    await (await stack.client.put(m, 'data/blob.bin', { file: path.join(src, 'blob.bin') }, { idempotencyKey: `${m}-blob` })).result();
    await (await stack.client.put(m, 'data/hello.txt', { file: path.join(src, 'hello.txt') }, { idempotencyKey: `${m}-hello` })).result();
  }
  out = path.join(stack.tmp, 'downloads');
  await fs.mkdir(out);
}, 120_000);
afterAll(async () => {
  await stack?.teardown();
});

describe.each(MOUNTS)('mount %s', (m) => {
  test('get to a file and to stdout, and cat, are byte-identical to what was put', async () => {
    const dest = path.join(out, `${m}-blob.bin`);
    const got = await cli('get', `${m}:data/blob.bin`, dest, '--json');
    expect(got).toMatchObject({ code: 0, stderr: '' });
    const json = JSON.parse(got.stdout) as Record<string, unknown>;
    expect(json).toEqual({ mount: m, path: 'data/blob.bin', bytes: BLOB.length, etag: `"${sha256(BLOB)}"`, sha256: sha256(BLOB), file: dest });
    expect((await fs.readFile(dest)).equals(BLOB)).toBe(true);
    // Nothing but the destination: the temp file was renamed into place.
    expect((await fs.readdir(out)).filter((f) => f.includes(`${m}-blob`))).toEqual([`${m}-blob.bin`]);

    const piped = await cliBytes('get', `${m}:data/blob.bin`, '-');
    expect(piped.code).toBe(0);
    expect(piped.stdout.equals(BLOB)).toBe(true);

    const cat = await cliBytes('cat', `${m}:data/hello.txt`);
    expect(cat.code).toBe(0);
    expect(cat.stdout.toString()).toBe(HELLO);

    // The human form names where it went.
    const human = await cli('get', `${m}:data/hello.txt`, path.join(out, `${m}-hello.txt`));
    expect(human.code).toBe(0);
    expect(human.stdout.trim()).toBe(`${m}:data/hello.txt → ${path.join(out, `${m}-hello.txt`)} (${HELLO.length} bytes, sha256 ${sha256(HELLO)})`);
  });

  test('get refuses an existing destination unless --overwrite, and lands in a directory under its own name', async () => {
    const dest = path.join(out, `${m}-keep.txt`);
    await fs.writeFile(dest, 'mine\n');
    const refused = await cli('get', `${m}:data/hello.txt`, dest);
    expect(refused.code).toBe(statusOf('ALREADY_EXISTS').exit);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/^filestore: ALREADY_EXISTS: /);
    expect(await fs.readFile(dest, 'utf8')).toBe('mine\n');

    expect((await cli('get', `${m}:data/hello.txt`, dest, '--overwrite')).code).toBe(0);
    expect(await fs.readFile(dest, 'utf8')).toBe(HELLO);

    const into = path.join(out, `${m}-dir`);
    await fs.mkdir(into);
    expect((await cli('get', `${m}:data/hello.txt`, into)).code).toBe(0);
    expect(await fs.readFile(path.join(into, 'hello.txt'), 'utf8')).toBe(HELLO);
    expect((await cli('get', `${m}:data/hello.txt`, into)).code).toBe(statusOf('ALREADY_EXISTS').exit);
    expect(await fs.readdir(into)).toEqual(['hello.txt']);
  });

  test('get of a missing path: NOT_FOUND in one line, its exit code, and no file', async () => {
    const dest = path.join(out, `${m}-missing.txt`);
    const missing = await cli('get', `${m}:data/nope.txt`, dest);
    expect(missing.code).toBe(statusOf('NOT_FOUND').exit);
    expect(missing.code).toBe(4);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/^filestore: NOT_FOUND: /);
    await expect(fs.stat(dest)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await fs.readdir(out)).filter((f) => f.includes('missing'))).toEqual([]);

    const dir = await cli('cat', `${m}:data`);
    expect(dir.code).toBe(statusOf('IS_A_DIRECTORY').exit);
    expect(dir.stderr).toMatch(/^filestore: IS_A_DIRECTORY: /);
  });
});

test('get --progress draws its bar on stderr and still writes the exact file; --json with - is refused', async () => {
  const dest = path.join(out, 'progress.bin');
  const got = await cli('get', 'loc:data/blob.bin', dest, '--progress');
  expect(got).toMatchObject({ code: 0 });
  expect(got.stderr).toContain('downloading');
  expect((await fs.readFile(dest)).equals(BLOB)).toBe(true);
  // Not on a terminal: no bar unless asked for.
  const quiet = await cli('get', 'loc:data/blob.bin', path.join(out, 'quiet.bin'));
  expect(quiet.stderr).toBe('');

  const mixed = await cli('get', 'loc:data/blob.bin', '-', '--json');
  expect(mixed.code).toBe(statusOf('INVALID_REQUEST').exit);
  expect(mixed.stderr).toMatch(/^filestore: INVALID_REQUEST: /);
});

test('get never leaves a wrong file: content that is not the catalog\'s version (same size and mtime) is refused after the read, nothing written', async () => {
  const root = path.join(stack.tmp, 'mounts', 'loc');
  const file = path.join(root, 'data', 'swap.txt');
  const src = path.join(stack.tmp, 'swap-src.txt');
  await fs.writeFile(src, 'AAAA-original\n');
  await (await stack.client.put('loc', 'data/swap.txt', { file: src }, { idempotencyKey: 'swap' })).result();
  // Same size and mtime, other bytes: the backend's stat still looks like the committed version.
  const before = await fs.stat(file);
  await fs.writeFile(file, 'BBBB-original\n');
  await fs.utimes(file, before.atime, before.mtime);
  const dest = path.join(out, 'swap.txt');
  const r = await cli('get', 'loc:data/swap.txt', dest);
  expect(r.code).toBe(statusOf('SOURCE_CHANGED').exit);
  expect(r.stderr).toMatch(/^filestore: SOURCE_CHANGED: loc:data\/swap\.txt changed while it was read: its sha256 is not the catalog's/);
  await expect(fs.stat(dest)).rejects.toMatchObject({ code: 'ENOENT' });
  expect((await fs.readdir(out)).filter((f) => f.includes('swap'))).toEqual([]);
});

test('put and cp draw their bar with --progress (off a terminal only when asked)', async () => {
  const src = path.join(stack.tmp, 'bar-src.bin');
  await fs.writeFile(src, randomBytes(64 * 1024));
  const put = await cli('put', src, 'loc:bars/a.bin', '--progress');
  expect(put).toMatchObject({ code: 0 });
  expect(put.stderr).toContain('uploading [');
  const cp = await cli('cp', 'loc:bars/a.bin', 'loc:bars/b.bin', '--progress');
  expect(cp).toMatchObject({ code: 0 });
  expect(cp.stderr).toContain('copying [');
  const quiet = await cli('put', src, 'loc:bars/c.bin');
  expect(quiet).toMatchObject({ code: 0, stderr: '' });
}, 60_000);

test('get from an unknown mount exits with UNKNOWN_MOUNT\'s code', async () => {
  const r = await cli('get', 'nowhere:x.txt', path.join(out, 'x.txt'));
  expect(r.code).toBe(statusOf('UNKNOWN_MOUNT').exit);
  expect(r.stderr.trim()).toBe('filestore: UNKNOWN_MOUNT: no mount named "nowhere"');
});

test('journal show by id and by key; an unknown one is NOT_FOUND', async () => {
  const byKey = await cli('journal', 'show', 'loc-blob', '--json');
  expect(byKey.code).toBe(0);
  const entry = JSON.parse(byKey.stdout) as { id: string; idempotencyKey: string; op: string; status: string; workflowId: string };
  expect(entry).toMatchObject({ idempotencyKey: 'loc-blob', op: 'write', status: 'COMMITTED', workflowId: 'filestore:loc:write:loc-blob' });

  const byId = await cli('journal', 'show', entry.id, '--json');
  expect(JSON.parse(byId.stdout)).toEqual(JSON.parse(byKey.stdout));

  const human = await cli('journal', 'show', entry.id);
  expect(human.stdout).toContain(`id        ${entry.id}`);
  expect(human.stdout).toContain('status    COMMITTED');
  expect(human.stdout).toContain('op        write loc:data/blob.bin');

  const missing = await cli('journal', 'show', 'no-such-key');
  expect(missing.code).toBe(statusOf('NOT_FOUND').exit);
  expect(missing.stderr.trim()).toBe('filestore: NOT_FOUND: journal entry "no-such-key" does not exist');
});

test('status of a committed run, a failed run and an unknown workflow', async () => {
  const done = await cli('status', 'filestore:loc:write:loc-hello', '--json');
  expect(done.code).toBe(0);
  const s = JSON.parse(done.stdout) as { status: string; result: { journalId: string; op: string; path: string }; closedAt: string | null };
  expect(s).toMatchObject({ workflowId: 'filestore:loc:write:loc-hello', status: 'COMMITTED', result: { op: 'write', path: 'data/hello.txt', status: 'COMMITTED' } });
  expect(s.closedAt).not.toBeNull();
  const human = await cli('status', 'filestore:loc:write:loc-hello');
  expect(human.stdout).toContain('status    COMMITTED');
  expect(human.stdout).toContain('result    committed write loc:data/hello.txt');

  // A delete of a missing path fails: its run ends FAILED with the typed error.
  const rm = await cli('rm', 'loc:data/not-there.txt', '--key', 'rm-missing', '--json');
  expect(rm.code).toBe(statusOf('NOT_FOUND').exit);
  const failed = JSON.parse((await cli('status', 'filestore:loc:delete:rm-missing', '--json')).stdout) as { status: string; error: { code: string } };
  expect(failed.status).toBe('FAILED');
  expect(failed.error.code).toBe('NOT_FOUND');

  const unknown = await cli('status', 'filestore:loc:write:never-started');
  expect(unknown.code).toBe(statusOf('NOT_FOUND').exit);
  expect(unknown.stderr).toMatch(/^filestore: NOT_FOUND: workflow "filestore:loc:write:never-started" does not exist/);
});

test('journal ls, mount ls and drift ls page with --limit/--cursor and print {rows, nextCursor} as JSON', async () => {
  const all = JSON.parse((await cli('journal', 'ls', '--limit', '1000', '--json')).stdout) as { entries: Array<{ id: string }>; nextCursor: string | null };
  expect(all.nextCursor).toBeNull();
  expect(all.entries.length).toBeGreaterThanOrEqual(4);
  const seen: string[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 50; i++) {
    const args: string[] = ['journal', 'ls', '--limit', '2', '--json', ...(cursor ? ['--cursor', cursor] : [])];
    const page = JSON.parse((await cli(...args)).stdout) as { entries: Array<{ id: string }>; nextCursor: string | null };
    seen.push(...page.entries.map((e) => e.id));
    cursor = page.nextCursor;
    if (!cursor) break;
    expect(page.entries).toHaveLength(2);
  }
  expect(seen).toEqual(all.entries.map((e) => e.id));
  const human = await cli('journal', 'ls', '--limit', '1');
  expect(human.stdout).toMatch(/next cursor: \S+ {2}\(filestore journal ls --limit 1 --cursor \S+\)/);
  const bad = await cli('journal', 'ls', '--cursor', 'garbage');
  expect(bad.code).toBe(statusOf('INVALID_REQUEST').exit);

  const mounts1 = JSON.parse((await cli('mount', 'ls', '--limit', '1', '--json')).stdout) as { mounts: Array<{ id: string }>; nextCursor: string | null };
  expect(mounts1.mounts.map((r) => r.id)).toEqual(['loc']);
  const mounts2 = JSON.parse((await cli('mount', 'ls', '--limit', '1', '--cursor', mounts1.nextCursor!, '--json')).stdout) as { mounts: Array<{ id: string }>; nextCursor: string | null };
  expect(mounts2).toMatchObject({ mounts: [{ id: 's3m' }], nextCursor: null });

  const drift = JSON.parse((await cli('drift', 'ls', '--all', '--limit', '5', '--json')).stdout) as { events: unknown[]; nextCursor: string | null };
  expect(drift).toEqual({ events: [], nextCursor: null });
});

test('--json on mount verbs, migrate and --no-wait mutations parses', async () => {
  const dir = path.join(stack.tmp, 'json-mount');
  await fs.mkdir(dir);
  const added = JSON.parse((await cli('mount', 'add', 'jm', '--local', dir, '--json')).stdout) as { id: string; kind: string };
  expect(added).toMatchObject({ id: 'jm', kind: 'local' });
  expect(JSON.parse((await cli('mount', 'set', 'jm', '--read-only', '--json')).stdout)).toMatchObject({ id: 'jm', options: { readOnly: true } });
  expect(JSON.parse((await cli('mount', 'mark', 'jm', '--json')).stdout)).toMatchObject({ id: 'jm' });
  expect(JSON.parse((await cli('migrate', '--json')).stdout)).toEqual({ migrated: true });
  const started = JSON.parse((await cli('mkdir', 'loc:later', '--key', 'mk-later', '--no-wait', '--json')).stdout) as { workflowId: string };
  expect(started).toEqual({ workflowId: 'filestore:loc:mkdir:mk-later', idempotencyKey: 'mk-later' });
});

test('reconcile accepts a change made behind Filestore as the catalog\'s truth', async () => {
  const root = path.join(stack.tmp, 'mounts', 'loc');
  await fs.writeFile(path.join(root, 'data', 'hello.txt'), 'changed by hand\n');
  const r = await cli('reconcile', 'loc:data/hello.txt', '--key', 'rec-1', '--json');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ status: 'COMMITTED', op: 'reconcile', mountId: 'loc', path: 'data/hello.txt' });
  const node = JSON.parse((await cli('stat', 'loc:data/hello.txt', '--json')).stdout) as { size: number; sha256: string; state: string };
  expect(node).toMatchObject({ size: 16, sha256: sha256('changed by hand\n'), state: 'ACTIVE' });
  // Now the catalog's version again: get serves it under its strong ETag.
  const res = await cli('get', 'loc:data/hello.txt', path.join(out, 'reconciled.txt'), '--json');
  expect(res).toMatchObject({ code: 0, stderr: '' });
  const got = JSON.parse(res.stdout) as { etag: string };
  expect(got.etag).toBe(`"${sha256('changed by hand\n')}"`);
}, 60_000);

test('--help groups the verbs by task; a usage error exits 2', async () => {
  const help = await cli('--help');
  expect(help.code).toBe(0);
  const headings = ['Files:', 'Catalog and journal:', 'Mounts:', 'Drift:', 'Stack:'].map((h) => help.stdout.indexOf(`\n${h}\n`));
  expect(headings.every((i) => i > 0)).toBe(true);
  expect([...headings].sort((a, b) => a - b)).toEqual(headings);
  expect(help.stdout.indexOf('\n  get ')).toBeGreaterThan(help.stdout.indexOf('\nFiles:\n'));

  const usage = await cli('get', 'loc:data/hello.txt');
  expect(usage.code).toBe(2);
  expect(usage.stderr).toContain("missing required argument 'file'");
});
