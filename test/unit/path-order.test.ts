import { compareUtf8 } from '../../src/path-order';

const bytes = (a: string, b: string) => Math.sign(Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));

test('compareUtf8 agrees with Buffer.compare on the UTF-8 bytes, where UTF-16 order does not', () => {
  const names = ['', 'a', 'a/b', 'a-b', 'a.b', 'a0', 'a!', 'ab', 'é', 'z', '\ue000', '\uffff', '😀', '😀a', '𝄞', 'a\u00a0', 'A', '~', '\u007f', 'a/', 'a/b/c'];
  for (const a of names) {
    for (const b of names) expect([a, b, Math.sign(compareUtf8(a, b))]).toEqual([a, b, bytes(a, b)]);
  }
  // The case JavaScript's own order gets wrong: U+FFFF (EF BF BF) sorts before U+1F600 (F0 9F 98 80).
  expect('\uffff' > '😀').toBe(true);
  expect(compareUtf8('\uffff', '😀')).toBeLessThan(0);
});
