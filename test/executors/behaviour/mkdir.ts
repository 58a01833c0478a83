/** mkdir: parents, existing directories, files in the way. */
import { listAll } from '../../../src/executors/executor';
import { type BehaviourContext, codeOf, pathsOf } from './context';

export function mkdirBehaviour(c: BehaviourContext): void {
  describe('mkdir', () => {
    it('creates missing parents and reports every created directory', async () => {
      const out = await c.ex.mkdir('p/q/r', { txId: c.tx() });
      expect(out).toMatchObject({ op: 'mkdir', removed: [], bytesWritten: 0 });
      expect(pathsOf(out.upserted)).toEqual(['p', 'p/q', 'p/q/r']);
      expect(out.upserted.every((m) => m.kind === 'directory' && m.sha256 === null)).toBe(true);
      expect(await c.ex.stat('p/q/r')).toMatchObject({ kind: 'directory' });
      expect(pathsOf(await listAll(c.ex, '', { recursive: true }))).toEqual(['p', 'p/q', 'p/q/r']);
    });

    it('accepts an existing directory with parents, refuses it without', async () => {
      await c.mkdirs('d');
      const out = await c.ex.mkdir('d', { txId: c.tx() });
      expect(pathsOf(out.upserted)).toEqual(['d']);
      expect(await codeOf(c.ex.mkdir('d', { txId: c.tx(), parents: false }))).toBe('ALREADY_EXISTS');
    });

    it('an empty directory it made survives and lists as empty', async () => {
      await c.mkdirs('keep/empty');
      expect(await c.ex.stat('keep/empty')).toMatchObject({ kind: 'directory' });
      expect(await listAll(c.ex, 'keep/empty')).toEqual([]);
      expect(pathsOf(await listAll(c.ex, 'keep'))).toEqual(['keep/empty']);
    });

    it('without parents refuses a missing parent and creates nothing', async () => {
      expect(await codeOf(c.ex.mkdir('a/b', { txId: c.tx(), parents: false }))).toBe('NOT_FOUND');
      expect(await listAll(c.ex, '')).toEqual([]);
      const out = await c.ex.mkdir('a', { txId: c.tx(), parents: false });
      expect(pathsOf(out.upserted)).toEqual(['a']);
    });

    it('refuses a file at the path or in the way', async () => {
      await c.put('f', 'x');
      expect(await codeOf(c.ex.mkdir('f', { txId: c.tx() }))).toBe('ALREADY_EXISTS');
      expect(await codeOf(c.ex.mkdir('f/sub', { txId: c.tx() }))).toBe('NOT_A_DIRECTORY');
      await c.expectFile('f', 'x');
    });
  });
}
