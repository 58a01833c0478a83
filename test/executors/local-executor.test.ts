import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { type MutationOutcome, listAll } from '../../src/executors/executor';
import { createExecutor } from '../../src/executors/index';
import { LocalExecutor, type LocalExecutorHooks, type MutationStep } from '../../src/executors/local/local-executor';
import type { Plan } from '../../src/executors/local/local-staging';
import { MemoryPlanStore } from '../../src/executors/plan-store';
import { MountDirs } from '../../src/executors/local/local-mount-dirs';
import { crossDeviceScratch } from '../../src/executors/local/local-transfer';
import { moveAcrossHeld } from '../../src/executors/local/local-xdev';
import { registry } from '../../src/metrics';
import { STAGING_DIR, resolveInsideRoot } from '../../src/paths';
import { codeOf, describeExecutorBehaviour, readAll, sha256 } from './behaviour';

const made: string[] = [];
async function tempDir(prefix = 'filestore-local-', base = os.tmpdir()): Promise<string> {
  const dir = await fs.mkdtemp(path.join(base, prefix));
  made.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(made.map((d) => fs.rm(d, { recursive: true, force: true })));
});

async function readOrNull(abs: string): Promise<Buffer | null> {
  try {
    return await fs.readFile(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Plans of every executor these tests open, by mount root: what the catalog is to a worker. */
const planStores = new Map<string, MemoryPlanStore<Plan>>();
function planStoreOf(root: string): MemoryPlanStore<Plan> {
  if (!planStores.has(root)) planStores.set(root, new MemoryPlanStore<Plan>());
  return planStores.get(root)!;
}

async function openAt(root: string, opts: { readOnly?: boolean; hooks?: LocalExecutorHooks } = {}): Promise<LocalExecutor> {
  return LocalExecutor.open(
    { id: 'test-mount', kind: 'local', rootPath: root, readOnly: opts.readOnly ?? false },
    { planStore: planStoreOf(root), ...opts.hooks },
  );
}

/** Moves `fromAbs` to `toAbs` with the executors' cross-device move, through held parent directories. */
async function moveAcross(fromAbs: string, toAbs: string, opts: { allowSpecialModes?: boolean } = {}): Promise<number> {
  const [fromRoot, toRoot] = [await fs.realpath(path.dirname(fromAbs)), await fs.realpath(path.dirname(toAbs))];
  const from = await new MountDirs(fromRoot, 'xdev-from').openDir('');
  const to = await new MountDirs(toRoot, 'xdev-to').openDir('');
  try {
    return await moveAcrossHeld(from, path.basename(fromAbs), to, path.basename(toAbs), opts);
  } finally {
    await from.close();
    await to.close();
  }
}

/** Everything on disk below `root` except staging: kind, mode, content hash, link target. */
async function diskState(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const name of (await fs.readdir(dir)).sort()) {
      const childRel = rel ? `${rel}/${name}` : name;
      if (childRel === STAGING_DIR) continue;
      const abs = path.join(dir, name);
      const st = await fs.lstat(abs);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out[childRel] = `link -> ${await fs.readlink(abs)}`;
      else if (st.isDirectory()) {
        out[childRel] = `dir ${mode}`;
        await walk(abs, childRel);
      } else out[childRel] = `file ${mode} ${sha256(await fs.readFile(abs))}`;
    }
  };
  await walk(root, '');
  return out;
}

describeExecutorBehaviour('local', {
  // Declared, not asked: the suite is built from these before any executor exists (its first test checks them).
  capabilities: {
    atomicRename: true,
    serverSideCopy: true,
    multipart: false,
    posixMode: true,
    directories: true,
    conditionalCreate: true,
    versioning: false,
    maxKeyBytes: null,
    multipartLimits: null,
  },
  symlinks: true,
  create: async () => {
    const root = await tempDir();
    return {
      executor: await openAt(root),
      cleanup: () => fs.rm(root, { recursive: true, force: true }),
      readRaw: (p) => readOrNull(path.join(root, p)),
      async writeRaw(p, data) {
        await fs.mkdir(path.dirname(path.join(root, p)), { recursive: true });
        await fs.writeFile(path.join(root, p), data);
      },
      async linkOutside(p, content) {
        const outside = path.join(await tempDir('filestore-outside-'), 'target');
        await fs.writeFile(outside, content);
        await fs.mkdir(path.dirname(path.join(root, p)), { recursive: true });
        await fs.symlink(outside, path.join(root, p));
      },
    };
  },
});

describe('LocalExecutor (local-only behaviour)', () => {
  let root: string;
  let ex: LocalExecutor;
  beforeEach(async () => {
    root = await tempDir();
    ex = await openAt(root);
  });

  describe('open / createExecutor', () => {
    it('refuses a missing, relative or non-directory root with MOUNT_UNAVAILABLE', async () => {
      const file = path.join(root, 'file');
      await fs.writeFile(file, 'x');
      for (const rootPath of [path.join(root, 'missing'), 'relative/root', file, null]) {
        expect(await codeOf(LocalExecutor.open({ id: 'm', kind: 'local', rootPath, readOnly: false }))).toBe('MOUNT_UNAVAILABLE');
      }
    });

    it('resolves a symlinked root once, so containment compares real paths', async () => {
      const link = path.join(await tempDir(), 'link-to-root');
      await fs.symlink(root, link);
      const viaLink = await openAt(link);
      expect(viaLink.rootReal).toBe(await fs.realpath(root));
      await viaLink.write('a.txt', { kind: 'inline', data: Buffer.from('a') }, { txId: 't1' });
      expect(await fs.readFile(path.join(root, 'a.txt'), 'utf8')).toBe('a');
    });

    it('createExecutor opens local mounts', async () => {
      const local = await createExecutor({ id: 'l', kind: 'local', rootPath: root, readOnly: false });
      expect(local.backend).toBe('local');
      expect(local.mountId).toBe('l');
    });
  });

  describe('symlinks', () => {
    let outside: string;
    beforeEach(async () => {
      outside = await tempDir('filestore-outside-');
      await fs.writeFile(path.join(outside, 'secret.txt'), 'secret');
      await fs.writeFile(path.join(root, 'ok.txt'), 'ok');
      await fs.symlink(outside, path.join(root, 'out'));
      await fs.symlink(path.join(outside, 'secret.txt'), path.join(root, 'secret-link'));
      await fs.symlink(path.join(outside, 'not-yet.txt'), path.join(root, 'dangling'));
    });

    it('refuses every call through a link that leaves the mount, writing nothing anywhere', async () => {
      const rootBefore = await diskState(root);
      const outsideBefore = await diskState(outside);
      const data = { kind: 'inline' as const, data: Buffer.from('pwned') };
      const attempts: Array<Promise<unknown>> = [
        ex.write('out/x.txt', data, { txId: 'a1' }),
        ex.write('secret-link', data, { txId: 'a2', overwrite: true }),
        ex.write('dangling', data, { txId: 'a3', overwrite: true }),
        ex.write('out/new/deep.txt', data, { txId: 'a4' }),
        ex.mkdir('out/d', { txId: 'a5' }),
        ex.copy('out/secret.txt', 'stolen.txt', { txId: 'a6' }),
        ex.copy('secret-link', 'stolen.txt', { txId: 'a7' }),
        ex.copy('ok.txt', 'out/y.txt', { txId: 'a8' }),
        ex.move('ok.txt', 'out/z.txt', { txId: 'a9' }),
        ex.move('out/secret.txt', 'here.txt', { txId: 'a10' }),
        ex.delete('out/secret.txt', { txId: 'a11' }),
        ex.stat('out/secret.txt'),
        ex.stat('secret-link'),
        listAll(ex, 'out'),
      ];
      for (const attempt of attempts) expect(await codeOf(attempt)).toBe('SYMLINK_ESCAPE');
      expect(await diskState(root)).toEqual(rootBefore);
      expect(await diskState(outside)).toEqual(outsideBefore);
      expect(await ex.pendingTransactions()).toEqual([]);
      // Listing never reports metadata from outside the mount either.
      expect((await listAll(ex, '')).map((m) => m.path)).toEqual(['ok.txt']);
    });

    it('allows links that stay inside the mount', async () => {
      await fs.mkdir(path.join(root, 'real'));
      await fs.symlink('real', path.join(root, 'in'));
      await ex.write('in/x.txt', { kind: 'inline', data: Buffer.from('inside') }, { txId: 'i1' });
      expect(await fs.readFile(path.join(root, 'real', 'x.txt'), 'utf8')).toBe('inside');
      expect(await ex.stat('in/x.txt')).toMatchObject({ kind: 'file', size: 6 });
      expect((await listAll(ex, '')).find((m) => m.path === 'in')).toMatchObject({ kind: 'directory' });
      expect(await resolveInsideRoot(ex.rootReal, 'in/x.txt')).toBe(path.join(ex.rootReal, 'in', 'x.txt'));
      // openRead reads an in-mount link at its real target, as a copy's source is read.
      await fs.symlink('real/x.txt', path.join(root, 'x-link'));
      expect((await readAll(await ex.openRead('in/x.txt'))).toString()).toBe('inside');
      expect((await readAll(await ex.openRead('x-link'))).toString()).toBe('inside');
    });
  });

  describe('POSIX metadata', () => {
    it('keeps an overwritten file’s mode unless a mode is given, and applies modes to new files', async () => {
      await fs.writeFile(path.join(root, 'f'), 'old');
      await fs.chmod(path.join(root, 'f'), 0o640);
      const out = await ex.write('f', { kind: 'inline', data: Buffer.from('new') }, { txId: 'm1', overwrite: true });
      expect((await fs.stat(path.join(root, 'f'))).mode & 0o7777).toBe(0o640);
      expect(out.upserted[0].mode).toBe(0o640);
      await ex.write('f', { kind: 'inline', data: Buffer.from('newer') }, { txId: 'm2', overwrite: true, mode: 0o600 });
      expect((await fs.stat(path.join(root, 'f'))).mode & 0o7777).toBe(0o600);
      await ex.write('g', { kind: 'inline', data: Buffer.from('g') }, { txId: 'm3', mode: 0o604 });
      expect((await fs.stat(path.join(root, 'g'))).mode & 0o7777).toBe(0o604);
    });

    it('reports identity as dev:ino, mtime as fs.stat does, and copies keep the source mode', async () => {
      await fs.writeFile(path.join(root, 'run.sh'), '#!/bin/sh\n');
      await fs.chmod(path.join(root, 'run.sh'), 0o751);
      const out = await ex.copy('run.sh', 'copy.sh', { txId: 'c1' });
      const st = await fs.stat(path.join(root, 'copy.sh'));
      expect(st.mode & 0o7777).toBe(0o751);
      expect(out.upserted[0].identity).toBe(`${st.dev}:${st.ino}`);
      // Same millisecond as a plain fs.stat() reports, so other components agree with the catalog.
      expect(out.upserted[0].mtime).toBe(st.mtime.toISOString());
    });

    (process.getuid?.() === 0 ? it : it.skip)('keeps the owner of an overwritten file (needs root)', async () => {
      await fs.writeFile(path.join(root, 'owned'), 'old');
      await fs.chown(path.join(root, 'owned'), 1234, 4321);
      const out = await ex.write('owned', { kind: 'inline', data: Buffer.from('new') }, { txId: 'o1', overwrite: true });
      const st = await fs.stat(path.join(root, 'owned'));
      expect([st.uid, st.gid]).toEqual([1234, 4321]);
      expect(out.upserted[0]).toMatchObject({ uid: 1234, gid: 4321 });
    });
  });

  describe('copy with catalogued content', () => {
    it('trusts known content only while size and mtime still match', async () => {
      await fs.writeFile(path.join(root, 'src'), 'real content');
      const st = await fs.stat(path.join(root, 'src'));
      const fake = 'f'.repeat(64);
      const matching = { size: st.size, mtime: st.mtime.toISOString(), sha256: fake };
      const fast = await ex.copy('src', 'dst1', { txId: 'k1', known: { '': matching } });
      // The catalog's hash was taken as is: proof that no byte was re-read for hashing.
      expect(fast.upserted[0].sha256).toBe(fake);
      expect(await fs.readFile(path.join(root, 'dst1'), 'utf8')).toBe('real content');
      const stale = { ...matching, mtime: new Date(st.mtimeMs - 5000).toISOString() };
      const slow = await ex.copy('src', 'dst2', { txId: 'k2', known: { '': stale } });
      expect(slow.upserted[0].sha256).toBe(sha256('real content'));
      await fs.mkdir(path.join(root, 'tree'));
      await fs.rename(path.join(root, 'src'), path.join(root, 'tree', 'f'));
      const tree = await ex.copy('tree', 'tree2', { txId: 'k3', recursive: true, known: { f: matching } });
      expect(tree.upserted.find((m) => m.path === 'tree2/f')?.sha256).toBe(fake);
    });
  });

  describe('streaming list', () => {
    const openFds = async (): Promise<number> => (await fs.readdir('/proc/self/fd')).length;

    it('reads each directory only when the walk reaches it (nothing is collected up front)', async () => {
      for (let i = 0; i < 5; i++) {
        await fs.mkdir(path.join(root, `d${i}`));
        await fs.writeFile(path.join(root, `d${i}`, 'f'), `${i}`);
      }
      const seen: string[] = [];
      for await (const m of ex.list('', { recursive: true })) {
        if (seen.length === 0) {
          // The first entry is a top-level directory; the others are not opened yet, so what
          // lands in them now must show up in this very listing.
          for (let i = 0; i < 5; i++) if (m.path !== `d${i}`) await fs.writeFile(path.join(root, `d${i}`, 'late'), 'late');
        }
        seen.push(m.path);
      }
      expect(seen.filter((p) => p.endsWith('/late'))).toHaveLength(4);
      expect(seen.filter((p) => p.endsWith('/f'))).toHaveLength(5);
    });

    it('walks a tree deeper than the directories it keeps open, each entry once', async () => {
      const segs = Array.from({ length: 45 }, (_, i) => `l${i}`);
      await fs.mkdir(path.join(root, ...segs), { recursive: true });
      for (let depth = 1; depth <= segs.length; depth++) {
        await fs.writeFile(path.join(root, ...segs.slice(0, depth), 'f'), 'x');
        if (depth % 10 === 0) await fs.mkdir(path.join(root, ...segs.slice(0, depth), 'side'));
      }
      const all = (await listAll(ex, '', { recursive: true, pageSize: 3 })).map((m) => m.path);
      expect(new Set(all).size).toBe(all.length);
      expect(all).toHaveLength(45 * 2 + 4);
      expect(all).toContain(`${segs.join('/')}/f`);
    });

    it('a consumer that stops early leaves no directory open', async () => {
      for (let i = 0; i < 20; i++) await fs.mkdir(path.join(root, 'a', 'b', `c${i}`), { recursive: true });
      await fs.writeFile(path.join(root, 'a', 'b', 'c0', 'f'), 'x');
      const before = await openFds();
      for (let round = 0; round < 20; round++) {
        for await (const m of ex.list('', { recursive: true, pageSize: 2 })) if (m.path.split('/').length >= 3) break;
        expect((await listAll(ex, '', { recursive: true, limit: 2 })).length).toBe(2);
      }
      expect(await openFds()).toBeLessThanOrEqual(before);
    });

    it('refuses a bad pageSize', async () => {
      expect(await codeOf(listAll(ex, '', { pageSize: 0 }))).toBe('INVALID_REQUEST');
    });
  });

  describe('read-only mounts', () => {
    it('refuses every mutation before touching the disk, but reads, undo and finalize work', async () => {
      await fs.mkdir(path.join(root, 'd'));
      await fs.writeFile(path.join(root, 'd', 'f.txt'), 'ro');
      const ro = await openAt(root, { readOnly: true });
      const before = await fs.readdir(root);
      const data = { kind: 'inline' as const, data: Buffer.from('x') };
      expect(await codeOf(ro.mkdir('new', { txId: 'r1' }))).toBe('READ_ONLY_MOUNT');
      expect(await codeOf(ro.write('d/f.txt', data, { txId: 'r2', overwrite: true }))).toBe('READ_ONLY_MOUNT');
      expect(await codeOf(ro.write('n.txt', data, { txId: 'r3' }))).toBe('READ_ONLY_MOUNT');
      expect(await codeOf(ro.copy('d/f.txt', 'c.txt', { txId: 'r4' }))).toBe('READ_ONLY_MOUNT');
      expect(await codeOf(ro.move('d/f.txt', 'm.txt', { txId: 'r5' }))).toBe('READ_ONLY_MOUNT');
      expect(await codeOf(ro.delete('d', { txId: 'r6', recursive: true }))).toBe('READ_ONLY_MOUNT');
      expect(await fs.readdir(root)).toEqual(before);
      expect(await fs.readFile(path.join(root, 'd', 'f.txt'), 'utf8')).toBe('ro');
      expect(await ro.stat('d/f.txt')).toMatchObject({ size: 2 });
      expect((await listAll(ro, 'd')).map((m) => m.path)).toEqual(['d/f.txt']);
      expect(await ro.undo('r2')).toEqual({ undone: false });
      await ro.finalize('r2');
      expect(await ro.pendingTransactions()).toEqual([]);
      expect(await fs.readdir(root)).toEqual(before);
    });
  });

  describe('transaction ids and staging', () => {
    it('refuses transaction ids that could escape the staging folder', async () => {
      for (const txId of ['../evil', 'a/b', '', '.', '..']) {
        expect(await codeOf(ex.write('x', { kind: 'inline', data: Buffer.from('x') }, { txId }))).toBe('INVALID_REQUEST');
        expect(await codeOf(ex.undo(txId))).toBe('INVALID_REQUEST');
      }
      expect(await fs.readdir(root)).toEqual([]);
    });

    it('refuses to stage through a staging folder that is a symlink', async () => {
      const elsewhere = await tempDir('filestore-elsewhere-');
      await fs.symlink(elsewhere, path.join(root, STAGING_DIR));
      expect(await codeOf(ex.write('x', { kind: 'inline', data: Buffer.from('x') }, { txId: 't' }))).toBe('STAGING_TAMPERED');
      expect(await fs.readdir(elsewhere)).toEqual([]);
    });

    it('cleans staging that holds only scratch (a crash before the plan was written)', async () => {
      await fs.mkdir(path.join(root, STAGING_DIR, 'early'), { recursive: true });
      await fs.writeFile(path.join(root, STAGING_DIR, 'early', 'data.tmp'), 'partial');
      expect(await ex.pendingTransactions()).toEqual(['early']);
      expect(await ex.undo('early')).toEqual({ undone: false });
      expect(await ex.pendingTransactions()).toEqual([]);
    });

    it('deletes by renaming into staging: bytes stay until finalize', async () => {
      await fs.writeFile(path.join(root, 'big.bin'), 'payload');
      await ex.delete('big.bin', { txId: 'del' });
      expect(await fs.readFile(path.join(root, STAGING_DIR, 'del', 'backup'), 'utf8')).toBe('payload');
      await ex.finalize('del');
      expect(await fs.readdir(root)).toEqual([STAGING_DIR]);
      expect(await fs.readdir(path.join(root, STAGING_DIR))).toEqual([]);
    });
  });

  describe('crashes at every step', () => {
    type Scenario = { name: string; seed: (root: string) => Promise<void>; run: (ex: LocalExecutor) => Promise<MutationOutcome>; target?: string };
    const write = (p: string, s: string) => async (r: string) => {
      await fs.mkdir(path.dirname(path.join(r, p)), { recursive: true });
      await fs.writeFile(path.join(r, p), s);
    };
    const big = Buffer.alloc(256 * 1024, 'n');
    const scenarios: Scenario[] = [
      { name: 'write new file', seed: async () => {}, run: (e) => e.write('a/b/new.bin', { kind: 'inline', data: big }, { txId: 'tx' }), target: 'a/b/new.bin' },
      {
        name: 'write over file',
        seed: write('f.txt', 'old content'),
        run: (e) => e.write('f.txt', { kind: 'stream', stream: Readable.from([big]) }, { txId: 'tx', overwrite: true }),
        target: 'f.txt',
      },
      { name: 'mkdir', seed: async () => {}, run: (e) => e.mkdir('x/y/z', { txId: 'tx' }) },
      { name: 'copy over file', seed: async (r) => (await write('s', 'source')(r), write('d', 'dest old')(r)), run: (e) => e.copy('s', 'd', { txId: 'tx', overwrite: true }), target: 'd' },
      { name: 'copy tree', seed: async (r) => (await write('t/a', 'a')(r), write('t/s/b', 'b')(r)), run: (e) => e.copy('t', 'n/t2', { txId: 'tx', recursive: true }) },
      { name: 'move file', seed: write('m', 'M'), run: (e) => e.move('m', 'p/q/m', { txId: 'tx' }) },
      { name: 'move over file', seed: async (r) => (await write('m', 'M')(r), write('o', 'old')(r)), run: (e) => e.move('m', 'o', { txId: 'tx', overwrite: true }), target: 'o' },
      { name: 'move tree', seed: async (r) => (await write('t/a', 'a')(r), write('t/s/b', 'b')(r)), run: (e) => e.move('t', 'u/t', { txId: 'tx' }) },
      { name: 'delete tree', seed: async (r) => (await write('t/a', 'a')(r), write('t/s/b', 'b')(r)), run: (e) => e.delete('t', { txId: 'tx', recursive: true }) },
    ];
    const steps: MutationStep[] = ['plan-saved', 'dirs-created', 'data-staged', 'backup-taken', 'committed'];
    const cases = scenarios.flatMap((s) => steps.map((step) => [s.name, step, s] as const));

    /** Runs the scenario with a crash injected at `step`; reports whether the crash happened. */
    async function crashAt(r: string, s: Scenario, step: MutationStep, before: Record<string, string>, after: Record<string, string>): Promise<boolean> {
      let crashed = false;
      const crashing = await openAt(r, {
        hooks: {
          afterStep: async (at) => {
            if (at !== step) return;
            if (s.target) {
              // No reader ever sees a partial target: it is the old content or the new, whole.
              const now = await readOrNull(path.join(r, s.target));
              const seen = now === null ? null : `${sha256(now)}`;
              const allowed = [before[s.target], after[s.target]].map((v) => (v ? v.split(' ').at(-1) : undefined));
              expect(allowed).toContain(seen ?? undefined);
            }
            crashed = true;
            throw new Error('simulated crash');
          },
        },
      });
      const result = await s.run(crashing).then(
        () => 'ok',
        (err: Error) => err.message,
      );
      expect(result).toBe(crashed ? 'simulated crash' : 'ok');
      return crashed;
    }

    async function reference(s: Scenario): Promise<{ before: Record<string, string>; after: Record<string, string>; outcome: MutationOutcome }> {
      const r = await tempDir();
      await s.seed(r);
      const before = await diskState(r);
      const outcome = await s.run(await openAt(r));
      return { before, after: await diskState(r), outcome };
    }

    const shape = (o: MutationOutcome) => ({
      ...o,
      upserted: o.upserted.map((m) => ({ path: m.path, kind: m.kind, size: m.kind === 'file' ? m.size : 0, sha256: m.sha256 })),
    });

    it.each(cases)('%s, crash after %s: undo restores the prior state', async (_n, step, s) => {
      const { before, after } = await reference(s);
      const r = await tempDir();
      await s.seed(r);
      const crashed = await crashAt(r, s, step, before, after);
      const fresh = await openAt(r);
      if (crashed) expect(await fresh.pendingTransactions()).toEqual(['tx']);
      const first = await fresh.undo('tx');
      expect(first).toEqual({ undone: expect.any(Boolean) });
      expect(await diskState(r)).toEqual(before);
      expect(await fs.readdir(path.join(r, STAGING_DIR)).catch(() => [])).toEqual([]);
      // Idempotent: the same answer again, nothing changed.
      expect(await fresh.undo('tx')).toEqual(first);
      expect(await diskState(r)).toEqual(before);
    });

    it.each(cases)('%s, crash after %s: a retry finishes the op with the same outcome', async (_n, step, s) => {
      const { before, after, outcome } = await reference(s);
      const r = await tempDir();
      await s.seed(r);
      await crashAt(r, s, step, before, after);
      const fresh = await openAt(r);
      const retried = await s.run(fresh);
      expect(shape(retried)).toEqual(shape(outcome));
      expect(await diskState(r)).toEqual(after);
      expect(shape(await s.run(fresh))).toEqual(shape(outcome));
      await fresh.finalize('tx');
      expect(await fresh.pendingTransactions()).toEqual([]);
      expect(await diskState(r)).toEqual(after);
    });

    it('after a crash with the new content already in place, undo puts the old bytes back', async () => {
      await fs.writeFile(path.join(root, 'doc.txt'), 'version 1');
      const crashing = await openAt(root, {
        hooks: {
          afterStep: (at) => {
            if (at === 'committed') throw new Error('power cut');
          },
        },
      });
      await expect(crashing.write('doc.txt', { kind: 'inline', data: Buffer.from('version 2') }, { txId: 'pc', overwrite: true })).rejects.toThrow('power cut');
      expect(await fs.readFile(path.join(root, 'doc.txt'), 'utf8')).toBe('version 2');
      // The plan is in the plan store (the catalog, for a worker), never a file in the mount.
      expect(await fs.readdir(path.join(root, STAGING_DIR, 'pc'))).not.toContain('plan.json');
      const plan = await planStoreOf(root).load('pc');
      expect(plan).toMatchObject({ op: 'write', target: 'doc.txt', hadPrevious: true, applied: false });
      // A retry must not re-derive hadPrevious from a disk that already holds the new content.
      const fresh = await openAt(root);
      expect(await fresh.undo('pc')).toEqual({ undone: true });
      expect(await fs.readFile(path.join(root, 'doc.txt'), 'utf8')).toBe('version 1');
    });
  });

  describe('moveAcrossHeld (EXDEV fallback)', () => {
    const shm = '/dev/shm';
    let other: string;
    beforeAll(async () => {
      const usable = await fs.stat(shm).then((s) => s.isDirectory(), () => false);
      other = usable ? await tempDir('filestore-xdev-', shm) : await tempDir('filestore-xdev-');
    });

    it('moves a file and a tree to another file system, keeping content, modes and mtimes', async () => {
      const [a, b] = [await fs.stat(root), await fs.stat(other)];
      // Where /dev/shm is a separate tmpfs this crosses devices; elsewhere it still must move correctly.
      if (a.dev === b.dev) console.warn('moveAcrossHeld test: /dev/shm is not a separate device here');
      await fs.writeFile(path.join(root, 'f.bin'), big());
      await fs.chmod(path.join(root, 'f.bin'), 0o640);
      const mtime = new Date('2020-01-02T03:04:05.000Z');
      await fs.utimes(path.join(root, 'f.bin'), mtime, mtime);
      await fs.mkdir(path.join(root, 'tree', 'sub'), { recursive: true });
      await fs.writeFile(path.join(root, 'tree', 'sub', 'x.txt'), 'x');
      await fs.symlink('sub/x.txt', path.join(root, 'tree', 'link'));
      await fs.chmod(path.join(root, 'tree', 'sub'), 0o750);
      const treeBefore = await diskState(path.join(root, 'tree'));

      expect(await moveAcross(path.join(root, 'f.bin'), path.join(other, 'f.bin'))).toBe(big().length);
      const st = await fs.stat(path.join(other, 'f.bin'));
      expect(st.mode & 0o7777).toBe(0o640);
      expect(st.mtime.toISOString()).toBe(mtime.toISOString());
      expect(sha256(await fs.readFile(path.join(other, 'f.bin')))).toBe(sha256(big()));

      await moveAcross(path.join(root, 'tree'), path.join(other, 'tree'));
      expect(await diskState(path.join(other, 'tree'))).toEqual(treeBefore);
      expect(await fs.readdir(root)).toEqual([]);
      expect(await fs.readdir(other)).toEqual(['f.bin', 'tree']);
    });

    it('replaces an existing destination file and cleans scratch left by an earlier crash', async () => {
      const from = path.join(root, 'src.txt');
      const to = path.join(other, 'dst.txt');
      await fs.writeFile(from, 'new');
      await fs.writeFile(to, 'old');
      const { tmp } = crossDeviceScratch(from, to);
      await fs.writeFile(tmp, 'half-copied garbage');
      await moveAcross(from, to);
      expect(await fs.readFile(to, 'utf8')).toBe('new');
      expect(await readOrNull(from)).toBeNull();
      expect(await readOrNull(tmp)).toBeNull();
    });

    function big(): Buffer {
      return Buffer.alloc(3 * 1024 * 1024 + 5, 'z');
    }
  });

  describe('metrics', () => {
    it('counts bytes and calls under bounded labels, never paths', async () => {
      await ex.write('secret/path/name.txt', { kind: 'inline', data: Buffer.alloc(1000) }, { txId: 'mx' });
      const bytes = await registry.getSingleMetricAsString('filestore_bytes_written_total');
      expect(bytes).toMatch(/filestore_bytes_written_total\{backend="local",mount="test-mount"\} \d+/);
      const all = await registry.metrics();
      expect(all).toContain('op="write"');
      expect(all).not.toContain('secret/path');
    });
  });

  describe('memory', () => {
    it('streams a 64 MiB write with modest RSS growth', async () => {
      const chunk = Buffer.alloc(1024 * 1024, 7);
      let sent = 0;
      const source = new Readable({
        read() {
          this.push(sent++ < 64 ? chunk : null);
        },
      });
      global.gc?.();
      const base = process.memoryUsage().rss;
      let peak = base;
      const out = await ex.write('big.bin', { kind: 'stream', stream: source }, {
        txId: 'mem',
        onProgress: () => {
          peak = Math.max(peak, process.memoryUsage().rss);
        },
      });
      peak = Math.max(peak, process.memoryUsage().rss);
      expect(out.bytesWritten).toBe(64 * 1024 * 1024);
      expect(peak - base).toBeLessThan(64 * 1024 * 1024);
    });
  });
});
