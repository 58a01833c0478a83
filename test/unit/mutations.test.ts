import { validateRequest } from '../../activities/journal';
import { belowPattern } from '../../src/catalog/subtree';
import { parseTarget } from '../../src/cli/main';
import { describeMutation, IDEMPOTENCY_KEY_PATTERN, mutationWorkflowId, searchablePath, type MutationRequest } from '../../src/mutations';

const base = { idempotencyKey: 'k1', mountId: 'docs', mountTaskQueue: 'q' };

test('workflow ids are deterministic and readable', () => {
  expect(mutationWorkflowId('docs', 'write', 'abc')).toBe('filestore:docs:write:abc');
  // The longest mount id (63) and key (128) stay within Temporal's 255-character limit.
  expect(mutationWorkflowId('m'.repeat(63), 'delete', 'k'.repeat(128)).length).toBeLessThanOrEqual(255);
  expect(IDEMPOTENCY_KEY_PATTERN.test('k'.repeat(129))).toBe(false);
});

test('search attribute paths are cut to 255 bytes without splitting a character', () => {
  expect(searchablePath('a/b')).toBe('a/b');
  const long = 'é'.repeat(300);
  const cut = searchablePath(long);
  expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(255);
  expect(long.startsWith(cut)).toBe(true);
});

test('describeMutation names source and target', () => {
  expect(describeMutation({ ...base, op: 'move', path: 'a', targetPath: 'b' })).toBe('move docs:a → docs:b');
});

test('validateRequest refuses what a client could get wrong', () => {
  const limits = { inlineMaxBytes: 16 };
  const ok: MutationRequest = { ...base, op: 'write', path: 'a.txt', source: { kind: 'inline', base64: 'aGVsbG8=' } };
  expect(validateRequest(ok, limits)).toBe(ok);
  expect(() => validateRequest({ ...ok, path: 'a//b' }, limits)).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
  expect(() => validateRequest({ ...ok, path: '../x' }, limits)).toThrow(expect.objectContaining({ code: 'PATH_TRAVERSAL' }));
  expect(() => validateRequest({ ...ok, idempotencyKey: 'a b' }, limits)).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
  expect(() => validateRequest({ ...ok, source: { kind: 'inline', base64: Buffer.alloc(64).toString('base64') } }, limits)).toThrow(
    expect.objectContaining({ code: 'INVALID_REQUEST' }),
  );
  expect(() => validateRequest({ ...ok, source: { kind: 'file', path: 'relative.bin' } }, limits)).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
  expect(() => validateRequest({ ...base, op: 'copy', path: 'a', targetPath: 'a/b' }, limits)).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
  expect(() => validateRequest({ ...base, op: 'move', path: 'a', targetPath: 'a' }, limits)).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
  expect(() => validateRequest({ ...base, op: 'chmod', path: 'a' } as never, limits)).toThrow(expect.objectContaining({ code: 'UNSUPPORTED' }));
  expect(() => validateRequest({ ...ok, expectedSha256: 'not-a-hash' }, limits)).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
  expect(validateRequest({ ...ok, expectedSha256: 'a'.repeat(64), mode: 0o640 }, limits)).toMatchObject({ mode: 0o640 });
  expect(() => validateRequest({ ...ok, mode: 0o10000 }, limits)).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
  expect(() => validateRequest({ ...ok, mode: -1 }, limits)).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
});

test('subtree LIKE patterns escape wildcards', () => {
  expect(belowPattern('a/b')).toBe('a/b/%');
  expect(belowPattern('100%_done\\x')).toBe('100\\%\\_done\\\\x/%');
});

test('parseTarget splits <mount>:<path>', () => {
  expect(parseTarget('docs:a/b.txt')).toEqual({ mount: 'docs', path: 'a/b.txt' });
  expect(parseTarget('docs:with:colon')).toEqual({ mount: 'docs', path: 'with:colon' });
  expect(() => parseTarget('nocolon')).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
  expect(() => parseTarget(':x')).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
});
