import { compareNode, observedOf, sameDetection, unreadableObserved, type CatalogNode } from '../../src/watcher/drift-compare';
import type { NodeMeta } from '../../src/executors/executor';

const updatedAt = new Date('2026-01-01T00:00:10.000Z');
const row = (over: Partial<CatalogNode> = {}): CatalogNode => ({
  path: 'a.txt',
  kind: 'file',
  size: 5,
  sha256: 'aaa',
  mode: 0o644,
  mtime: '2026-01-01 00:00:05.123+00',
  state: 'ACTIVE',
  version: 1,
  updatedAt,
  lastJournalId: 'j1',
  ...over,
});
const live = (over: Partial<NodeMeta> = {}): NodeMeta => ({
  path: 'a.txt',
  kind: 'file',
  size: 5,
  sha256: null,
  mode: 0o100644,
  uid: 0,
  gid: 0,
  mtime: '2026-01-01T00:00:05.123Z',
  identity: '1:2',
  ctime: '2026-01-01T00:00:09.000Z',
  ...over,
});

test('match: same kind, size, mode and mtime (Postgres text and ISO forms compare equal)', () => {
  expect(compareNode(row(), live())).toEqual({ drift: null });
});

test('added, removed, and a DELETED row counts as absent', () => {
  expect(compareNode(null, live())).toMatchObject({ drift: 'added' });
  expect(compareNode(row({ state: 'DELETED' }), live())).toMatchObject({ drift: 'added' });
  expect(compareNode(row(), null)).toMatchObject({ drift: 'removed' });
  expect(compareNode(row({ state: 'DELETED' }), null)).toEqual({ drift: null });
  expect(compareNode(null, null)).toEqual({ drift: null });
});

test('modified: kind, mode, size, mtime beyond 1 ms', () => {
  expect(compareNode(row(), live({ kind: 'directory', size: 0 }))).toMatchObject({ drift: 'modified' });
  expect(compareNode(row(), live({ mode: 0o100600 }))).toMatchObject({ drift: 'modified' });
  expect(compareNode(row(), live({ size: 6 }))).toMatchObject({ drift: 'modified' });
  expect(compareNode(row(), live({ mtime: '2026-01-01T00:00:05.125Z' }))).toMatchObject({ drift: 'modified' });
  expect(compareNode(row(), live({ mtime: '2026-01-01T00:00:05.1235Z' }))).toEqual({ drift: null });
});

test('directories compare kind and mode only (their mtime follows their children)', () => {
  const dir = row({ kind: 'directory', size: 0, sha256: null });
  expect(compareNode(dir, live({ kind: 'directory', size: 4096, mtime: '2030-01-01T00:00:00.000Z' }))).toEqual({ drift: null });
});

test('doubt: size and mtime match but ctime is after the catalog row → hash decides', () => {
  const touched = live({ ctime: '2026-01-01T00:00:11.000Z' });
  expect(compareNode(row(), touched)).toEqual({ drift: null, needsHash: true });
  expect(compareNode(row(), touched, 'aaa')).toEqual({ drift: null });
  expect(compareNode(row(), touched, 'bbb')).toMatchObject({ drift: 'modified', reason: 'content differs (sha256)' });
  // No doubt without a catalogued hash to compare with.
  expect(compareNode(row({ sha256: null }), touched)).toEqual({ drift: null });
});

test('observedOf and sameDetection', () => {
  expect(observedOf(null)).toEqual({ kind: null, size: null, mtime: null, mode: null });
  const o = observedOf(live(), 'h');
  expect(o).toEqual({ kind: 'file', size: 5, mtime: '2026-01-01T00:00:05.123Z', mode: 0o100644, sha256: 'h' });
  expect(sameDetection({ kind: 'modified', observed: o }, 'modified', { ...o })).toBe(true);
  expect(sameDetection({ kind: 'modified', observed: o }, 'modified', { ...o, size: 6 })).toBe(false);
  expect(sameDetection({ kind: 'added', observed: o }, 'modified', o)).toBe(false);
  expect(sameDetection(undefined, 'added', o)).toBe(false);
});

test('an unreadable detection repeats only with the same reason', () => {
  const o = unreadableObserved(null, 'ACCESS_DENIED');
  expect(o).toEqual({ kind: null, size: null, mtime: null, mode: null, unreadable: 'ACCESS_DENIED' });
  expect(sameDetection({ kind: 'unreadable', observed: o }, 'unreadable', { ...o })).toBe(true);
  expect(sameDetection({ kind: 'unreadable', observed: o }, 'unreadable', unreadableObserved(null, 'INVALID_PATH'))).toBe(false);
  expect(sameDetection({ kind: 'added', observed: observedOf(null) }, 'unreadable', o)).toBe(false);
});

describe('objects with an ETag (S3)', () => {
  const obj = (over: Partial<CatalogNode> = {}) => row({ mode: null, etag: 'e1', mtime: '2026-01-01 00:00:05+00', ...over });
  const seen = (over: Partial<NodeMeta> = {}) => live({ mode: null, etag: 'e1', mtime: '2026-01-01T00:00:05.734Z', ctime: null, ...over });

  test('the ETag decides; LastModified precision differences are not drift', () => {
    expect(compareNode(obj(), seen())).toEqual({ drift: null });
    expect(compareNode(obj(), seen({ etag: 'e2' }))).toMatchObject({ drift: 'modified', reason: 'etag e1 → e2' });
    expect(compareNode(obj(), seen({ size: 9, etag: 'e1' }))).toMatchObject({ drift: 'modified' });
  });

  test('a sha256 the object carries that disagrees is drift; an absent one is no evidence', () => {
    expect(compareNode(obj(), seen({ sha256: 'bbb' }))).toMatchObject({ drift: 'modified', reason: 'content differs (stored sha256)' });
    expect(compareNode(obj(), seen({ sha256: 'aaa' }))).toEqual({ drift: null });
    expect(compareNode(obj({ sha256: null }), seen({ sha256: 'bbb' }))).toEqual({ drift: null });
  });

  test('without an ETag on one side, times compare as before', () => {
    expect(compareNode(obj({ etag: null }), seen())).toMatchObject({ drift: 'modified' });
  });

  test('a repeat with another ETag is a new detection', () => {
    const o = observedOf(seen({ etag: 'e2' }));
    expect(o.etag).toBe('e2');
    expect(sameDetection({ kind: 'modified', observed: o }, 'modified', observedOf(seen({ etag: 'e2' })))).toBe(true);
    expect(sameDetection({ kind: 'modified', observed: o }, 'modified', observedOf(seen({ etag: 'e3' })))).toBe(false);
    // HeadObject reports the same version's time to the second, a listing to the millisecond.
    expect(sameDetection({ kind: 'modified', observed: o }, 'modified', observedOf(seen({ etag: 'e2', mtime: '2026-01-01T00:00:05.000Z' })))).toBe(true);
  });
});
