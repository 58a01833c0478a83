import { validateRequest } from '../../activities/journal';
import { crossMountTarget, describeMutation, type MutationRequest } from '../../src/mutations';

const limits = { inlineMaxBytes: 16 };
const base = { idempotencyKey: 'k1', mountId: 'docs' };

test('crossMountTarget names another mount only', () => {
  expect(crossMountTarget({ ...base, op: 'copy', path: 'a', targetPath: 'b' })).toBeNull();
  expect(crossMountTarget({ ...base, op: 'copy', path: 'a', targetPath: 'b', targetMountId: 'docs' })).toBeNull();
  expect(crossMountTarget({ ...base, op: 'move', path: 'a', targetPath: 'b', targetMountId: 'archive' })).toBe('archive');
  expect(crossMountTarget({ ...base, op: 'delete', path: 'a' })).toBeNull();
});

test('describeMutation names the target mount', () => {
  expect(describeMutation({ ...base, op: 'move', path: 'a', targetPath: 'b', targetMountId: 'archive' })).toBe('move docs:a → archive:b');
});

test('validateRequest: across mounts the same path (or one inside the other) is two places', () => {
  const same: MutationRequest = { ...base, op: 'copy', path: 'a', targetPath: 'a', targetMountId: 'archive' };
  expect(validateRequest(same, limits)).toBe(same);
  expect(validateRequest({ ...base, op: 'move', path: 'a', targetPath: 'a/b', targetMountId: 'archive' }, limits)).toBeTruthy();
  // On one mount they still are refused, also when the target mount is spelled out.
  expect(() => validateRequest({ ...same, targetMountId: 'docs' }, limits)).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
  expect(() => validateRequest({ ...same, targetMountId: 'Not A Mount' }, limits)).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
});
