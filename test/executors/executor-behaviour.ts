/**
 * The one behaviour suite every Executor must pass. It speaks only the Executor interface and
 * asks `capabilities()` where backends legitimately differ, so the local executor and a future S3
 * executor run the very same tests.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Executor, MutationOutcome, NodeMeta } from '../../src/executors/executor';

/** What a backend's test file provides per test: a fresh, empty mount. */
export interface ExecutorFixture {
  executor: Executor;
  cleanup(): Promise<void>;
  /**
   * Raw bytes at a mount path read straight from the backend (bypassing the executor), or null
   * when nothing is there. Optional: without it, content is checked through a probe copy, whose
   * outcome carries the sha256 the executor computed while streaming.
   */
  readFile?(path: string): Promise<Buffer | null>;
}

export const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

/** The `code` of the error a promise rejects with ('<resolved>' when it does not reject). */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return '<resolved>';
  } catch (err) {
    return String((err as { code?: unknown }).code ?? `<no code: ${(err as Error)?.name}>`);
  }
}

interface SnapshotEntry {
  path: string;
  kind: string;
  size?: number;
  sha256?: string | null;
  mode?: number | null;
}

export function describeExecutorBehaviour(name: string, setup: () => Promise<ExecutorFixture>): void {
  describe(`Executor behaviour: ${name}`, () => {
    let fx: ExecutorFixture;
    let ex: Executor;
    let seq = 0;
    const tx = (label = 'tx'): string => `${label}-${process.pid}-${++seq}`;
    let hostTmp: string;

    beforeEach(async () => {
      fx = await setup();
      ex = fx.executor;
      hostTmp = await fs.mkdtemp(path.join(os.tmpdir(), 'filestore-src-'));
    });
    afterEach(async () => {
      await fx.cleanup();
      await fs.rm(hostTmp, { recursive: true, force: true });
    });

    /** Seeds a committed file. */
    async function put(p: string, content: string | Buffer, mode?: number): Promise<MutationOutcome> {
      const id = tx('seed');
      const out = await ex.write(p, { kind: 'inline', data: Buffer.from(content) }, { txId: id, overwrite: true, mode });
      await ex.finalize(id);
      return out;
    }
    async function mkdirs(p: string): Promise<void> {
      const id = tx('seed');
      await ex.mkdir(p, { txId: id });
      await ex.finalize(id);
    }
    /** sha256 of what the backend holds at `p` (null when nothing is there). */
    async function contentSha(p: string): Promise<string | null> {
      if (fx.readFile) {
        const data = await fx.readFile(p);
        return data === null ? null : sha256(data);
      }
      if ((await ex.stat(p)) === null) return null;
      const id = tx('probe');
      const out = await ex.copy(p, `zz-probe-${id}`, { txId: id });
      await ex.undo(id);
      return out.upserted.find((m) => m.kind === 'file')?.sha256 ?? null;
    }
    async function expectFile(p: string, content: string | Buffer): Promise<void> {
      const meta = await ex.stat(p);
      expect(meta).toMatchObject({ path: p, kind: 'file', size: Buffer.byteLength(content) });
      expect(await contentSha(p)).toBe(sha256(content));
    }
    /** Everything visible in the mount: paths, kinds, sizes, content hashes (and modes where kept). */
    async function snapshot(): Promise<SnapshotEntry[]> {
      const posix = ex.capabilities().posixMode;
      const out: SnapshotEntry[] = [];
      for (const m of await ex.list('', { recursive: true })) {
        if (m.kind === 'directory') out.push({ path: m.path, kind: m.kind, ...(posix ? { mode: m.mode } : {}) });
        else out.push({ path: m.path, kind: m.kind, size: m.size, sha256: await contentSha(m.path), ...(posix ? { mode: m.mode } : {}) });
      }
      return out;
    }
    const paths = (metas: NodeMeta[]): string[] => metas.map((m) => m.path);
    const fileOf = (out: MutationOutcome, p: string): NodeMeta | undefined => out.upserted.find((m) => m.path === p);

    describe('capabilities', () => {
      it('reports every flag as a boolean', () => {
        const caps = ex.capabilities();
        for (const key of ['atomicRename', 'serverSideCopy', 'multipart', 'posixMode', 'directories'] as const) {
          expect(typeof caps[key]).toBe('boolean');
        }
      });
    });

    describe('stat and list', () => {
      it('stats files and directories without reading content, and returns null for nothing', async () => {
        await put('docs/a.txt', 'hello');
        expect(await ex.stat('missing')).toBeNull();
        expect(await ex.stat('docs/missing/deeper')).toBeNull();
        const file = await ex.stat('docs/a.txt');
        expect(file).toMatchObject({ path: 'docs/a.txt', kind: 'file', size: 5, sha256: null });
        expect(Number.isNaN(Date.parse(file!.mtime))).toBe(false);
        expect(await ex.stat('docs')).toMatchObject({ path: 'docs', kind: 'directory', sha256: null });
        expect(await ex.stat('')).toMatchObject({ path: '', kind: 'directory' });
        expect(await ex.stat('./docs//a.txt')).toMatchObject({ path: 'docs/a.txt' });
      });

      it('lists children sorted by path, the whole subtree when recursive, and honours limit', async () => {
        await put('b.txt', 'b');
        await put('a/x.txt', 'x');
        await put('a-c.txt', 'ac');
        await put('a/y/z.txt', 'z');
        expect(paths(await ex.list(''))).toEqual(['a', 'a-c.txt', 'b.txt']);
        expect(paths(await ex.list('', { recursive: true }))).toEqual(['a', 'a-c.txt', 'a/x.txt', 'a/y', 'a/y/z.txt', 'b.txt']);
        expect(paths(await ex.list('a'))).toEqual(['a/x.txt', 'a/y']);
        expect(paths(await ex.list('', { recursive: true, limit: 2 }))).toEqual(['a', 'a-c.txt']);
        expect((await ex.list('a', { recursive: true })).find((m) => m.path === 'a/y/z.txt')).toMatchObject({ kind: 'file', size: 1 });
      });

      it('never shows staging, also while a transaction is pending', async () => {
        const id = tx();
        await ex.write('f.txt', { kind: 'inline', data: Buffer.from('x') }, { txId: id });
        expect(await ex.pendingTransactions()).toContain(id);
        expect(paths(await ex.list('', { recursive: true }))).toEqual(['f.txt']);
        await ex.finalize(id);
        expect(paths(await ex.list('', { recursive: true }))).toEqual(['f.txt']);
      });

      it('refuses to list a file or a missing directory', async () => {
        await put('f.txt', 'x');
        expect(await codeOf(ex.list('f.txt'))).toBe('NOT_A_DIRECTORY');
        expect(await codeOf(ex.list('nope'))).toBe('NOT_FOUND');
      });
    });

    describe('mkdir', () => {
      it('creates missing parents and reports every created directory', async () => {
        const out = await ex.mkdir('p/q/r', { txId: tx() });
        expect(out).toMatchObject({ op: 'mkdir', removed: [], bytesWritten: 0 });
        expect(paths(out.upserted)).toEqual(['p', 'p/q', 'p/q/r']);
        expect(out.upserted.every((m) => m.kind === 'directory' && m.sha256 === null)).toBe(true);
        expect(await ex.stat('p/q/r')).toMatchObject({ kind: 'directory' });
      });

      it('accepts an existing directory with parents, refuses it without', async () => {
        await mkdirs('d');
        const out = await ex.mkdir('d', { txId: tx() });
        expect(paths(out.upserted)).toEqual(['d']);
        expect(await codeOf(ex.mkdir('d', { txId: tx(), parents: false }))).toBe('ALREADY_EXISTS');
      });

      it('without parents refuses a missing parent and creates nothing', async () => {
        expect(await codeOf(ex.mkdir('a/b', { txId: tx(), parents: false }))).toBe('NOT_FOUND');
        expect(await ex.list('')).toEqual([]);
        const out = await ex.mkdir('a', { txId: tx(), parents: false });
        expect(paths(out.upserted)).toEqual(['a']);
      });

      it('refuses a file at the path or in the way', async () => {
        await put('f', 'x');
        expect(await codeOf(ex.mkdir('f', { txId: tx() }))).toBe('ALREADY_EXISTS');
        expect(await codeOf(ex.mkdir('f/sub', { txId: tx() }))).toBe('NOT_A_DIRECTORY');
        await expectFile('f', 'x');
      });
    });

    describe('write', () => {
      it('writes inline content and reports its metadata', async () => {
        const out = await ex.write('hello.txt', { kind: 'inline', data: Buffer.from('hello world') }, { txId: tx() });
        expect(out).toMatchObject({ op: 'write', removed: [], bytesWritten: 11 });
        expect(out.upserted).toHaveLength(1);
        expect(out.upserted[0]).toMatchObject({ path: 'hello.txt', kind: 'file', size: 11, sha256: sha256('hello world') });
        expect(Number.isNaN(Date.parse(out.upserted[0].mtime))).toBe(false);
        await expectFile('hello.txt', 'hello world');
      });

      it('creates missing parents (reported, parents first) unless told not to', async () => {
        const out = await ex.write('a/b/c.txt', { kind: 'inline', data: Buffer.from('c') }, { txId: tx() });
        expect(out.upserted.map((m) => [m.path, m.kind])).toEqual([
          ['a', 'directory'],
          ['a/b', 'directory'],
          ['a/b/c.txt', 'file'],
        ]);
        expect(await codeOf(ex.write('x/y.txt', { kind: 'inline', data: Buffer.from('y') }, { txId: tx(), createParents: false }))).toBe('NOT_FOUND');
        expect(await ex.stat('x')).toBeNull();
      });

      it('streams a Readable and a host file, reporting progress up to the full size', async () => {
        const big = Buffer.alloc(3 * 1024 * 1024 + 7, 'q');
        const seen: number[] = [];
        const out = await ex.write('s.bin', { kind: 'stream', stream: Readable.from([big.subarray(0, 1000), big.subarray(1000)]) }, {
          txId: tx(),
          onProgress: (n) => seen.push(n),
        });
        expect(fileOf(out, 's.bin')).toMatchObject({ size: big.length, sha256: sha256(big) });
        expect(seen.at(-1)).toBe(big.length);
        expect([...seen].sort((x, y) => x - y)).toEqual(seen);
        await expectFile('s.bin', big);

        const host = path.join(hostTmp, 'upload.bin');
        await fs.writeFile(host, 'from a host file');
        const out2 = await ex.write('f.bin', { kind: 'file', path: host }, { txId: tx(), sourceRoots: [hostTmp] });
        expect(fileOf(out2, 'f.bin')).toMatchObject({ size: 16, sha256: sha256('from a host file') });
        await expectFile('f.bin', 'from a host file');
      });

      it('writes an empty file', async () => {
        const out = await ex.write('empty', { kind: 'inline', data: Buffer.alloc(0) }, { txId: tx() });
        expect(fileOf(out, 'empty')).toMatchObject({ size: 0, sha256: sha256('') });
        await expectFile('empty', '');
      });

      it('refuses to replace a file without overwrite, and replaces it with overwrite', async () => {
        await put('f.txt', 'old');
        expect(await codeOf(ex.write('f.txt', { kind: 'inline', data: Buffer.from('new') }, { txId: tx() }))).toBe('ALREADY_EXISTS');
        await expectFile('f.txt', 'old');
        const out = await ex.write('f.txt', { kind: 'inline', data: Buffer.from('newer!') }, { txId: tx(), overwrite: true });
        expect(fileOf(out, 'f.txt')).toMatchObject({ size: 6, sha256: sha256('newer!') });
        await expectFile('f.txt', 'newer!');
      });

      it('refuses a directory target and a file in the way', async () => {
        await mkdirs('d');
        await put('f', 'x');
        expect(await codeOf(ex.write('d', { kind: 'inline', data: Buffer.from('x') }, { txId: tx(), overwrite: true }))).toBe('IS_A_DIRECTORY');
        expect(await codeOf(ex.write('f/x', { kind: 'inline', data: Buffer.from('x') }, { txId: tx() }))).toBe('NOT_A_DIRECTORY');
      });

      it('refuses content over maxBytes, inline or mid-stream, leaving nothing behind', async () => {
        const before = await snapshot();
        expect(await codeOf(ex.write('n/big', { kind: 'inline', data: Buffer.alloc(11) }, { txId: tx(), maxBytes: 10 }))).toBe('PAYLOAD_TOO_LARGE');
        let pulled = 0;
        const endless = Readable.from(
          (function* () {
            for (;;) {
              pulled++;
              yield Buffer.alloc(64 * 1024, 1);
            }
          })(),
        );
        const id = tx();
        expect(await codeOf(ex.write('n/stream', { kind: 'stream', stream: endless }, { txId: id, maxBytes: 1024 * 1024 }))).toBe('PAYLOAD_TOO_LARGE');
        expect(pulled).toBeLessThan(100);
        await ex.undo(id);
        expect(await snapshot()).toEqual(before);
      });

      it('checks expectedSha256', async () => {
        expect(
          await codeOf(ex.write('n/h.txt', { kind: 'inline', data: Buffer.from('abc') }, { txId: tx(), expectedSha256: sha256('abd') })),
        ).toBe('INVALID_REQUEST');
        expect(await ex.stat('n/h.txt')).toBeNull();
        const out = await ex.write('n/h.txt', { kind: 'inline', data: Buffer.from('abc') }, { txId: tx(), expectedSha256: sha256('abc').toUpperCase() });
        expect(fileOf(out, 'n/h.txt')?.sha256).toBe(sha256('abc'));
      });

      it('refuses a missing source file', async () => {
        expect(await codeOf(ex.write('x.txt', { kind: 'file', path: path.join(hostTmp, 'nope') }, { txId: tx(), sourceRoots: [hostTmp] }))).toBe('NOT_FOUND');
        expect(await ex.stat('x.txt')).toBeNull();
      });

      it('stops when its signal aborts, and undo leaves no trace', async () => {
        const ac = new AbortController();
        const stream = new Readable({
          read() {
            this.push(Buffer.alloc(16 * 1024, 2));
            ac.abort();
          },
        });
        const id = tx();
        await expect(ex.write('dir/aborted.bin', { kind: 'stream', stream }, { txId: id, signal: ac.signal })).rejects.toBeDefined();
        expect(await ex.stat('dir/aborted.bin')).toBeNull();
        await ex.undo(id);
        expect(await ex.list('')).toEqual([]);
      });
    });

    describe('copy', () => {
      it('copies a file and hashes it', async () => {
        await put('src.txt', 'copy me');
        const out = await ex.copy('src.txt', 'sub/dst.txt', { txId: tx() });
        expect(out).toMatchObject({ op: 'copy', removed: [], bytesWritten: 7 });
        expect(paths(out.upserted)).toEqual(['sub', 'sub/dst.txt']);
        expect(fileOf(out, 'sub/dst.txt')).toMatchObject({ kind: 'file', size: 7, sha256: sha256('copy me') });
        await expectFile('sub/dst.txt', 'copy me');
        await expectFile('src.txt', 'copy me');
      });

      it('uses catalogued content when it still matches', async () => {
        const seed = await put('k.txt', 'known');
        const live = fileOf(seed, 'k.txt')!;
        const out = await ex.copy('k.txt', 'k2.txt', { txId: tx(), known: { '': { size: live.size, mtime: live.mtime, sha256: live.sha256! } } });
        expect(fileOf(out, 'k2.txt')).toMatchObject({ size: 5, sha256: sha256('known') });
        await expectFile('k2.txt', 'known');
      });

      it('replaces an existing file only with overwrite', async () => {
        await put('a', 'AAA');
        await put('b', 'B');
        expect(await codeOf(ex.copy('a', 'b', { txId: tx() }))).toBe('ALREADY_EXISTS');
        await expectFile('b', 'B');
        await ex.copy('a', 'b', { txId: tx(), overwrite: true });
        await expectFile('b', 'AAA');
      });

      it('copies a directory tree only when recursive, reporting every node', async () => {
        await put('t/one.txt', '1');
        await put('t/sub/two.txt', '22');
        await mkdirs('t/empty');
        expect(await codeOf(ex.copy('t', 'u', { txId: tx() }))).toBe('IS_A_DIRECTORY');
        const out = await ex.copy('t', 'x/u', { txId: tx(), recursive: true });
        expect(paths(out.upserted).sort()).toEqual(['x', 'x/u', 'x/u/empty', 'x/u/one.txt', 'x/u/sub', 'x/u/sub/two.txt']);
        expect(fileOf(out, 'x/u/sub/two.txt')).toMatchObject({ kind: 'file', size: 2, sha256: sha256('22') });
        expect(fileOf(out, 'x/u/empty')).toMatchObject({ kind: 'directory' });
        expect(out.bytesWritten).toBe(3);
        await expectFile('x/u/one.txt', '1');
        await expectFile('x/u/sub/two.txt', '22');
        expect(await ex.stat('t/sub/two.txt')).not.toBeNull();
        expect(await codeOf(ex.copy('t', 'x/u', { txId: tx(), recursive: true, overwrite: true }))).toBe('ALREADY_EXISTS');
      });

      it('refuses a tree larger than maxEntries, writing nothing', async () => {
        for (let i = 0; i < 5; i++) await put(`big/f${i}`, `${i}`);
        const id = tx();
        expect(await codeOf(ex.copy('big', 'big2', { txId: id, recursive: true, maxEntries: 3 }))).toBe('TREE_TOO_LARGE');
        await ex.undo(id);
        expect(await ex.stat('big2')).toBeNull();
      });

      it('refuses copying into itself, a missing source, and a file onto a directory', async () => {
        await put('d/f', 'x');
        await mkdirs('e');
        expect(await codeOf(ex.copy('d', 'd/inner', { txId: tx(), recursive: true }))).toBe('INVALID_REQUEST');
        expect(await codeOf(ex.copy('d/f', 'd/f', { txId: tx(), overwrite: true }))).toBe('INVALID_REQUEST');
        expect(await codeOf(ex.copy('nope', 'x', { txId: tx() }))).toBe('NOT_FOUND');
        expect(await codeOf(ex.copy('d/f', 'e', { txId: tx(), overwrite: true }))).toBe('IS_A_DIRECTORY');
        expect(await ex.stat('x')).toBeNull();
      });
    });

    describe('move', () => {
      it('moves a file', async () => {
        await put('from.txt', 'moving');
        const out = await ex.move('from.txt', 'to/here.txt', { txId: tx() });
        expect(out).toMatchObject({ op: 'move', moved: { from: 'from.txt', to: 'to/here.txt' }, removed: ['from.txt'] });
        expect(paths(out.upserted)).toEqual(['to', 'to/here.txt']);
        expect(fileOf(out, 'to/here.txt')).toMatchObject({ kind: 'file', size: 6 });
        expect(await ex.stat('from.txt')).toBeNull();
        await expectFile('to/here.txt', 'moving');
      });

      it('moves a directory with its subtree', async () => {
        await put('d/a.txt', 'a');
        await put('d/s/b.txt', 'b');
        const out = await ex.move('d', 'e', { txId: tx() });
        expect(fileOf(out, 'e')).toMatchObject({ kind: 'directory' });
        expect(await ex.stat('d')).toBeNull();
        expect(paths(await ex.list('e', { recursive: true }))).toEqual(['e/a.txt', 'e/s', 'e/s/b.txt']);
        await expectFile('e/s/b.txt', 'b');
      });

      it('replaces a file only with overwrite, never a directory', async () => {
        await put('a', 'A');
        await put('b', 'B');
        await mkdirs('dir');
        expect(await codeOf(ex.move('a', 'b', { txId: tx() }))).toBe('ALREADY_EXISTS');
        expect(await codeOf(ex.move('a', 'dir', { txId: tx(), overwrite: true }))).toBe('ALREADY_EXISTS');
        const out = await ex.move('a', 'b', { txId: tx(), overwrite: true });
        expect(out.removed).toEqual(['a']);
        expect(await ex.stat('a')).toBeNull();
        await expectFile('b', 'A');
      });

      it('refuses moving into itself and a missing source', async () => {
        await put('d/f', 'x');
        expect(await codeOf(ex.move('d', 'd/sub/d', { txId: tx() }))).toBe('INVALID_REQUEST');
        expect(await codeOf(ex.move('d', 'd', { txId: tx() }))).toBe('INVALID_REQUEST');
        expect(await codeOf(ex.move('nope', 'x', { txId: tx() }))).toBe('NOT_FOUND');
        await expectFile('d/f', 'x');
      });
    });

    describe('delete', () => {
      it('deletes a file and an empty directory', async () => {
        await put('f.txt', 'x');
        await mkdirs('empty');
        const out = await ex.delete('f.txt', { txId: tx() });
        expect(out).toMatchObject({ op: 'delete', removed: ['f.txt'], upserted: [], bytesWritten: 0 });
        expect(await ex.stat('f.txt')).toBeNull();
        await ex.delete('empty', { txId: tx() });
        expect(await ex.list('')).toEqual([]);
      });

      it('deletes a non-empty directory only when recursive', async () => {
        await put('t/a/b.txt', 'b');
        expect(await codeOf(ex.delete('t', { txId: tx() }))).toBe('DIRECTORY_NOT_EMPTY');
        await expectFile('t/a/b.txt', 'b');
        const out = await ex.delete('t', { txId: tx(), recursive: true });
        expect(out.removed).toEqual(['t']);
        expect(await ex.stat('t')).toBeNull();
        expect(await ex.list('')).toEqual([]);
      });

      it('refuses a missing path', async () => {
        expect(await codeOf(ex.delete('nope', { txId: tx() }))).toBe('NOT_FOUND');
      });
    });

    describe('idempotency (same txId → same state, same outcome)', () => {
      it('write: a retry returns the stored outcome and writes nothing again', async () => {
        const id = tx();
        const first = await ex.write('w.txt', { kind: 'inline', data: Buffer.from('first') }, { txId: id });
        const again = await ex.write('w.txt', { kind: 'inline', data: Buffer.from('second!') }, { txId: id });
        expect(again).toEqual(first);
        await expectFile('w.txt', 'first');
      });

      it('mkdir, copy, move and delete: the second run is a no-op with the same outcome', async () => {
        await put('src.txt', 'S');
        const runs: Array<[string, () => Promise<MutationOutcome>]> = [];
        const ids = [tx(), tx(), tx(), tx()];
        runs.push(['mkdir', () => ex.mkdir('m/n', { txId: ids[0] })]);
        runs.push(['copy', () => ex.copy('src.txt', 'm/copy.txt', { txId: ids[1] })]);
        runs.push(['move', () => ex.move('m/copy.txt', 'moved.txt', { txId: ids[2] })]);
        runs.push(['delete', () => ex.delete('src.txt', { txId: ids[3] })]);
        for (const [, run] of runs) {
          const first = await run();
          const state = await snapshot();
          expect(await run()).toEqual(first);
          expect(await snapshot()).toEqual(state);
        }
        expect(paths(await ex.list('', { recursive: true }))).toEqual(['m', 'm/n', 'moved.txt']);
      });

      it('refuses reusing a txId for another op or other paths', async () => {
        const id = tx();
        await ex.write('a.txt', { kind: 'inline', data: Buffer.from('a') }, { txId: id });
        expect(await codeOf(ex.write('b.txt', { kind: 'inline', data: Buffer.from('a') }, { txId: id }))).toBe('INVALID_REQUEST');
        expect(await codeOf(ex.delete('a.txt', { txId: id }))).toBe('INVALID_REQUEST');
        expect(await ex.stat('b.txt')).toBeNull();
        await expectFile('a.txt', 'a');
      });
    });

    describe('undo', () => {
      type Scenario = [string, () => Promise<void>, () => Promise<MutationOutcome>];
      const scenarios: Scenario[] = [
        ['write of a new file with new parents', async () => {}, () => ex.write('n1/n2/f.txt', { kind: 'inline', data: Buffer.from('new') }, { txId: 'u' })],
        [
          'write over an existing file (old bytes and mode come back)',
          async () => void (await put('f.txt', 'old bytes', 0o640)),
          () => ex.write('f.txt', { kind: 'inline', data: Buffer.from('new bytes, longer') }, { txId: 'u', overwrite: true, mode: 0o600 }),
        ],
        ['mkdir with parents', async () => mkdirs('keep'), () => ex.mkdir('keep/a/b', { txId: 'u' })],
        ['copy of a file', async () => void (await put('s.txt', 'S')), () => ex.copy('s.txt', 'c/s.txt', { txId: 'u' })],
        [
          'copy over an existing file',
          async () => {
            await put('s.txt', 'S');
            await put('d.txt', 'D old');
          },
          () => ex.copy('s.txt', 'd.txt', { txId: 'u', overwrite: true }),
        ],
        [
          'copy of a tree',
          async () => {
            await put('t/a', 'a');
            await put('t/s/b', 'b');
          },
          () => ex.copy('t', 'deep/t2', { txId: 'u', recursive: true }),
        ],
        ['move of a file', async () => void (await put('m.txt', 'M')), () => ex.move('m.txt', 'x/y/m.txt', { txId: 'u' })],
        [
          'move over an existing file',
          async () => {
            await put('m.txt', 'M');
            await put('o.txt', 'O old');
          },
          () => ex.move('m.txt', 'o.txt', { txId: 'u', overwrite: true }),
        ],
        [
          'move of a tree',
          async () => {
            await put('t/a', 'a');
            await put('t/s/b', 'b');
          },
          () => ex.move('t', 'new/t', { txId: 'u' }),
        ],
        ['delete of a file', async () => void (await put('gone.txt', 'G')), () => ex.delete('gone.txt', { txId: 'u' })],
        [
          'delete of a tree',
          async () => {
            await put('tree/a.txt', 'A');
            await put('tree/s/b.txt', 'BB');
            await mkdirs('tree/empty');
          },
          () => ex.delete('tree', { txId: 'u', recursive: true }),
        ],
      ];

      it.each(scenarios)('restores the exact prior state after %s; a second undo is harmless and answers the same', async (_label, seed, run) => {
        await seed();
        const before = await snapshot();
        await run();
        expect(await snapshot()).not.toEqual(before);
        expect(await ex.undo('u')).toEqual({ undone: true });
        expect(await snapshot()).toEqual(before);
        expect(await ex.pendingTransactions()).not.toContain('u');
        // Idempotent: a retried undo (its first reply lost) answers the same and changes nothing.
        expect(await ex.undo('u')).toEqual({ undone: true });
        expect(await snapshot()).toEqual(before);
      });

      it('reports undone:false for an unknown transaction and for one that changed nothing', async () => {
        expect(await ex.undo(tx())).toEqual({ undone: false });
        await mkdirs('d');
        const id = tx();
        await ex.mkdir('d', { txId: id });
        expect(await ex.undo(id)).toEqual({ undone: false });
        expect(await ex.stat('d')).toMatchObject({ kind: 'directory' });
      });
    });

    describe('finalize', () => {
      it('drops staging and backups; afterwards undo changes nothing', async () => {
        await put('f.txt', 'old');
        const id = tx();
        await ex.write('f.txt', { kind: 'inline', data: Buffer.from('new') }, { txId: id, overwrite: true });
        expect(await ex.pendingTransactions()).toEqual([id]);
        await ex.finalize(id);
        await ex.finalize(id);
        expect(await ex.pendingTransactions()).toEqual([]);
        expect(await ex.undo(id)).toEqual({ undone: false });
        await expectFile('f.txt', 'new');
      });

      it('is idempotent for unknown transactions', async () => {
        await ex.finalize(tx());
        expect(await ex.pendingTransactions()).toEqual([]);
      });
    });

    describe('path refusals', () => {
      const bad: Array<[string, string]> = [
        ['../outside.txt', 'PATH_TRAVERSAL'],
        ['a/../../outside.txt', 'PATH_TRAVERSAL'],
        ['/etc/passwd', 'ABSOLUTE_PATH'],
        ['a\0b', 'NUL_BYTE'],
        ['.filestore-staging/x', 'RESERVED_PATH'],
        ['', 'INVALID_PATH'],
      ];

      it.each(bad)('refuses %j with %s in every mutation, writing nothing', async (p, code) => {
        await put('ok.txt', 'ok');
        const before = await snapshot();
        const data = { kind: 'inline' as const, data: Buffer.from('x') };
        expect(await codeOf(ex.write(p, data, { txId: tx(), overwrite: true }))).toBe(code);
        expect(await codeOf(ex.mkdir(p, { txId: tx() }))).toBe(code);
        expect(await codeOf(ex.copy('ok.txt', p, { txId: tx(), overwrite: true }))).toBe(code);
        expect(await codeOf(ex.copy(p, 'c.txt', { txId: tx() }))).toBe(code);
        expect(await codeOf(ex.move('ok.txt', p, { txId: tx(), overwrite: true }))).toBe(code);
        expect(await codeOf(ex.move(p, 'm.txt', { txId: tx() }))).toBe(code);
        expect(await codeOf(ex.delete(p, { txId: tx(), recursive: true }))).toBe(code);
        expect(await snapshot()).toEqual(before);
        expect(await ex.pendingTransactions()).toEqual([]);
      });

      it.each(bad.filter(([p]) => p !== ''))('refuses %j with %s in stat and list', async (p, code) => {
        expect(await codeOf(ex.stat(p))).toBe(code);
        expect(await codeOf(ex.list(p))).toBe(code);
      });
    });
  });
}
