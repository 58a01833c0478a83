/**
 * Containment under races (issue 6, point 2): a hostile user who can write the mount swaps
 * directories for symlinks, or renames directories away, while a mutation runs. Nothing may land
 * outside the mount, no outside file may be moved or removed, and an escape is undone and refused
 * with a typed error. Executor-level tests drive the races deterministically on a real disk (the
 * executor's afterStep hook and the no-follow layer's beforeSyscall seam mark the exact window);
 * the last test goes through the SDK and a real worker.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { LocalExecutor, type LocalExecutorHooks } from '../../src/executors/local/local-executor';
import { dirfdTestSeams, type HeldDir } from '../../src/executors/local/local-dirfd';
import { STAGING_DIR } from '../../src/paths';
import { codeOf } from '../executors/behaviour';
import { listTree } from '../helpers/files';
import { createTestStack, type TestStack } from '../helpers/stack';

const made: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), prefix)));
  made.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(made.map((d) => fs.rm(d, { recursive: true, force: true })));
});
afterEach(() => {
  delete dirfdTestSeams.beforeSyscall;
  delete dirfdTestSeams.forceFallback;
});

async function openAt(root: string, hooks: LocalExecutorHooks = {}): Promise<LocalExecutor> {
  return LocalExecutor.open({ id: 'adv', kind: 'local', rootPath: root, readOnly: false }, hooks);
}

const exists = (p: string): Promise<boolean> => fs.lstat(p).then(
  () => true,
  () => false,
);

/** A stream that sends `first`, then waits until released before sending `rest`. */
function pausedStream(first: Buffer, rest: Buffer): { stream: Readable; paused: Promise<void>; release: () => void } {
  let release!: () => void;
  let reached!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const paused = new Promise<void>((r) => (reached = r));
  const stream = Readable.from(
    (async function* () {
      yield first;
      reached();
      await gate;
      yield rest;
    })(),
  );
  return { stream, paused, release };
}

/** What a hostile user does: move the real directory aside and put a symlink in its place. */
async function swapForSymlink(root: string, rel: string, target: string): Promise<void> {
  await fs.rename(path.join(root, rel), path.join(root, `${rel}.orig`));
  await fs.symlink(target, path.join(root, rel));
}

describe.each([
  ['held fds (/proc/self/fd)', false],
  ['lstat fallback', true],
])('containment with %s', (_mode, fallback) => {
  let root: string;
  let outside: string;
  beforeEach(async () => {
    dirfdTestSeams.forceFallback = fallback;
    const base = await tempDir('filestore-adv-');
    root = path.join(base, 'mount');
    outside = path.join(base, 'outside');
    await fs.mkdir(path.join(root, 'dir'), { recursive: true });
    await fs.mkdir(outside);
  });

  it('a parent swapped for a symlink while a write streams: nothing lands outside, the write is refused and undone', async () => {
    const ex = await openAt(root);
    const { stream, paused, release } = pausedStream(Buffer.alloc(64 * 1024, 1), Buffer.alloc(64 * 1024, 2));
    const writing = ex.write('dir/f.bin', { kind: 'stream', stream }, { txId: 'w-swap' });
    await paused;
    await swapForSymlink(root, 'dir', outside);
    release();
    expect(await codeOf(writing)).toBe('SYMLINK_ESCAPE');
    expect(await listTree(outside)).toEqual([]);
    expect(await listTree(path.join(root, 'dir.orig'))).toEqual([]);
    expect(await ex.pendingTransactions()).toEqual([]);
  });

  it('a parent swapped for a symlink between a delete’s check and its rename: no outside file is moved or removed', async () => {
    await fs.writeFile(path.join(root, 'dir', 'victim.txt'), 'mine');
    await fs.writeFile(path.join(outside, 'victim.txt'), 'outside secret');
    const ex = await openAt(root, {
      afterStep: async (step) => {
        if (step === 'plan-saved') await swapForSymlink(root, 'dir', outside);
      },
    });
    expect(await codeOf(ex.delete('dir/victim.txt', { txId: 'd-swap' }))).toBe('SYMLINK_ESCAPE');
    expect(await fs.readFile(path.join(outside, 'victim.txt'), 'utf8')).toBe('outside secret');
    expect(await fs.readFile(path.join(root, 'dir.orig', 'victim.txt'), 'utf8')).toBe('mine');
    expect(await exists(path.join(root, STAGING_DIR, 'd-swap', 'backup'))).toBe(false);
  });

  it('a parent swapped for a symlink that stays inside the mount: refused with PATH_CHANGED, the other file untouched', async () => {
    await fs.writeFile(path.join(root, 'dir', 'victim.txt'), 'mine');
    await fs.mkdir(path.join(root, 'other'));
    await fs.writeFile(path.join(root, 'other', 'victim.txt'), 'someone else');
    const ex = await openAt(root, {
      afterStep: async (step) => {
        if (step === 'plan-saved') await swapForSymlink(root, 'dir', path.join(root, 'other'));
      },
    });
    expect(await codeOf(ex.delete('dir/victim.txt', { txId: 'd-inside' }))).toBe('PATH_CHANGED');
    expect(await fs.readFile(path.join(root, 'other', 'victim.txt'), 'utf8')).toBe('someone else');
    expect(await fs.readFile(path.join(root, 'dir.orig', 'victim.txt'), 'utf8')).toBe('mine');
  });
});

describe('a held directory renamed between the pre-check and the syscall', () => {
  let root: string;
  let outside: string;
  beforeEach(async () => {
    const base = await tempDir('filestore-adv-held-');
    root = path.join(base, 'mount');
    outside = path.join(base, 'outside');
    await fs.mkdir(path.join(root, 'dir'), { recursive: true });
    await fs.mkdir(outside);
  });

  /** Moves the held directory `rel` to `to` the moment a syscall of kind `op` is about to run on it. */
  function moveAtSyscall(op: string, rel: string, to: string): { fired: () => boolean } {
    let fired = false;
    dirfdTestSeams.beforeSyscall = async (at: string, dirs: readonly HeldDir[]) => {
      if (fired || at !== op || !dirs.some((d) => d.rel === rel)) return;
      fired = true;
      await fs.rename(path.join(root, rel), to);
    };
    return { fired: () => fired };
  }

  it('write: the commit rename into a directory moved outside the mount is undone and refused', async () => {
    const ex = await openAt(root);
    const race = moveAtSyscall('rename', 'dir', path.join(outside, 'moved'));
    expect(await codeOf(ex.write('dir/f.txt', { kind: 'inline', data: Buffer.from('payload') }, { txId: 'w-held' }))).toBe('SYMLINK_ESCAPE');
    expect(race.fired()).toBe(true);
    // The directory the user moved out is there, empty: the file that landed in it was taken back.
    expect(await listTree(outside)).toEqual(['moved']);
    expect(await ex.pendingTransactions()).toEqual([]);
  });

  it('delete: a victim whose directory moved outside is put back, never kept in staging', async () => {
    await fs.writeFile(path.join(root, 'dir', 'victim.txt'), 'mine');
    const ex = await openAt(root);
    const race = moveAtSyscall('rename', 'dir', path.join(outside, 'moved'));
    expect(await codeOf(ex.delete('dir/victim.txt', { txId: 'd-held' }))).toBe('SYMLINK_ESCAPE');
    expect(race.fired()).toBe(true);
    expect(await fs.readFile(path.join(outside, 'moved', 'victim.txt'), 'utf8')).toBe('mine');
    expect(await exists(path.join(root, STAGING_DIR, 'd-held', 'backup'))).toBe(false);
  });

  it('mkdir: a directory created in a parent moved within the mount is removed again (PATH_CHANGED)', async () => {
    const ex = await openAt(root);
    const race = moveAtSyscall('mkdir', 'dir', path.join(root, 'elsewhere'));
    expect(await codeOf(ex.mkdir('dir/sub', { txId: 'm-held' }))).toBe('PATH_CHANGED');
    expect(race.fired()).toBe(true);
    expect(await fs.readdir(path.join(root, 'elsewhere'))).toEqual([]);
  });
});

describe('undo never removes what is not its own', () => {
  let root: string;
  beforeEach(async () => {
    root = path.join(await tempDir('filestore-adv-undo-'), 'mount');
    await fs.mkdir(path.join(root, 'dir'), { recursive: true });
  });

  async function crashAfterCommit(txId: string): Promise<void> {
    const crashing = await openAt(root, {
      afterStep: (step) => {
        if (step === 'committed') throw new Error('simulated crash');
      },
    });
    await expect(crashing.write('dir/new.txt', { kind: 'inline', data: Buffer.from('ours') }, { txId })).rejects.toThrow('simulated crash');
  }

  it('a file a user put in place of the one the op created survives undo', async () => {
    await crashAfterCommit('u-replaced');
    await fs.rm(path.join(root, 'dir', 'new.txt'));
    await fs.writeFile(path.join(root, 'dir', 'new.txt'), 'theirs');
    await (await openAt(root)).undo('u-replaced');
    expect(await fs.readFile(path.join(root, 'dir', 'new.txt'), 'utf8')).toBe('theirs');
  });

  it('a parent swapped for an in-mount symlink: undo does not delete through it', async () => {
    await crashAfterCommit('u-swapped');
    await fs.mkdir(path.join(root, 'other'));
    await fs.writeFile(path.join(root, 'other', 'new.txt'), 'someone else');
    await swapForSymlink(root, 'dir', 'other');
    await (await openAt(root)).undo('u-swapped').catch(() => undefined);
    expect(await fs.readFile(path.join(root, 'other', 'new.txt'), 'utf8')).toBe('someone else');
  });
});

describe('staging only the worker can write', () => {
  let root: string;
  let outside: string;
  beforeEach(async () => {
    const base = await tempDir('filestore-adv-staging-');
    root = path.join(base, 'mount');
    outside = path.join(base, 'outside');
    await fs.mkdir(path.join(root, 'dir'), { recursive: true });
    await fs.mkdir(outside);
  });

  it('.filestore-staging swapped for a symlink mid-op: nothing goes through the link, the delete is refused', async () => {
    await fs.writeFile(path.join(root, 'dir', 'victim.txt'), 'mine');
    const ex = await openAt(root, {
      afterStep: async (step) => {
        if (step !== 'plan-saved') return;
        await fs.rename(path.join(root, STAGING_DIR), path.join(root, 'moved-staging'));
        await fs.symlink(outside, path.join(root, STAGING_DIR));
      },
    });
    // The held staging folder moved: refused before the rename (the link is never followed).
    expect(await codeOf(ex.delete('dir/victim.txt', { txId: 'st-swap' }))).toBe('PATH_CHANGED');
    expect(await listTree(outside)).toEqual([]);
    expect(await fs.readFile(path.join(root, 'dir', 'victim.txt'), 'utf8')).toBe('mine');
  });

  (process.geteuid?.() === 0 ? it : it.skip)('a staging folder made by another user is refused (needs root)', async () => {
    await fs.mkdir(path.join(root, STAGING_DIR), { mode: 0o700 });
    await fs.chown(path.join(root, STAGING_DIR), 1234, 1234);
    const ex = await openAt(root);
    expect(await codeOf(ex.write('dir/f.txt', { kind: 'inline', data: Buffer.from('x') }, { txId: 'st-owner' }))).toBe('STAGING_TAMPERED');
    expect(await fs.readdir(path.join(root, 'dir'))).toEqual([]);
  });
});

describe('real locations', () => {
  let root: string;
  let ex: LocalExecutor;
  beforeEach(async () => {
    const base = await tempDir('filestore-adv-real-');
    root = path.join(base, 'mount');
    await fs.mkdir(path.join(root, 'real', 'sub'), { recursive: true });
    await fs.symlink('real', path.join(root, 'alias'));
    await fs.symlink(path.join(base), path.join(root, 'out'));
    await fs.symlink(STAGING_DIR, path.join(root, 'stage-alias'));
    ex = await openAt(root);
  });

  it('two spellings of one place resolve to the same real path; the final component is kept', async () => {
    expect(await ex.resolve(['alias/x.txt', 'real/x.txt', 'alias/sub/y', 'alias', 'alias/new/deeper.txt'])).toEqual([
      'real/x.txt',
      'real/x.txt',
      'real/sub/y',
      'alias',
      'real/new/deeper.txt',
    ]);
    expect(await codeOf(ex.resolve(['out/x.txt']))).toBe('SYMLINK_ESCAPE');
    expect(await codeOf(ex.resolve(['stage-alias/tx/backup']))).toBe('RESERVED_PATH');
  });

  it('outcomes report the real paths the op acted on', async () => {
    const out = await ex.write('alias/x.txt', { kind: 'inline', data: Buffer.from('x') }, { txId: 'r1' });
    expect(out.upserted.map((m) => m.path)).toEqual(['real/x.txt']);
    const moved = await ex.move('alias/x.txt', 'alias/sub/x.txt', { txId: 'r2' });
    expect(moved.moved).toEqual({ from: 'real/x.txt', to: 'real/sub/x.txt' });
    expect(moved.removed).toEqual(['real/x.txt']);
    // Into its own subtree through an alias: refused up front, not an EINVAL from the kernel.
    expect(await codeOf(ex.move('real', 'alias/sub/again', { txId: 'r3' }))).toBe('INVALID_REQUEST');
    // Deleting a link removes the link entry, never what it points to.
    const del = await ex.delete('alias', { txId: 'r4' });
    expect(del.removed).toEqual(['alias']);
    expect(await fs.readFile(path.join(root, 'real', 'sub', 'x.txt'), 'utf8')).toBe('x');
  });
});

describe('through the SDK and a worker', () => {
  let stack: TestStack;
  let root: string;
  beforeAll(async () => {
    stack = await createTestStack();
    root = await stack.addMount('adv');
    await fs.mkdir(path.join(root, 'inside'));
    await fs.symlink('inside', path.join(root, 'alias'));
  });
  afterAll(async () => stack?.teardown());

  it('a put through an in-mount alias is catalogued at its real location', async () => {
    await (await stack.client.put('adv', 'alias/doc.txt', { content: 'hello' })).result();
    expect(await fs.readFile(path.join(root, 'inside', 'doc.txt'), 'utf8')).toBe('hello');
    const listed = await stack.client.listNodes('adv', 'inside');
    expect(listed.map((n) => n.path)).toEqual(['inside/doc.txt']);
  });
});
