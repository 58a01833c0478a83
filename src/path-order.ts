/**
 * The order of mount paths that the catalog's path index keeps and S3 lists keys in: UTF-8 byte
 * order (Postgres `~<~`, `Buffer.compare` on the UTF-8 bytes). Scans that walk a backend in this
 * order can be merged with the catalog range by range instead of loading either side whole.
 */

/**
 * Compares two strings in the byte order of their UTF-8 encodings, without encoding them.
 * JavaScript's `<` compares UTF-16 code units, which agrees with UTF-8 byte order except between
 * a surrogate (U+D800–U+DFFF, half of a character above U+FFFF) and a character in
 * U+E000–U+FFFF: the code point above U+FFFF is the larger one, its first code unit the smaller.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) return liftSurrogates(x) - liftSurrogates(y);
    return x - y;
  }
  return a.length - b.length;
}

/** For a code unit ≥ U+D800: surrogates moved above U+E000–U+FFFF, order within each kept. */
function liftSurrogates(c: number): number {
  return c >= 0xe000 ? c - 0x800 : c + 0x2000;
}
