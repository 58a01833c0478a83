import { ConflictError, errorFromInfo, NON_RETRYABLE, PathLockedError, SymlinkEscapeError, toErrorInfo, VerificationError } from '../../src/errors';

test('errors carry a stable code and their class name', () => {
  const e = new SymlinkEscapeError('a/b');
  expect(e).toMatchObject({ name: 'SymlinkEscapeError', code: 'SYMLINK_ESCAPE', retryable: false, details: { path: 'a/b' } });
  expect(new PathLockedError('x')).toMatchObject({ code: 'PATH_LOCKED', retryable: true });
});

test('serialised errors come back as the same type', () => {
  const info = toErrorInfo(new ConflictError('locked', { path: 'p' }));
  const back = errorFromInfo(JSON.parse(JSON.stringify(info)));
  expect(back).toMatchObject({ name: 'ConflictError', code: 'CONFLICT', message: 'locked', details: { path: 'p' } });
  expect(back).toBeInstanceOf(ConflictError);
  expect(errorFromInfo({ name: 'Mystery', code: 'X', message: 'm' })).toMatchObject({ name: 'FilestoreError', code: 'X' });
  expect(toErrorInfo(new TypeError('boom'))).toMatchObject({ name: 'TypeError', code: 'INTERNAL', retryable: true });
});

test('retryable errors are never in the non-retryable list, permanent ones are', () => {
  expect(NON_RETRYABLE).not.toContain('PathLockedError');
  expect(NON_RETRYABLE).not.toContain('VerificationError');
  expect(new VerificationError('x').retryable).toBe(true);
  for (const name of ['ConflictError', 'ReadOnlyMountError', 'PathTraversalError', 'NotFoundError', 'SymlinkEscapeError']) {
    expect(NON_RETRYABLE).toContain(name);
  }
});
