/** move: files, trees, overwrite, refusals. */
import { listAll } from '../../../src/executors/executor';
import { type BehaviourContext, codeOf, fileOf, pathsOf } from './context';

export function moveBehaviour(c: BehaviourContext): void {
  describe('move', () => {
    it('moves a file', async () => {
      await c.put('from.txt', 'moving');
      const out = await c.ex.move('from.txt', 'to/here.txt', { txId: c.tx() });
      expect(out).toMatchObject({ op: 'move', moved: { from: 'from.txt', to: 'to/here.txt' }, removed: ['from.txt'] });
      expect(pathsOf(out.upserted)).toEqual(['to', 'to/here.txt']);
      expect(fileOf(out, 'to/here.txt')).toMatchObject({ kind: 'file', size: 6 });
      expect(await c.ex.stat('from.txt')).toBeNull();
      await c.expectFile('to/here.txt', 'moving');
    });

    it('moves a directory with its subtree', async () => {
      await c.put('d/a.txt', 'a');
      await c.put('d/s/b.txt', 'b');
      const out = await c.ex.move('d', 'e', { txId: c.tx() });
      expect(fileOf(out, 'e')).toMatchObject({ kind: 'directory' });
      expect(await c.ex.stat('d')).toBeNull();
      expect(pathsOf(await listAll(c.ex, 'e', { recursive: true }))).toEqual(['e/a.txt', 'e/s', 'e/s/b.txt']);
      await c.expectFile('e/s/b.txt', 'b');
    });

    it('replaces a file only with overwrite, never a directory', async () => {
      await c.put('a', 'A');
      await c.put('b', 'B');
      await c.mkdirs('dir');
      expect(await codeOf(c.ex.move('a', 'b', { txId: c.tx() }))).toBe('ALREADY_EXISTS');
      expect(await codeOf(c.ex.move('a', 'dir', { txId: c.tx(), overwrite: true }))).toBe('ALREADY_EXISTS');
      const out = await c.ex.move('a', 'b', { txId: c.tx(), overwrite: true });
      expect(out.removed).toEqual(['a']);
      expect(await c.ex.stat('a')).toBeNull();
      await c.expectFile('b', 'A');
    });

    it('refuses moving into itself and a missing source', async () => {
      await c.put('d/f', 'x');
      expect(await codeOf(c.ex.move('d', 'd/sub/d', { txId: c.tx() }))).toBe('INVALID_REQUEST');
      expect(await codeOf(c.ex.move('d', 'd', { txId: c.tx() }))).toBe('INVALID_REQUEST');
      expect(await codeOf(c.ex.move('nope', 'x', { txId: c.tx() }))).toBe('NOT_FOUND');
      await c.expectFile('d/f', 'x');
    });
  });

  if (c.caps.posixMode) {
    describe('move: POSIX modes', () => {
      it('a moved file keeps its mode', async () => {
        await c.put('m.sh', '#!', 0o750);
        const out = await c.ex.move('m.sh', 'bin/m.sh', { txId: c.tx() });
        expect(fileOf(out, 'bin/m.sh')?.mode).toBe(0o750);
        expect((await c.ex.stat('bin/m.sh'))?.mode).toBe(0o750);
      });
    });
  }
}
