/** copy: files, catalogued content, overwrite, trees, limits and refusals; modes where kept. */
import { type BehaviourContext, codeOf, fileOf, pathsOf, sha256 } from './context';

export function copyBehaviour(c: BehaviourContext): void {
  describe('copy', () => {
    it('copies a file and hashes it', async () => {
      await c.put('src.txt', 'copy me');
      const out = await c.ex.copy('src.txt', 'sub/dst.txt', { txId: c.tx() });
      expect(out).toMatchObject({ op: 'copy', removed: [], bytesWritten: 7 });
      expect(pathsOf(out.upserted)).toEqual(['sub', 'sub/dst.txt']);
      expect(fileOf(out, 'sub/dst.txt')).toMatchObject({ kind: 'file', size: 7, sha256: sha256('copy me') });
      await c.expectFile('sub/dst.txt', 'copy me');
      await c.expectFile('src.txt', 'copy me');
    });

    it('uses catalogued content when it still matches', async () => {
      const seed = await c.put('k.txt', 'known');
      const live = fileOf(seed, 'k.txt')!;
      const out = await c.ex.copy('k.txt', 'k2.txt', { txId: c.tx(), known: { '': { size: live.size, mtime: live.mtime, sha256: live.sha256! } } });
      expect(fileOf(out, 'k2.txt')).toMatchObject({ size: 5, sha256: sha256('known') });
      await c.expectFile('k2.txt', 'known');
    });

    it('replaces an existing file only with overwrite', async () => {
      await c.put('a', 'AAA');
      await c.put('b', 'B');
      expect(await codeOf(c.ex.copy('a', 'b', { txId: c.tx() }))).toBe('ALREADY_EXISTS');
      await c.expectFile('b', 'B');
      await c.ex.copy('a', 'b', { txId: c.tx(), overwrite: true });
      await c.expectFile('b', 'AAA');
    });

    it('copies a directory tree only when recursive, reporting every node', async () => {
      await c.put('t/one.txt', '1');
      await c.put('t/sub/two.txt', '22');
      await c.mkdirs('t/empty');
      expect(await codeOf(c.ex.copy('t', 'u', { txId: c.tx() }))).toBe('IS_A_DIRECTORY');
      const out = await c.ex.copy('t', 'x/u', { txId: c.tx(), recursive: true });
      expect(pathsOf(out.upserted).sort()).toEqual(['x', 'x/u', 'x/u/empty', 'x/u/one.txt', 'x/u/sub', 'x/u/sub/two.txt']);
      expect(fileOf(out, 'x/u/sub/two.txt')).toMatchObject({ kind: 'file', size: 2, sha256: sha256('22') });
      expect(fileOf(out, 'x/u/empty')).toMatchObject({ kind: 'directory' });
      expect(out.bytesWritten).toBe(3);
      await c.expectFile('x/u/one.txt', '1');
      await c.expectFile('x/u/sub/two.txt', '22');
      expect(await c.ex.stat('x/u/empty')).toMatchObject({ kind: 'directory' });
      expect(await c.ex.stat('t/sub/two.txt')).not.toBeNull();
      expect(await codeOf(c.ex.copy('t', 'x/u', { txId: c.tx(), recursive: true, overwrite: true }))).toBe('ALREADY_EXISTS');
    });

    it('refuses a tree larger than maxEntries, writing nothing', async () => {
      for (let i = 0; i < 5; i++) await c.put(`big/f${i}`, `${i}`);
      const id = c.tx();
      expect(await codeOf(c.ex.copy('big', 'big2', { txId: id, recursive: true, maxEntries: 3 }))).toBe('TREE_TOO_LARGE');
      await c.ex.undo(id);
      expect(await c.ex.stat('big2')).toBeNull();
    });

    it('refuses copying into itself, a missing source, and a file onto a directory', async () => {
      await c.put('d/f', 'x');
      await c.mkdirs('e');
      expect(await codeOf(c.ex.copy('d', 'd/inner', { txId: c.tx(), recursive: true }))).toBe('INVALID_REQUEST');
      expect(await codeOf(c.ex.copy('d/f', 'd/f', { txId: c.tx(), overwrite: true }))).toBe('INVALID_REQUEST');
      expect(await codeOf(c.ex.copy('nope', 'x', { txId: c.tx() }))).toBe('NOT_FOUND');
      expect(await codeOf(c.ex.copy('d/f', 'e', { txId: c.tx(), overwrite: true }))).toBe('IS_A_DIRECTORY');
      expect(await c.ex.stat('x')).toBeNull();
    });
  });

  if (c.caps.posixMode) {
    describe('copy: POSIX modes', () => {
      it('a copy keeps the source mode', async () => {
        await c.put('run.sh', '#!/bin/sh\n', 0o751);
        const out = await c.ex.copy('run.sh', 'copy.sh', { txId: c.tx() });
        expect(fileOf(out, 'copy.sh')?.mode).toBe(0o751);
        expect((await c.ex.stat('copy.sh'))?.mode).toBe(0o751);
      });
    });
  }
}
