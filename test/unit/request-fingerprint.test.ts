import type { MutationRequest } from '../../src/mutations';
import { canonicalRequest, requestFingerprint, stableStringify } from '../../src/request-fingerprint';

const write: MutationRequest = { idempotencyKey: 'k', mountId: 'm', op: 'write', path: 'a.txt', source: { kind: 'inline', base64: 'eA==' } };

describe('request fingerprint', () => {
  test('key order, undefined members and waiting/routing fields do not change it', () => {
    const reordered = { source: { base64: 'eA==', kind: 'inline' }, path: 'a.txt', op: 'write', mountId: 'm', idempotencyKey: 'k' } as MutationRequest;
    const withExtras = { ...write, overwrite: undefined, waitForLock: true, lockTimeoutMs: 5, mountTaskQueue: 'rogue' } as MutationRequest;
    expect(requestFingerprint(reordered)).toBe(requestFingerprint(write));
    expect(requestFingerprint(withExtras)).toBe(requestFingerprint(write));
    expect(canonicalRequest(withExtras)).toEqual(canonicalRequest(write));
    expect(requestFingerprint(write)).toMatch(/^[0-9a-f]{64}$/);
  });

  test.each<[string, Partial<MutationRequest>]>([
    ['content', { source: { kind: 'inline', base64: 'eQ==' } }],
    ['path', { path: 'b.txt' }],
    ['overwrite', { overwrite: true }],
    ['force', { force: true }],
    ['mode', { mode: 0o600 }],
    ['mount', { mountId: 'n' }],
  ])('a different %s changes it', (_name, patch) => {
    expect(requestFingerprint({ ...write, ...patch } as MutationRequest)).not.toBe(requestFingerprint(write));
  });

  test('stableStringify sorts keys at every depth and keeps array order', () => {
    expect(stableStringify({ b: [2, 1], a: { d: 1, c: undefined, b: null } })).toBe('{"a":{"b":null,"d":1},"b":[2,1]}');
  });
});
