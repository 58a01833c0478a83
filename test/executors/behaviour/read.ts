/** openRead: whole files and byte ranges, what it refuses, and (where links exist) never out of the mount. */
import { type BehaviourContext, codeOf, readAll, sha256 } from './context';

export function readBehaviour(c: BehaviourContext): void {
  describe('openRead', () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 11);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 12)) & 0xff;

    it('reads a whole file, an empty one, and one written out of band', async () => {
      await c.put('r/hello.txt', 'hello world');
      expect((await readAll(await c.ex.openRead('r/hello.txt'))).toString()).toBe('hello world');
      await c.put('r/empty', '');
      expect((await readAll(await c.ex.openRead('r/empty'))).length).toBe(0);
      await c.fx.writeRaw('r/oob.bin', big);
      expect(sha256(await readAll(await c.ex.openRead('r/oob.bin')))).toBe(sha256(big));
      expect(sha256(await readAll(await c.ex.openRead('./r//oob.bin')))).toBe(sha256(big));
    });

    it('reads byte ranges, end inclusive, as HTTP Range does', async () => {
      await c.put('range.txt', '0123456789');
      const read = async (range: { start: number; end?: number }) => (await readAll(await c.ex.openRead('range.txt', { range }))).toString();
      expect(await read({ start: 2, end: 5 })).toBe('2345');
      expect(await read({ start: 0, end: 0 })).toBe('0');
      expect(await read({ start: 7 })).toBe('789');
      expect(await read({ start: 9, end: 9 })).toBe('9');
      expect(await read({ start: 0 })).toBe('0123456789');
      // An end past the last byte stops at the last byte.
      expect(await read({ start: 8, end: 1000 })).toBe('89');
    });

    it('reads a range across chunk boundaries of a large file', async () => {
      await c.fx.writeRaw('big.bin', big);
      const start = 1024 * 1024 - 3;
      const end = 2 * 1024 * 1024 + 5;
      const got = await readAll(await c.ex.openRead('big.bin', { range: { start, end } }));
      expect(got.length).toBe(end - start + 1);
      expect(sha256(got)).toBe(sha256(big.subarray(start, end + 1)));
    });

    it('refuses an invalid range with INVALID_REQUEST', async () => {
      await c.put('f.txt', '0123456789');
      expect(await codeOf(c.ex.openRead('f.txt', { range: { start: -1 } }))).toBe('INVALID_REQUEST');
      expect(await codeOf(c.ex.openRead('f.txt', { range: { start: 5, end: 4 } }))).toBe('INVALID_REQUEST');
      expect(await codeOf(c.ex.openRead('f.txt', { range: { start: 1.5 } }))).toBe('INVALID_REQUEST');
    });

    it('refuses a missing file with NOT_FOUND', async () => {
      expect(await codeOf(c.ex.openRead('nope.txt'))).toBe('NOT_FOUND');
      expect(await codeOf(c.ex.openRead('no/such/dir/f.txt'))).toBe('NOT_FOUND');
      await c.put('gone.txt', 'x');
      const id = c.tx();
      await c.ex.delete('gone.txt', { txId: id });
      expect(await codeOf(c.ex.openRead('gone.txt'))).toBe('NOT_FOUND');
    });

    it('refuses a directory with IS_A_DIRECTORY, made by mkdir or implied by a file below it', async () => {
      await c.mkdirs('made');
      await c.put('implied/f.txt', 'x');
      expect(await codeOf(c.ex.openRead('made'))).toBe('IS_A_DIRECTORY');
      expect(await codeOf(c.ex.openRead('implied'))).toBe('IS_A_DIRECTORY');
    });

    it('never reads staging: a pending overwrite shows the new bytes, and the backup is unreachable', async () => {
      await c.put('s.txt', 'old bytes');
      const id = c.tx();
      await c.ex.write('s.txt', { kind: 'inline', data: Buffer.from('new bytes') }, { txId: id, overwrite: true });
      expect((await readAll(await c.ex.openRead('s.txt'))).toString()).toBe('new bytes');
      expect(await codeOf(c.ex.openRead(`.filestore-staging/${id}/backup`))).toBe('RESERVED_PATH');
    });

    if (c.caps.atomicRename) {
      it('a read opened before an overwrite reads the old content whole (atomic rename)', async () => {
        await c.put('swap.bin', big);
        const reading = await c.ex.openRead('swap.bin');
        await c.put('swap.bin', 'replaced');
        expect(sha256(await readAll(reading))).toBe(sha256(big));
        expect((await readAll(await c.ex.openRead('swap.bin'))).toString()).toBe('replaced');
      });
    }

    if (c.setup.symlinks) {
      it('never reads through a symlink that leads out of the mount', async () => {
        await c.fx.linkOutside!('escape', 'secret outside the mount');
        await c.fx.linkOutside!('sub/escape', 'secret outside the mount');
        for (const p of ['escape', 'sub/escape']) {
          const code = await codeOf(c.ex.openRead(p).then(readAll));
          expect(code).toBe('SYMLINK_ESCAPE');
        }
      });
    }
  });
}
