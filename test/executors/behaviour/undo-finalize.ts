/** Transactions: same txId → same outcome, undo restores the exact prior state, finalize drops staging. */
import { type MutationOutcome, listAll } from '../../../src/executors/executor';
import { type BehaviourContext, codeOf, pathsOf } from './context';

export function undoFinalizeBehaviour(c: BehaviourContext): void {
  describe('idempotency (same txId → same state, same outcome)', () => {
    it('mkdir, copy, move and delete: the second run is a no-op with the same outcome', async () => {
      await c.put('src.txt', 'S');
      const ids = [c.tx(), c.tx(), c.tx(), c.tx()];
      const runs: Array<() => Promise<MutationOutcome>> = [
        () => c.ex.mkdir('m/n', { txId: ids[0] }),
        () => c.ex.copy('src.txt', 'm/copy.txt', { txId: ids[1] }),
        () => c.ex.move('m/copy.txt', 'moved.txt', { txId: ids[2] }),
        () => c.ex.delete('src.txt', { txId: ids[3] }),
      ];
      for (const run of runs) {
        const first = await run();
        const state = await c.snapshot();
        expect(await run()).toEqual(first);
        expect(await c.snapshot()).toEqual(state);
      }
      expect(pathsOf(await listAll(c.ex, '', { recursive: true }))).toEqual(['m', 'm/n', 'moved.txt']);
    });

    it('refuses reusing a txId for another op or other paths', async () => {
      const id = c.tx();
      await c.ex.write('a.txt', { kind: 'inline', data: Buffer.from('a') }, { txId: id });
      expect(await codeOf(c.ex.write('b.txt', { kind: 'inline', data: Buffer.from('a') }, { txId: id }))).toBe('INVALID_REQUEST');
      expect(await codeOf(c.ex.delete('a.txt', { txId: id }))).toBe('INVALID_REQUEST');
      expect(await c.ex.stat('b.txt')).toBeNull();
      await c.expectFile('a.txt', 'a');
    });
  });

  describe('undo', () => {
    // Where the backend keeps modes, the overwrite scenario also proves the old mode comes back.
    const modes = c.caps.posixMode ? { old: 0o640, new: 0o600 } : { old: undefined, new: undefined };
    type Scenario = [string, () => Promise<void>, () => Promise<MutationOutcome>];
    const scenarios: Scenario[] = [
      ['write of a new file with new parents', async () => {}, () => c.ex.write('n1/n2/f.txt', { kind: 'inline', data: Buffer.from('new') }, { txId: 'u' })],
      [
        c.caps.posixMode ? 'write over an existing file (old bytes and mode come back)' : 'write over an existing file (old bytes come back)',
        async () => void (await c.put('f.txt', 'old bytes', modes.old)),
        () => c.ex.write('f.txt', { kind: 'inline', data: Buffer.from('new bytes, longer') }, { txId: 'u', overwrite: true, mode: modes.new }),
      ],
      ['mkdir with parents', async () => c.mkdirs('keep'), () => c.ex.mkdir('keep/a/b', { txId: 'u' })],
      ['copy of a file', async () => void (await c.put('s.txt', 'S')), () => c.ex.copy('s.txt', 'c/s.txt', { txId: 'u' })],
      [
        'copy over an existing file',
        async () => {
          await c.put('s.txt', 'S');
          await c.put('d.txt', 'D old');
        },
        () => c.ex.copy('s.txt', 'd.txt', { txId: 'u', overwrite: true }),
      ],
      [
        'copy of a tree',
        async () => {
          await c.put('t/a', 'a');
          await c.put('t/s/b', 'b');
        },
        () => c.ex.copy('t', 'deep/t2', { txId: 'u', recursive: true }),
      ],
      ['move of a file', async () => void (await c.put('m.txt', 'M')), () => c.ex.move('m.txt', 'x/y/m.txt', { txId: 'u' })],
      [
        'move over an existing file',
        async () => {
          await c.put('m.txt', 'M');
          await c.put('o.txt', 'O old');
        },
        () => c.ex.move('m.txt', 'o.txt', { txId: 'u', overwrite: true }),
      ],
      [
        'move of a tree',
        async () => {
          await c.put('t/a', 'a');
          await c.put('t/s/b', 'b');
        },
        () => c.ex.move('t', 'new/t', { txId: 'u' }),
      ],
      ['delete of a file', async () => void (await c.put('gone.txt', 'G')), () => c.ex.delete('gone.txt', { txId: 'u' })],
      [
        'delete of a tree',
        async () => {
          await c.put('tree/a.txt', 'A');
          await c.put('tree/s/b.txt', 'BB');
          await c.mkdirs('tree/empty');
        },
        () => c.ex.delete('tree', { txId: 'u', recursive: true }),
      ],
    ];

    it.each(scenarios)('restores the exact prior state after %s; a second undo is harmless and answers the same', async (_label, seed, run) => {
      await seed();
      const before = await c.snapshot();
      await run();
      expect(await c.snapshot()).not.toEqual(before);
      expect(await c.ex.undo('u')).toEqual({ undone: true });
      expect(await c.snapshot()).toEqual(before);
      expect(await c.ex.pendingTransactions()).not.toContain('u');
      // Idempotent: a retried undo (its first reply lost) answers the same and changes nothing.
      expect(await c.ex.undo('u')).toEqual({ undone: true });
      expect(await c.snapshot()).toEqual(before);
    });

    it('reports undone:false for an unknown transaction and for one that changed nothing', async () => {
      expect(await c.ex.undo(c.tx())).toEqual({ undone: false });
      await c.mkdirs('d');
      const id = c.tx();
      await c.ex.mkdir('d', { txId: id });
      expect(await c.ex.undo(id)).toEqual({ undone: false });
      expect(await c.ex.stat('d')).toMatchObject({ kind: 'directory' });
    });
  });

  describe('finalize', () => {
    it('drops staging and backups; afterwards undo changes nothing', async () => {
      await c.put('f.txt', 'old');
      const id = c.tx();
      await c.ex.write('f.txt', { kind: 'inline', data: Buffer.from('new') }, { txId: id, overwrite: true });
      expect(await c.ex.pendingTransactions()).toEqual([id]);
      await c.ex.finalize(id);
      await c.ex.finalize(id);
      expect(await c.ex.pendingTransactions()).toEqual([]);
      expect(await c.ex.undo(id)).toEqual({ undone: false });
      await c.expectFile('f.txt', 'new');
    });

    it('is idempotent for unknown transactions', async () => {
      await c.ex.finalize(c.tx());
      expect(await c.ex.pendingTransactions()).toEqual([]);
    });
  });
}
