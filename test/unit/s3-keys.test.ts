import {
  S3_MAX_KEY_BYTES,
  S3_STAGING_DIR,
  assertKeyLength,
  dirMarkerKey,
  entryOfKey,
  isDirMarkerKey,
  keyOf,
  listPrefixOf,
  pathOfKey,
  stagingKey,
  stagingRootPrefix,
  stagingTxPrefix,
  txIdOfStagingKey,
} from '../../src/executors/s3/s3-keys';
import { MOUNT_MARKER } from '../../src/paths';
import { codeOf } from '../helpers/error-code';


const TX = '3f2b8c1e-9a4d-4e57-8b6f-0c1d2e3f4a5b';

/** A canonical path of exactly `bytes` UTF-8 bytes made mostly of `unit`, in segments well under the 255-byte limit. */
function pathOfBytes(bytes: number, unit = 'a'): string {
  const unitBytes = Buffer.byteLength(unit);
  const segBytes = Math.floor(200 / unitBytes) * unitBytes;
  const segments: string[] = [];
  let used = 0;
  while (bytes - used > segBytes + 60) {
    used += segBytes + (segments.length === 0 ? 0 : 1);
    segments.push(unit.repeat(segBytes / unitBytes));
  }
  const last = bytes - used - (segments.length === 0 ? 0 : 1);
  segments.push(unit.repeat(Math.floor(last / unitBytes)) + 'a'.repeat(last % unitBytes));
  const out = segments.join('/');
  expect(Buffer.byteLength(out)).toBe(bytes);
  return out;
}

describe.each([
  ['', ''],
  ['a/b', 'a/b/'],
])('prefix %j', (prefix, base) => {
  it('keyOf puts the path under the prefix', () => {
    expect(keyOf(prefix, 'x.txt')).toBe(`${base}x.txt`);
    expect(keyOf(prefix, 'dir/sub/x.txt')).toBe(`${base}dir/sub/x.txt`);
  });

  it('dirMarkerKey is the key with a trailing slash', () => {
    expect(dirMarkerKey(prefix, 'dir')).toBe(`${base}dir/`);
    expect(dirMarkerKey(prefix, 'dir/sub')).toBe(`${base}dir/sub/`);
  });

  it('listPrefixOf ends in a slash so a never lists ab', () => {
    expect(listPrefixOf(prefix, '')).toBe(base);
    expect(listPrefixOf(prefix, 'dir')).toBe(`${base}dir/`);
    expect(listPrefixOf(prefix, 'dir/sub')).toBe(`${base}dir/sub/`);
  });

  it('pathOfKey inverts keyOf and dirMarkerKey', () => {
    for (const p of ['x', 'dir/x.txt', 'ünï/cødé/文件.txt', 'a b/c+d=e&f']) {
      expect(pathOfKey(prefix, keyOf(prefix, p))).toBe(p);
      expect(entryOfKey(prefix, keyOf(prefix, p))).toEqual({ path: p, kind: 'file' });
      expect(pathOfKey(prefix, dirMarkerKey(prefix, p))).toBe(p);
      expect(entryOfKey(prefix, dirMarkerKey(prefix, p))).toEqual({ path: p, kind: 'directory' });
    }
  });

  it('staging keys never map to mount paths', () => {
    const k = stagingKey(prefix, TX, 'backup/dir/x.txt');
    expect(k).toBe(`${base}${S3_STAGING_DIR}/${TX}/backup/dir/x.txt`);
    expect(pathOfKey(prefix, k)).toBeNull();
    expect(pathOfKey(prefix, stagingTxPrefix(prefix, TX))).toBeNull();
    expect(pathOfKey(prefix, stagingRootPrefix(prefix))).toBeNull();
    expect(pathOfKey(prefix, `${base}${S3_STAGING_DIR}`)).toBeNull();
    expect(txIdOfStagingKey(prefix, k)).toBe(TX);
  });

  it('no mount path can name the staging folder or the mount marker', () => {
    expect(codeOf(() => keyOf(prefix, `${S3_STAGING_DIR}/x`))).toBe('RESERVED_PATH');
    expect(codeOf(() => dirMarkerKey(prefix, S3_STAGING_DIR))).toBe('RESERVED_PATH');
    expect(pathOfKey(prefix, `${base}${MOUNT_MARKER}`)).toBeNull();
  });

  it('keys no canonical path spells are not nodes', () => {
    for (const rest of ['a//b', './a', 'a/./b', 'a/../b', '..', '/a', '//', `${'x'.repeat(256)}/y`]) {
      expect(pathOfKey(prefix, `${base}${rest}`)).toBeNull();
    }
    // A staging folder deeper down is an ordinary name; only the top-level one is reserved.
    expect(pathOfKey(prefix, `${base}d/${S3_STAGING_DIR}/x`)).toBe(`d/${S3_STAGING_DIR}/x`);
  });

  it('the root is a prefix, not an object or a marker', () => {
    expect(codeOf(() => keyOf(prefix, ''))).toBe('INVALID_PATH');
    expect(codeOf(() => dirMarkerKey(prefix, ''))).toBe('INVALID_PATH');
  });

  it('refuses non-canonical paths (a caller bug), with the path rules’ codes', () => {
    expect(codeOf(() => keyOf(prefix, 'a/'))).toBe('INVALID_PATH');
    expect(codeOf(() => keyOf(prefix, 'a//b'))).toBe('INVALID_PATH');
    expect(codeOf(() => keyOf(prefix, '/a'))).toBe('ABSOLUTE_PATH');
    expect(codeOf(() => keyOf(prefix, 'a/../b'))).toBe('PATH_TRAVERSAL');
    expect(codeOf(() => keyOf(prefix, 'a\0b'))).toBe('NUL_BYTE');
    expect(codeOf(() => listPrefixOf(prefix, 'dir/'))).toBe('INVALID_PATH');
  });

  it('keys of exactly 1,024 bytes pass, 1,025 are KEY_TOO_LONG — counted in UTF-8 bytes, not characters', () => {
    for (const unit of ['a', 'é', '€', '😀']) {
      const fits = pathOfBytes(S3_MAX_KEY_BYTES - Buffer.byteLength(base), unit);
      expect(Buffer.byteLength(keyOf(prefix, fits))).toBe(S3_MAX_KEY_BYTES);
      const over = pathOfBytes(S3_MAX_KEY_BYTES - Buffer.byteLength(base) + 1, unit);
      expect(codeOf(() => keyOf(prefix, over))).toBe('KEY_TOO_LONG');
    }
    // The marker's trailing '/' counts too.
    const fits = pathOfBytes(S3_MAX_KEY_BYTES - Buffer.byteLength(base));
    expect(codeOf(() => dirMarkerKey(prefix, fits))).toBe('KEY_TOO_LONG');
    expect(codeOf(() => listPrefixOf(prefix, fits))).toBe('KEY_TOO_LONG');
  });

  it('a 300-character path of 4-byte characters is over the limit though its .length looks short', () => {
    const p = Array.from({ length: 5 }, () => '😀'.repeat(60)).join('/'); // 5 × 240 bytes + 4 slashes
    expect(p.length).toBeLessThan(S3_MAX_KEY_BYTES);
    expect(codeOf(() => keyOf(prefix, p))).toBe('KEY_TOO_LONG');
  });
});

describe('pathOfKey at the prefix boundary', () => {
  it('keys outside the prefix are null', () => {
    expect(pathOfKey('a/b', 'a/bc/x')).toBeNull();
    expect(pathOfKey('a/b', 'a/x')).toBeNull();
    expect(pathOfKey('a/b', 'other/a/b/x')).toBeNull();
    expect(pathOfKey('a/b', 'x')).toBeNull();
  });

  it('the prefix itself and its own marker are not nodes', () => {
    expect(pathOfKey('a/b', 'a/b')).toBeNull();
    expect(pathOfKey('a/b', 'a/b/')).toBeNull();
    expect(pathOfKey('', '/')).toBeNull();
    expect(pathOfKey('', '')).toBeNull();
  });

  it('a whole-bucket mount sees every key (but staging)', () => {
    expect(pathOfKey('', 'a/b/x')).toBe('a/b/x');
    expect(pathOfKey('', `${S3_STAGING_DIR}/${TX}/x`)).toBeNull();
  });

  it('another mount’s staging below a nested key is still a plain path of the outer mount', () => {
    // Mounts may not overlap (addS3Mount refuses it), so this only matters for keys written around Filestore.
    expect(pathOfKey('', `a/${S3_STAGING_DIR}/${TX}/x`)).toBe(`a/${S3_STAGING_DIR}/${TX}/x`);
  });
});

describe('staging keys', () => {
  it('live under <prefix>/.filestore-staging/<txId>/', () => {
    expect(stagingRootPrefix('')).toBe(`${S3_STAGING_DIR}/`);
    expect(stagingRootPrefix('p')).toBe(`p/${S3_STAGING_DIR}/`);
    expect(stagingTxPrefix('p', TX)).toBe(`p/${S3_STAGING_DIR}/${TX}/`);
    expect(stagingKey('p', TX, 'x')).toBe(`p/${S3_STAGING_DIR}/${TX}/x`);
  });

  it('refuse a txId or name that could step out of the transaction folder', () => {
    for (const txId of ['', '../x', 'a/b', '.', 'a\0b', 'x'.repeat(200)]) expect(codeOf(() => stagingKey('p', txId, 'x'))).toBe('INVALID_REQUEST');
    for (const name of ['', '/x', 'x/', 'a//b', '../x', 'a/../b', './x', 'a\0b']) expect(codeOf(() => stagingKey('p', TX, name))).toBe('INVALID_REQUEST');
  });

  it('are KEY_TOO_LONG past 1,024 bytes', () => {
    expect(codeOf(() => stagingKey('p', TX, pathOfBytes(1000)))).toBe('KEY_TOO_LONG');
  });

  it('txIdOfStagingKey is null outside the staging folder', () => {
    expect(txIdOfStagingKey('p', `p/${S3_STAGING_DIR}/`)).toBeNull();
    expect(txIdOfStagingKey('p', `p/${S3_STAGING_DIR}/${TX}`)).toBeNull();
    expect(txIdOfStagingKey('p', `p/x/${TX}/y`)).toBeNull();
    expect(txIdOfStagingKey('q', `p/${S3_STAGING_DIR}/${TX}/y`)).toBeNull();
  });
});

describe('assertKeyLength and markers', () => {
  it('reports the byte length and the limit', () => {
    let err: { code?: string; message?: string; details?: Record<string, unknown> } = {};
    try {
      assertKeyLength('€'.repeat(342)); // 1,026 bytes, 342 characters
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.code).toBe('KEY_TOO_LONG');
    expect(err.message).toBe("key of 1026 bytes exceeds the backend's limit of 1024 bytes");
    expect(err.details).toMatchObject({ bytes: 1026 });
    expect(assertKeyLength('€'.repeat(341) + 'a')).toHaveLength(342);
  });

  it('isDirMarkerKey', () => {
    expect(isDirMarkerKey('a/')).toBe(true);
    expect(isDirMarkerKey('a')).toBe(false);
  });
});
