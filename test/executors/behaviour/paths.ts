/** Bad paths: refused with their typed error by every call, nothing written; key length where the backend has a limit. */
import { listAll } from '../../../src/executors/executor';
import { type BehaviourContext, codeOf } from './context';

export function pathsBehaviour(c: BehaviourContext): void {
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
      await c.put('ok.txt', 'ok');
      const before = await c.snapshot();
      const data = { kind: 'inline' as const, data: Buffer.from('x') };
      expect(await codeOf(c.ex.write(p, data, { txId: c.tx(), overwrite: true }))).toBe(code);
      expect(await codeOf(c.ex.mkdir(p, { txId: c.tx() }))).toBe(code);
      expect(await codeOf(c.ex.copy('ok.txt', p, { txId: c.tx(), overwrite: true }))).toBe(code);
      expect(await codeOf(c.ex.copy(p, 'c.txt', { txId: c.tx() }))).toBe(code);
      expect(await codeOf(c.ex.move('ok.txt', p, { txId: c.tx(), overwrite: true }))).toBe(code);
      expect(await codeOf(c.ex.move(p, 'm.txt', { txId: c.tx() }))).toBe(code);
      expect(await codeOf(c.ex.delete(p, { txId: c.tx(), recursive: true }))).toBe(code);
      expect(await c.snapshot()).toEqual(before);
      expect(await c.ex.pendingTransactions()).toEqual([]);
    });

    it.each(bad.filter(([p]) => p !== ''))('refuses %j with %s in stat, list, openRead and checksum', async (p, code) => {
      expect(await codeOf(c.ex.stat(p))).toBe(code);
      expect(await codeOf(listAll(c.ex, p))).toBe(code);
      expect(await codeOf(c.ex.openRead(p))).toBe(code);
      expect(await codeOf(c.ex.checksum(p))).toBe(code);
    });
  });

  const maxKeyBytes = c.caps.maxKeyBytes;
  if (maxKeyBytes !== null) {
    describe('key length', () => {
      // Segments of 100 bytes: only the whole key is over the limit, never one name.
      const tooLong = Array.from({ length: Math.ceil((maxKeyBytes + 1) / 101) + 1 }, (_, i) => `${i}`.padEnd(100, 'k')).join('/');

      it(`refuses a path whose key is over ${maxKeyBytes} bytes with KEY_TOO_LONG, writing nothing`, async () => {
        await c.put('ok.txt', 'ok');
        const before = await c.snapshot();
        const data = { kind: 'inline' as const, data: Buffer.from('x') };
        expect(await codeOf(c.ex.write(tooLong, data, { txId: c.tx() }))).toBe('KEY_TOO_LONG');
        expect(await codeOf(c.ex.mkdir(tooLong, { txId: c.tx() }))).toBe('KEY_TOO_LONG');
        expect(await codeOf(c.ex.copy('ok.txt', tooLong, { txId: c.tx() }))).toBe('KEY_TOO_LONG');
        expect(await codeOf(c.ex.move('ok.txt', tooLong, { txId: c.tx() }))).toBe('KEY_TOO_LONG');
        expect(await c.snapshot()).toEqual(before);
        expect(await c.ex.pendingTransactions()).toEqual([]);
      });

      it('accepts a multibyte path that fits', async () => {
        const fits = `${'é'.repeat(100)}/f.txt`;
        await c.put(fits, 'fits');
        await c.expectFile(fits, 'fits');
      });
    });
  }
}
