import {
  MAX_PATH_BYTES,
  MAX_SEGMENT_BYTES,
  MOUNT_MARKER,
  STAGING_DIR,
  ancestorsOf,
  baseName,
  isStrictlyInside,
  joinPath,
  normalizeMountPath,
  parentPath,
  pathsOverlap,
} from '../../src/paths';
import { codeOf } from '../helpers/error-code';


describe('normalizeMountPath', () => {
  it.each([
    ['a', 'a'],
    ['a/b/c', 'a/b/c'],
    ['a//b', 'a/b'],
    ['./a/./b/', 'a/b'],
    ['a/b/', 'a/b'],
    ['dir with spaces/ünïcødé.txt', 'dir with spaces/ünïcødé.txt'],
    ['.hidden/..dots/x..', '.hidden/..dots/x..'],
    [`${STAGING_DIR}x/file`, `${STAGING_DIR}x/file`],
    [`a/${STAGING_DIR}`, `a/${STAGING_DIR}`],
    [`a/${MOUNT_MARKER}`, `a/${MOUNT_MARKER}`],
    [`${MOUNT_MARKER}x`, `${MOUNT_MARKER}x`],
  ])('normalises %j to %j', (input, expected) => {
    expect(normalizeMountPath(input)).toBe(expected);
  });

  it.each([
    ['a/../b', 'PATH_TRAVERSAL'],
    ['..', 'PATH_TRAVERSAL'],
    ['a/b/..', 'PATH_TRAVERSAL'],
    ['/etc/passwd', 'ABSOLUTE_PATH'],
    ['\\server\\share', 'ABSOLUTE_PATH'],
    ['C:\\Windows', 'ABSOLUTE_PATH'],
    ['c:/Windows', 'ABSOLUTE_PATH'],
    ['a\0b', 'NUL_BYTE'],
    ['\0', 'NUL_BYTE'],
    [STAGING_DIR, 'RESERVED_PATH'],
    [`${STAGING_DIR}/tx/plan.json`, 'RESERVED_PATH'],
    [`./${STAGING_DIR}/x`, 'RESERVED_PATH'],
    [MOUNT_MARKER, 'RESERVED_PATH'],
    [`./${MOUNT_MARKER}`, 'RESERVED_PATH'],
    [`${MOUNT_MARKER}.1a2b.tmp`, 'RESERVED_PATH'],
    [`${MOUNT_MARKER}/x`, 'RESERVED_PATH'],
    ['', 'INVALID_PATH'],
    ['.', 'INVALID_PATH'],
    ['//', 'ABSOLUTE_PATH'],
    ['./', 'INVALID_PATH'],
  ])('refuses %j with %s', (input, code) => {
    expect(codeOf(() => normalizeMountPath(input))).toBe(code);
  });

  it.each([[undefined], [null], [42], [{}], [['a']]])('refuses the non-string %j with INVALID_PATH', (input) => {
    expect(codeOf(() => normalizeMountPath(input))).toBe('INVALID_PATH');
  });

  it('allows the root only when asked', () => {
    expect(normalizeMountPath('', { allowRoot: true })).toBe('');
    expect(normalizeMountPath('./', { allowRoot: true })).toBe('');
    expect(codeOf(() => normalizeMountPath('', { allowRoot: false }))).toBe('INVALID_PATH');
  });

  it('refuses over-long segments and paths by byte length, not characters', () => {
    expect(normalizeMountPath('x'.repeat(MAX_SEGMENT_BYTES))).toHaveLength(MAX_SEGMENT_BYTES);
    expect(codeOf(() => normalizeMountPath('x'.repeat(MAX_SEGMENT_BYTES + 1)))).toBe('INVALID_PATH');
    // 128 two-byte characters = 256 bytes > 255 although only 128 characters.
    expect(codeOf(() => normalizeMountPath('é'.repeat(128)))).toBe('INVALID_PATH');
    const longPath = Array.from({ length: Math.ceil(MAX_PATH_BYTES / 100) + 1 }, () => 'y'.repeat(99)).join('/');
    expect(Buffer.byteLength(longPath)).toBeGreaterThan(MAX_PATH_BYTES);
    expect(codeOf(() => normalizeMountPath(longPath))).toBe('INVALID_PATH');
  });

  it('checks NUL bytes before anything else, so the message never carries a raw NUL', () => {
    try {
      normalizeMountPath('/abs/../\0');
      throw new Error('expected a refusal');
    } catch (err) {
      expect((err as { code: string }).code).toBe('NUL_BYTE');
      expect((err as Error).message).not.toContain('\0');
    }
  });

  it('gives every refusal a name that matches its class, for Temporal failure types', () => {
    try {
      normalizeMountPath('../x');
    } catch (err) {
      expect((err as Error).name).toBe('PathTraversalError');
      expect((err as { retryable: boolean }).retryable).toBe(false);
    }
    expect.assertions(2);
  });
});

describe('parentPath / baseName / joinPath', () => {
  it.each([
    ['a/b/c', 'a/b', 'c'],
    ['a', '', 'a'],
    ['', '', ''],
  ])('splits %j into %j and %j', (p, parent, base) => {
    expect(parentPath(p)).toBe(parent);
    expect(baseName(p)).toBe(base);
  });

  it('joins while skipping empty parts', () => {
    expect(joinPath('', 'a')).toBe('a');
    expect(joinPath('a', '', 'b/c')).toBe('a/b/c');
    expect(joinPath('', '')).toBe('');
    expect(joinPath(parentPath('x/y'), baseName('x/y'))).toBe('x/y');
  });
});

describe('ancestorsOf', () => {
  it('lists proper ancestors, nearest last, root excluded', () => {
    expect(ancestorsOf('a/b/c')).toEqual(['a', 'a/b']);
    expect(ancestorsOf('a')).toEqual([]);
  });
});

describe('pathsOverlap', () => {
  it.each([
    ['a', 'a', true],
    ['a', 'a/b', true],
    ['a/b', 'a', true],
    ['', 'anything', true],
    ['x', '', true],
    ['a', 'b', false],
    ['a', 'ab', false],
    ['a/b', 'a/bc', false],
    ['a/b', 'a/c/b', false],
  ])('%j and %j overlap: %s', (a, b, expected) => {
    expect(pathsOverlap(a, b)).toBe(expected);
  });
});

describe('isStrictlyInside', () => {
  it.each([
    ['a/b', 'a', true],
    ['a/b/c', 'a', true],
    ['a', 'a', false],
    ['ab', 'a', false],
    ['a', 'a/b', false],
    ['a', '', true],
    ['', '', false],
  ])('%j strictly inside %j: %s', (inner, outer, expected) => {
    expect(isStrictlyInside(inner, outer)).toBe(expected);
  });
});

describe('resolveInsideRoot with dangling and looping symlinks', () => {
  const fsp = require('node:fs/promises') as typeof import('node:fs/promises');
  const os = require('node:os') as typeof import('node:os');
  const nodePath = require('node:path') as typeof import('node:path');
  const { resolveInsideRoot } = require('../../src/paths') as typeof import('../../src/paths');
  let base: string;
  let root: string;
  beforeAll(async () => {
    base = await fsp.realpath(await fsp.mkdtemp(nodePath.join(os.tmpdir(), 'paths-')));
    root = nodePath.join(base, 'root');
    await fsp.mkdir(root);
    await fsp.mkdir(nodePath.join(base, 'outside'));
    await fsp.symlink(nodePath.join(base, 'outside'), nodePath.join(root, 'out'));
    // A dangling link whose textual target is inside the root, but goes through a link that leads out.
    await fsp.symlink(nodePath.join(root, 'out', 'new'), nodePath.join(root, 'sneaky'));
    await fsp.symlink(nodePath.join(root, 'loop-b'), nodePath.join(root, 'loop-a'));
    await fsp.symlink(nodePath.join(root, 'loop-a'), nodePath.join(root, 'loop-b'));
  });
  afterAll(async () => fsp.rm(base, { recursive: true, force: true }));

  test('a dangling link whose target passes through an escaping link is refused', async () => {
    await expect(resolveInsideRoot(root, 'sneaky')).rejects.toMatchObject({ code: 'SYMLINK_ESCAPE' });
    await expect(resolveInsideRoot(root, 'out/x')).rejects.toMatchObject({ code: 'SYMLINK_ESCAPE' });
  });
  test('a symlink loop is a typed error', async () => {
    await expect(resolveInsideRoot(root, 'loop-a')).rejects.toMatchObject({ code: 'INVALID_PATH' });
  });
  test('missing paths inside the root resolve', async () => {
    await expect(resolveInsideRoot(root, 'a/b/c')).resolves.toBe(nodePath.join(root, 'a/b/c'));
  });
});
