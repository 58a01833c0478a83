/** write: sources (inline, stream, host file), parents, overwrite, limits, hashes, abort, idempotency; modes where kept. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { listAll } from '../../../src/executors/executor';
import { type BehaviourContext, codeOf, fileOf, sha256 } from './context';

export function writeBehaviour(c: BehaviourContext): void {
  describe('write', () => {
    it('writes inline content and reports its metadata', async () => {
      const out = await c.ex.write('hello.txt', { kind: 'inline', data: Buffer.from('hello world') }, { txId: c.tx() });
      expect(out).toMatchObject({ op: 'write', removed: [], bytesWritten: 11 });
      expect(out.upserted).toHaveLength(1);
      expect(out.upserted[0]).toMatchObject({ path: 'hello.txt', kind: 'file', size: 11, sha256: sha256('hello world') });
      expect(Number.isNaN(Date.parse(out.upserted[0].mtime))).toBe(false);
      await c.expectFile('hello.txt', 'hello world');
    });

    it('creates missing parents (reported, parents first) unless told not to', async () => {
      const out = await c.ex.write('a/b/c.txt', { kind: 'inline', data: Buffer.from('c') }, { txId: c.tx() });
      expect(out.upserted.map((m) => [m.path, m.kind])).toEqual([
        ['a', 'directory'],
        ['a/b', 'directory'],
        ['a/b/c.txt', 'file'],
      ]);
      expect(await codeOf(c.ex.write('x/y.txt', { kind: 'inline', data: Buffer.from('y') }, { txId: c.tx(), createParents: false }))).toBe('NOT_FOUND');
      expect(await c.ex.stat('x')).toBeNull();
    });

    it('streams a Readable and a host file, reporting progress up to the full size', async () => {
      const big = Buffer.alloc(3 * 1024 * 1024 + 7, 'q');
      const seen: number[] = [];
      const out = await c.ex.write('s.bin', { kind: 'stream', stream: Readable.from([big.subarray(0, 1000), big.subarray(1000)]) }, {
        txId: c.tx(),
        onProgress: (n) => seen.push(n),
      });
      expect(fileOf(out, 's.bin')).toMatchObject({ size: big.length, sha256: sha256(big) });
      expect(seen.at(-1)).toBe(big.length);
      expect([...seen].sort((x, y) => x - y)).toEqual(seen);
      await c.expectFile('s.bin', big);

      const host = path.join(c.hostTmp, 'upload.bin');
      await fs.writeFile(host, 'from a host file');
      const out2 = await c.ex.write('f.bin', { kind: 'file', path: host }, { txId: c.tx(), sourceRoots: [c.hostTmp] });
      expect(fileOf(out2, 'f.bin')).toMatchObject({ size: 16, sha256: sha256('from a host file') });
      await c.expectFile('f.bin', 'from a host file');
    });

    it('writes an empty file', async () => {
      const out = await c.ex.write('empty', { kind: 'inline', data: Buffer.alloc(0) }, { txId: c.tx() });
      expect(fileOf(out, 'empty')).toMatchObject({ size: 0, sha256: sha256('') });
      await c.expectFile('empty', '');
    });

    it('refuses to replace a file without overwrite, and replaces it with overwrite', async () => {
      await c.put('f.txt', 'old');
      expect(await codeOf(c.ex.write('f.txt', { kind: 'inline', data: Buffer.from('new') }, { txId: c.tx() }))).toBe('ALREADY_EXISTS');
      await c.expectFile('f.txt', 'old');
      const out = await c.ex.write('f.txt', { kind: 'inline', data: Buffer.from('newer!') }, { txId: c.tx(), overwrite: true });
      expect(fileOf(out, 'f.txt')).toMatchObject({ size: 6, sha256: sha256('newer!') });
      await c.expectFile('f.txt', 'newer!');
    });

    it('refuses to replace a file written out of band without overwrite', async () => {
      await c.fx.writeRaw('theirs.txt', 'theirs');
      expect(await codeOf(c.ex.write('theirs.txt', { kind: 'inline', data: Buffer.from('mine') }, { txId: c.tx() }))).toBe('ALREADY_EXISTS');
      expect((await c.fx.readRaw('theirs.txt'))?.toString()).toBe('theirs');
    });

    it('refuses a directory target and a file in the way', async () => {
      await c.mkdirs('d');
      await c.put('f', 'x');
      expect(await codeOf(c.ex.write('d', { kind: 'inline', data: Buffer.from('x') }, { txId: c.tx(), overwrite: true }))).toBe('IS_A_DIRECTORY');
      expect(await codeOf(c.ex.write('f/x', { kind: 'inline', data: Buffer.from('x') }, { txId: c.tx() }))).toBe('NOT_A_DIRECTORY');
    });

    it('refuses content over maxBytes, inline or mid-stream, leaving nothing behind', async () => {
      const before = await c.snapshot();
      expect(await codeOf(c.ex.write('n/big', { kind: 'inline', data: Buffer.alloc(11) }, { txId: c.tx(), maxBytes: 10 }))).toBe('PAYLOAD_TOO_LARGE');
      let pulled = 0;
      const endless = Readable.from(
        (function* () {
          for (;;) {
            pulled++;
            yield Buffer.alloc(64 * 1024, 1);
          }
        })(),
      );
      const id = c.tx();
      expect(await codeOf(c.ex.write('n/stream', { kind: 'stream', stream: endless }, { txId: id, maxBytes: 1024 * 1024 }))).toBe('PAYLOAD_TOO_LARGE');
      expect(pulled).toBeLessThan(100);
      await c.ex.undo(id);
      expect(await c.snapshot()).toEqual(before);
    });

    it('checks expectedSha256', async () => {
      expect(
        await codeOf(c.ex.write('n/h.txt', { kind: 'inline', data: Buffer.from('abc') }, { txId: c.tx(), expectedSha256: sha256('abd') })),
      ).toBe('INVALID_REQUEST');
      expect(await c.ex.stat('n/h.txt')).toBeNull();
      const out = await c.ex.write('n/h.txt', { kind: 'inline', data: Buffer.from('abc') }, { txId: c.tx(), expectedSha256: sha256('abc').toUpperCase() });
      expect(fileOf(out, 'n/h.txt')?.sha256).toBe(sha256('abc'));
    });

    it('refuses a missing source file, and any file source without source roots', async () => {
      expect(await codeOf(c.ex.write('x.txt', { kind: 'file', path: path.join(c.hostTmp, 'nope') }, { txId: c.tx(), sourceRoots: [c.hostTmp] }))).toBe('NOT_FOUND');
      const host = path.join(c.hostTmp, 'there.txt');
      await fs.writeFile(host, 'x');
      expect(await codeOf(c.ex.write('x.txt', { kind: 'file', path: host }, { txId: c.tx() }))).toBe('SOURCE_NOT_ALLOWED');
      expect(await c.ex.stat('x.txt')).toBeNull();
    });

    it('stops when its signal aborts, and undo leaves no trace', async () => {
      const ac = new AbortController();
      const stream = new Readable({
        read() {
          this.push(Buffer.alloc(16 * 1024, 2));
          ac.abort();
        },
      });
      const id = c.tx();
      await expect(c.ex.write('dir/aborted.bin', { kind: 'stream', stream }, { txId: id, signal: ac.signal })).rejects.toBeDefined();
      expect(await c.ex.stat('dir/aborted.bin')).toBeNull();
      await c.ex.undo(id);
      expect(await listAll(c.ex, '')).toEqual([]);
    });

    it('is idempotent: a retry with the same txId returns the stored outcome and writes nothing again', async () => {
      const id = c.tx();
      const first = await c.ex.write('w.txt', { kind: 'inline', data: Buffer.from('first') }, { txId: id });
      const again = await c.ex.write('w.txt', { kind: 'inline', data: Buffer.from('second!') }, { txId: id });
      expect(again).toEqual(first);
      await c.expectFile('w.txt', 'first');
    });

    if (c.caps.multipartLimits) {
      const { minPartBytes } = c.caps.multipartLimits;
      it('writes a stream of more than two minimum parts whole', async () => {
        const size = 2 * minPartBytes + 12345;
        const chunk = Buffer.alloc(256 * 1024);
        for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7) & 0xff;
        const whole = Buffer.alloc(size);
        for (let off = 0; off < size; off += chunk.length) chunk.copy(whole, off, 0, Math.min(chunk.length, size - off));
        const out = await c.ex.write('parts.bin', { kind: 'stream', stream: Readable.from([whole.subarray(0, size >> 1), whole.subarray(size >> 1)]) }, { txId: c.tx() });
        expect(fileOf(out, 'parts.bin')).toMatchObject({ size, sha256: sha256(whole) });
        expect(await c.contentSha('parts.bin')).toBe(sha256(whole));
      });
    }
  });

  if (c.caps.posixMode) {
    describe('write: POSIX modes', () => {
      it('applies a mode to a new file and reports it', async () => {
        const out = await c.ex.write('m.sh', { kind: 'inline', data: Buffer.from('#!') }, { txId: c.tx(), mode: 0o604 });
        expect(fileOf(out, 'm.sh')?.mode).toBe(0o604);
        expect((await c.ex.stat('m.sh'))?.mode).toBe(0o604);
      });

      it('keeps an overwritten file’s mode unless a mode is given', async () => {
        await c.put('f', 'old', 0o640);
        const kept = await c.ex.write('f', { kind: 'inline', data: Buffer.from('new') }, { txId: c.tx(), overwrite: true });
        expect(fileOf(kept, 'f')?.mode).toBe(0o640);
        expect((await c.ex.stat('f'))?.mode).toBe(0o640);
        await c.ex.write('f', { kind: 'inline', data: Buffer.from('newer') }, { txId: c.tx(), overwrite: true, mode: 0o600 });
        expect((await c.ex.stat('f'))?.mode).toBe(0o600);
      });

      it('refuses setuid/setgid/sticky bits unless special modes are allowed', async () => {
        expect(await codeOf(c.ex.write('s', { kind: 'inline', data: Buffer.from('x') }, { txId: c.tx(), mode: 0o4755 }))).toBe('INVALID_REQUEST');
        expect(await c.ex.stat('s')).toBeNull();
      });
    });
  }
}
