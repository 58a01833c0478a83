/** stat and list: metadata without content, listings in backend order (compared sorted), paging. */
import { type NodeMeta, listAll } from '../../../src/executors/executor';
import { type BehaviourContext, codeOf, pathsOf, sha256 } from './context';

export function statListBehaviour(c: BehaviourContext): void {
  describe('stat', () => {
    it('stats files and directories without reading content, and returns null for nothing', async () => {
      await c.put('docs/a.txt', 'hello');
      expect(await c.ex.stat('missing')).toBeNull();
      expect(await c.ex.stat('docs/missing/deeper')).toBeNull();
      const file = await c.ex.stat('docs/a.txt');
      expect(file).toMatchObject({ path: 'docs/a.txt', kind: 'file', size: 5 });
      // A hash the backend stores with the object (S3: x-amz-meta-sha256) or none; never a wrong one.
      expect(file!.sha256 === null || file!.sha256 === sha256('hello')).toBe(true);
      expect(Number.isNaN(Date.parse(file!.mtime))).toBe(false);
      expect(await c.ex.stat('docs')).toMatchObject({ path: 'docs', kind: 'directory', sha256: null });
      expect(await c.ex.stat('')).toMatchObject({ path: '', kind: 'directory' });
      expect(await c.ex.stat('./docs//a.txt')).toMatchObject({ path: 'docs/a.txt' });
    });

    it('sees a file written out of band', async () => {
      await c.fx.writeRaw('oob/x.bin', 'out of band');
      const oob = await c.ex.stat('oob/x.bin');
      expect(oob).toMatchObject({ path: 'oob/x.bin', kind: 'file', size: 11 });
      expect(oob!.sha256 === null || oob!.sha256 === sha256('out of band')).toBe(true);
      expect(await c.ex.stat('oob')).toMatchObject({ kind: 'directory' });
      expect(await c.ex.checksum('oob/x.bin')).toBe(await c.contentSha('oob/x.bin'));
    });
  });

  describe('list', () => {
    it('lists the children, the whole subtree when recursive (compared sorted: order is the backend’s)', async () => {
      await c.put('b.txt', 'b');
      await c.put('a/x.txt', 'x');
      await c.put('a-c.txt', 'ac');
      await c.put('a/y/z.txt', 'z');
      expect(pathsOf(await listAll(c.ex, ''))).toEqual(['a', 'a-c.txt', 'b.txt']);
      expect(pathsOf(await listAll(c.ex, '', { recursive: true }))).toEqual(['a', 'a-c.txt', 'a/x.txt', 'a/y', 'a/y/z.txt', 'b.txt']);
      expect(pathsOf(await listAll(c.ex, 'a'))).toEqual(['a/x.txt', 'a/y']);
      const all = await listAll(c.ex, 'a', { recursive: true });
      expect(all.find((m) => m.path === 'a/y/z.txt')).toMatchObject({ kind: 'file', size: 1 });
      expect(all.find((m) => m.path === 'a/y')).toMatchObject({ kind: 'directory' });
    });

    it('honours limit: that many entries of the full listing, no more', async () => {
      for (const p of ['b.txt', 'a/x.txt', 'a-c.txt', 'a/y/z.txt']) await c.put(p, p);
      const full = pathsOf(await listAll(c.ex, '', { recursive: true }));
      const limited = pathsOf(await listAll(c.ex, '', { recursive: true, limit: 2 }));
      expect(limited).toHaveLength(2);
      expect(full).toEqual(expect.arrayContaining(limited));
      expect(await listAll(c.ex, '', { limit: 0 })).toEqual([]);
      expect(pathsOf(await listAll(c.ex, '', { limit: 100 }))).toEqual(['a', 'a-c.txt', 'b.txt']);
    });

    it('pages: pageSize 2 over 5 entries yields all 5, each once; limit still honoured', async () => {
      const names = ['p/1', 'p/2', 'p/3', 'p/4', 'p/5'];
      for (const n of names) await c.put(n, n);
      const seen: string[] = [];
      for await (const m of c.ex.list('p', { pageSize: 2 })) seen.push(m.path);
      expect(seen.sort()).toEqual(names);
      expect(pathsOf(await listAll(c.ex, '', { recursive: true, pageSize: 2 }))).toEqual(['p', ...names]);
      const limited = pathsOf(await listAll(c.ex, 'p', { pageSize: 2, limit: 3 }));
      expect(limited).toHaveLength(3);
      expect(names).toEqual(expect.arrayContaining(limited));
      expect(await listAll(c.ex, 'p', { pageSize: 1, limit: 1 })).toHaveLength(1);
    });

    it('is lazy: a consumer that stops early ends the listing cleanly', async () => {
      for (let i = 0; i < 5; i++) await c.put(`l/${i}`, `${i}`);
      let first: NodeMeta | null = null;
      for await (const m of c.ex.list('l', { pageSize: 2 })) {
        first = m;
        break;
      }
      expect(first?.path).toMatch(/^l\/\d$/);
      // The executor is still usable after an abandoned iteration.
      expect(await listAll(c.ex, 'l')).toHaveLength(5);
    });

    it('shows entries written out of band', async () => {
      await c.put('mine.txt', 'm');
      await c.fx.writeRaw('theirs/t.txt', 'theirs');
      expect(pathsOf(await listAll(c.ex, '', { recursive: true }))).toEqual(['mine.txt', 'theirs', 'theirs/t.txt']);
      expect((await listAll(c.ex, 'theirs'))[0]).toMatchObject({ path: 'theirs/t.txt', kind: 'file', size: 6 });
    });

    it('never shows staging, also while a transaction is pending', async () => {
      await c.put('f.txt', 'old');
      const id = c.tx();
      // An overwrite keeps the old bytes in staging until finalize, on every backend.
      await c.ex.write('f.txt', { kind: 'inline', data: Buffer.from('new') }, { txId: id, overwrite: true });
      expect(await c.ex.pendingTransactions()).toContain(id);
      expect(pathsOf(await listAll(c.ex, '', { recursive: true }))).toEqual(['f.txt']);
      expect(pathsOf(await listAll(c.ex, '', { recursive: true, pageSize: 1 }))).toEqual(['f.txt']);
      await c.ex.finalize(id);
      expect(pathsOf(await listAll(c.ex, '', { recursive: true }))).toEqual(['f.txt']);
    });

    it('refuses to list a file or a missing directory, and a bad limit', async () => {
      await c.put('f.txt', 'x');
      expect(await codeOf(listAll(c.ex, 'f.txt'))).toBe('NOT_A_DIRECTORY');
      expect(await codeOf(listAll(c.ex, 'nope'))).toBe('NOT_FOUND');
      expect(await codeOf(listAll(c.ex, '', { limit: -1 }))).toBe('INVALID_REQUEST');
    });
  });

  if (c.caps.directories) {
    describe('real directories', () => {
      it('a directory stays when its last file goes (no marker holds it)', async () => {
        await c.put('d/only.txt', 'x');
        const id = c.tx();
        await c.ex.delete('d/only.txt', { txId: id });
        await c.ex.finalize(id);
        expect(await c.ex.stat('d')).toMatchObject({ kind: 'directory' });
        expect(pathsOf(await listAll(c.ex, '', { recursive: true }))).toEqual(['d']);
        expect(await listAll(c.ex, 'd')).toEqual([]);
      });
    });
  }
}
