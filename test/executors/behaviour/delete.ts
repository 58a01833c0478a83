/** delete: files, empty and non-empty directories, refusals. */
import { listAll } from '../../../src/executors/executor';
import { type BehaviourContext, codeOf } from './context';

export function deleteBehaviour(c: BehaviourContext): void {
  describe('delete', () => {
    it('deletes a file and an empty directory', async () => {
      await c.put('f.txt', 'x');
      await c.mkdirs('empty');
      const out = await c.ex.delete('f.txt', { txId: c.tx() });
      expect(out).toMatchObject({ op: 'delete', removed: ['f.txt'], upserted: [], bytesWritten: 0 });
      expect(await c.ex.stat('f.txt')).toBeNull();
      await c.ex.delete('empty', { txId: c.tx() });
      expect(await listAll(c.ex, '')).toEqual([]);
    });

    it('deletes a non-empty directory only when recursive', async () => {
      await c.put('t/a/b.txt', 'b');
      expect(await codeOf(c.ex.delete('t', { txId: c.tx() }))).toBe('DIRECTORY_NOT_EMPTY');
      await c.expectFile('t/a/b.txt', 'b');
      const out = await c.ex.delete('t', { txId: c.tx(), recursive: true });
      expect(out.removed).toEqual(['t']);
      expect(await c.ex.stat('t')).toBeNull();
      expect(await listAll(c.ex, '')).toEqual([]);
    });

    it('deletes a file written out of band', async () => {
      await c.fx.writeRaw('theirs.txt', 'theirs');
      const out = await c.ex.delete('theirs.txt', { txId: c.tx() });
      expect(out.removed).toEqual(['theirs.txt']);
      expect(await c.ex.stat('theirs.txt')).toBeNull();
    });

    it('refuses a missing path', async () => {
      expect(await codeOf(c.ex.delete('nope', { txId: c.tx() }))).toBe('NOT_FOUND');
    });
  });
}
