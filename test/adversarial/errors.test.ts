/**
 * Point 8 of issue 6 — errors classified. A persistent file system error (EXDEV from a nested
 * mount, ENAMETOOLONG, an unknown failure) used to reach Temporal as a raw, retryable error, and
 * execute has no attempt bound: the mutation retried for ever while its PENDING journal entry held
 * the path's lock. Each case here must end promptly, typed, with the journal closed and the lock
 * free. The elapsed-time checks are liveness checks only (unbounded retries never end), not
 * performance assertions.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createActivities } from '../../activities';
import { NON_RETRYABLE } from '../../src/errors';
import { mapFsError } from '../../src/executors/local/local-fs';
import { createTestStack, type TestStack } from '../helpers/stack';

/** Why a nested file system cannot be had here ('' when it can): a tmpfs mount needs root. Probed once, at load. */
function nestedMountUnavailable(): string {
  if (process.getuid?.() !== 0) return 'not running as root: cannot mount a tmpfs for the nested file system';
  const probe = mkdtempSync(path.join(os.tmpdir(), 'filestore-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'pipe' });
    execFileSync('umount', [probe], { stdio: 'pipe' });
    return '';
  } catch (err) {
    return `mount -t tmpfs failed: ${(err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message}`;
  } finally {
    rmdirSync(probe);
  }
}
const NESTED_UNAVAILABLE = nestedMountUnavailable();
if (NESTED_UNAVAILABLE) console.warn(`errors.test.ts: nested file system tests skipped — ${NESTED_UNAVAILABLE}`);
const nestedTest = NESTED_UNAVAILABLE ? test.skip : test;

const errno = (code: string, syscall = 'rename', hostPath = '/srv/secret/host/path/x') =>
  Object.assign(new Error(`${code}: failure, ${syscall} '${hostPath}'`), { code, syscall, path: hostPath, errno: -1 });

describe('mapFsError: one table, every errno an executor can meet is typed', () => {
  // [errno, code, retryable]
  const table: Array<[string, string, boolean]> = [
    ['ENOENT', 'NOT_FOUND', false],
    ['EEXIST', 'ALREADY_EXISTS', false],
    ['ENOTDIR', 'NOT_A_DIRECTORY', false],
    ['EISDIR', 'IS_A_DIRECTORY', false],
    ['ENOTEMPTY', 'DIRECTORY_NOT_EMPTY', false],
    ['EACCES', 'ACCESS_DENIED', false],
    ['EPERM', 'ACCESS_DENIED', false],
    ['EROFS', 'ACCESS_DENIED', false],
    ['ENAMETOOLONG', 'INVALID_PATH', false],
    ['ELOOP', 'INVALID_PATH', false],
    ['EINVAL', 'INVALID_REQUEST', false],
    ['EXDEV', 'CROSS_DEVICE', false],
    ['EMLINK', 'BACKEND_LIMIT', false],
    ['EFBIG', 'BACKEND_LIMIT', false],
    ['ENOTSUP', 'UNSUPPORTED', false],
    ['EOPNOTSUPP', 'UNSUPPORTED', false],
    ['ENXIO', 'UNSUPPORTED', false],
    ['EUCLEAN', 'BACKEND_FAULT', false],
    ['EBADF', 'INTERNAL', false],
    ['EIO', 'BACKEND_IO', true],
    ['ENOSPC', 'BACKEND_IO', true],
    ['EDQUOT', 'BACKEND_IO', true],
    ['EAGAIN', 'BACKEND_IO', true],
    ['EBUSY', 'BACKEND_IO', true],
    ['EMFILE', 'BACKEND_IO', true],
    ['ENFILE', 'BACKEND_IO', true],
    ['ETIMEDOUT', 'BACKEND_IO', true],
    ['ESTALE', 'BACKEND_IO', true],
    ['EINTR', 'BACKEND_IO', true],
  ];

  test.each(table)('%s → %s (retryable: %s), typed, no host path in the message', (code, expected, retryable) => {
    const mapped = mapFsError(errno(code), '"dir/file.txt"', { mountId: 'm' }) as { name: string; code: string; retryable: boolean; message: string; details: Record<string, unknown> };
    expect(mapped).toMatchObject({ code: expected, retryable, details: { mountId: 'm', errno: code } });
    expect(mapped.message).toContain('dir/file.txt');
    expect(mapped.message).not.toContain('/srv/secret');
    expect(JSON.stringify(mapped.details)).not.toContain('/srv/secret');
    // What Temporal sees: permanent classes are in NON_RETRYABLE, the transient one is not.
    expect(NON_RETRYABLE.includes(mapped.name)).toBe(!retryable);
  });

  test('every fs errno the executors can meet is in the table (none stays raw)', () => {
    const reachable = [
      'ENOENT', 'EEXIST', 'ENOTDIR', 'EISDIR', 'ENOTEMPTY', 'EACCES', 'EPERM', 'EROFS', 'ENAMETOOLONG', 'ELOOP', 'EILSEQ', 'EINVAL',
      'EXDEV', 'EMLINK', 'EFBIG', 'EOVERFLOW', 'ERANGE', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'ENOTTY', 'ENXIO', 'ENODEV', 'ESPIPE',
      'EUCLEAN', 'EBADF', 'EFAULT', 'EIO', 'ENOSPC', 'EDQUOT', 'EAGAIN', 'EBUSY', 'ETXTBSY', 'EMFILE', 'ENFILE', 'ENOMEM', 'EINTR',
      'ECANCELED', 'EDEADLK', 'ENOLCK', 'ETIMEDOUT', 'ESTALE', 'EREMOTEIO', 'ENOMEDIUM', 'ECONNRESET', 'ENOTCONN', 'EHOSTDOWN',
    ];
    const raw = reachable.filter((code) => !((mapFsError(errno(code), 'x') as { code?: string }).code ?? '').match(/^[A-Z_]+$/));
    expect(raw).toEqual([]);
  });

  test('typed errors and errors without an errno pass through unchanged (the activity wrapper bounds those)', () => {
    const typeError = new TypeError('x is not a function');
    expect(mapFsError(typeError, 'x')).toBe(typeError);
    const abort = Object.assign(new Error('aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
    expect(mapFsError(abort, 'x')).toBe(abort);
  });
});

describe('end to end: persistent fs errors end promptly, typed, and release the lock', () => {
  let stack: TestStack;
  let root: string;
  let nested: string | null = null;

  beforeAll(async () => {
    stack = await createTestStack();
    root = await stack.addMount('m');
    await fs.writeFile(path.join(root, 'src.txt'), 'source bytes');
    const dir = path.join(root, 'nested');
    await fs.mkdir(dir);
    if (!NESTED_UNAVAILABLE) {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', dir], { stdio: 'pipe' });
      nested = dir;
    }
  }, 60_000);

  afterAll(async () => {
    if (nested) execFileSync('umount', ['-l', nested]);
    await stack?.teardown();
  });

  async function journalOf(handle: { idempotencyKey: string }) {
    const entry = await stack.client.getJournalEntry(handle.idempotencyKey);
    return entry;
  }

  nestedTest('a write and a copy into a nested file system fail CROSS_DEVICE at once, journal closed, lock free', async () => {
    if (!nested) throw new Error('nested file system not mounted');
    const t0 = Date.now();
    const write = await stack.client.put('m', 'nested/new.txt', { content: 'crosses a device' });
    await expect(write.result()).rejects.toMatchObject({ code: 'CROSS_DEVICE', retryable: false });
    const copy = await stack.client.copy('m', 'src.txt', 'nested/copy.txt');
    await expect(copy.result()).rejects.toMatchObject({ code: 'CROSS_DEVICE', retryable: false });
    // Liveness only: the retry schedule (1 s, 2 s, … capped at 30 s) never ends on its own.
    expect(Date.now() - t0).toBeLessThan(15_000);

    for (const h of [write, copy]) {
      const entry = await journalOf(h);
      expect(['ROLLED_BACK', 'FAILED']).toContain(entry?.status);
      expect(entry?.error).toMatchObject({ code: 'CROSS_DEVICE' });
      expect(JSON.stringify(entry?.error)).not.toContain(root);
    }
    // Nothing half-done on either file system.
    expect(await fs.readdir(nested)).toEqual([]);
    // The lock is free: the same path again is refused for what it is, not CONFLICT.
    await expect((await stack.client.put('m', 'nested/new.txt', { content: 'again' })).result()).rejects.toMatchObject({ code: 'CROSS_DEVICE' });
  }, 30_000);

  nestedTest('a move into the nested file system (handled by the cross-device fallback) still ends promptly', async () => {
    if (!nested) throw new Error('nested file system not mounted');
    await fs.writeFile(path.join(root, 'to-move.txt'), 'moving across');
    const t0 = Date.now();
    await (await stack.client.move('m', 'to-move.txt', 'nested/moved.txt')).result();
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(await fs.readFile(path.join(nested, 'moved.txt'), 'utf8')).toBe('moving across');
    // No cross-device scratch names left in the user's namespace.
    expect((await fs.readdir(nested)).filter((n) => n.includes('filestore'))).toEqual([]);
  }, 30_000);

  test('ENAMETOOLONG below a directory tree deeper than PATH_MAX fails INVALID_PATH at once', async () => {
    // 20 nested directories of 200 bytes on disk, then a file name that brings the mount-relative
    // path to just under Filestore's own 4096-byte limit: joined to the mount root, the host path
    // passes the kernel's PATH_MAX (4096 with its NUL), so every syscall on it is ENAMETOOLONG.
    const seg = 'd'.repeat(200);
    const rel = Array.from({ length: 20 }, () => seg).join('/');
    const file = `${rel}/${'f'.repeat(Math.min(255, 4090 - Buffer.byteLength(rel) - 1))}`;
    expect(Buffer.byteLength(file)).toBeLessThanOrEqual(4096);
    expect(Buffer.byteLength(path.join(root, file))).toBeGreaterThanOrEqual(4096);
    await fs.mkdir(path.join(root, rel), { recursive: true });

    const t0 = Date.now();
    const h = await stack.client.put('m', file, { content: 'too deep' });
    await expect(h.result()).rejects.toMatchObject({ code: 'INVALID_PATH', retryable: false });
    expect(Date.now() - t0).toBeLessThan(15_000);
    const entry = await journalOf(h);
    expect(['ROLLED_BACK', 'FAILED']).toContain(entry?.status);
    expect(JSON.stringify(entry?.error)).not.toContain(root);
    await expect((await stack.client.put('m', file, { content: 'again' })).result()).rejects.toMatchObject({ code: 'INVALID_PATH' });
    await fs.rm(path.join(root, seg), { recursive: true, force: true });
  }, 30_000);
});

describe('an unknown error stops after a bounded number of attempts', () => {
  let stack: TestStack;
  let calls = 0;
  const BOUND = 3;

  beforeAll(async () => {
    const before = process.env.FILESTORE_MAX_UNKNOWN_ERROR_ATTEMPTS;
    process.env.FILESTORE_MAX_UNKNOWN_ERROR_ATTEMPTS = String(BOUND);
    try {
      stack = await createTestStack({
        activities: (deps) => ({
          ...createActivities(deps),
          executeMutation: async () => {
            calls += 1;
            throw new Error('boom');
          },
        }),
      });
    } finally {
      if (before === undefined) delete process.env.FILESTORE_MAX_UNKNOWN_ERROR_ATTEMPTS;
      else process.env.FILESTORE_MAX_UNKNOWN_ERROR_ATTEMPTS = before;
    }
    await stack.addMount('u');
  }, 60_000);
  afterAll(async () => stack?.teardown());

  test('execute throwing a plain Error: INTERNAL after the bound, journal closed, lock free', async () => {
    const t0 = Date.now();
    const h = await stack.client.put('u', 'f.txt', { content: 'never written' });
    await expect(h.result()).rejects.toMatchObject({ code: 'INTERNAL', name: 'InternalError' });
    // Attempts 1..BOUND with 1 s + 2 s of backoff between them; unbounded it would never end.
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(calls).toBe(BOUND);
    const entry = await stack.client.getJournalEntry(h.idempotencyKey);
    expect(entry?.status).not.toBe('PENDING');
    expect(entry?.error).toMatchObject({ code: 'INTERNAL' });
    expect(String((entry?.error as { message?: string }).message)).toContain('boom');
    // The lock is free: the next mutation of the same path runs (and fails the same bounded way).
    calls = 0;
    await expect((await stack.client.put('u', 'f.txt', { content: 'again' })).result()).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(calls).toBe(BOUND);
  }, 60_000);
});
