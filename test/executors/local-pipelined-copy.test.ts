/**
 * The pipelined copy of the local write path (src/executors/local/local-pipelined-copy.ts): reads
 * ahead, hashes in order and writes behind through a small pool of reused buffers. What must hold
 * whatever the overlap: the bytes written are the bytes hashed, in place, at every size around the
 * chunk boundaries; a source that shrinks is SOURCE_CHANGED (leaving no partial copy), one that
 * grows is stored at its size at open; failures of a read, a write or an early writeback fail the
 * copy only once nothing is in flight any more.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, truncateSync, writeSync, openSync, closeSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { endIdleHashWorker } from '../../src/executors/local/local-chunk-hasher';
import { copyHashed, HASH_ON_WORKER_FROM_BYTES, PIPE_CHUNK_BYTES } from '../../src/executors/local/local-pipelined-copy';
import { openKnownFile, openWriteSource } from '../../src/executors/local/local-source';
import { hashFile, streamIntoFile } from '../../src/executors/local/local-transfer';
import { sha256, sha256File } from '../helpers/files';

let dir: string;

beforeAll(async () => {
  dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'filestore-pipe-')));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** sha256sum's answer, so the hash is checked against a tool outside Node. */
const sha256sum = (file: string) => execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0];

async function sourceOf(name: string, data: Buffer): Promise<string> {
  const file = path.join(dir, name);
  await fs.writeFile(file, data);
  return file;
}

async function copyWith(src: string, dst: string, opts: Parameters<typeof copyHashed>[2] = {}) {
  const source = await openKnownFile(src, path.basename(src));
  const fh = await fs.open(dst, 'w');
  try {
    return await copyHashed(source, fh, opts);
  } finally {
    await fh.close();
    await source.close();
  }
}

describe('bytes and hash at the chunk boundaries', () => {
  const CHUNK = 64 * 1024;
  const sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 7, 9 * CHUNK - 1];

  test.each(sizes.flatMap((size) => [1, 2, 4].flatMap((depth) => [false, true].map((onWorker) => [size, depth, onWorker] as const))))(
    '%i bytes through a pool of %i × 64 KiB, hashed on a worker: %s',
    async (size, depth, onWorker) => {
      const data = randomBytes(size);
      const src = await sourceOf(`b-${size}-${depth}-${onWorker}.bin`, data);
      const dst = path.join(dir, `b-${size}-${depth}-${onWorker}.out`);
      const r = await copyWith(src, dst, { chunkBytes: CHUNK, depth, writebackEveryBytes: 2 * CHUNK, hashOnWorker: onWorker });
      expect(r).toEqual({ bytes: size, sha256: sha256(data) });
      expect(r.sha256).toBe(sha256sum(dst));
      expect((await fs.readFile(dst)).equals(data)).toBe(true);
    },
  );

  // The last two are above HASH_ON_WORKER_FROM_BYTES: hashed on a worker by default.
  test.each([0, 1, PIPE_CHUNK_BYTES - 1, PIPE_CHUNK_BYTES, PIPE_CHUNK_BYTES + 1, 5 * PIPE_CHUNK_BYTES + 3, HASH_ON_WORKER_FROM_BYTES, HASH_ON_WORKER_FROM_BYTES + 4097])(
    'streamIntoFile and hashFile at the default chunk size: %i bytes match sha256sum',
    async (size) => {
      const src = await sourceOf(`d-${size}.bin`, randomBytes(size));
      const dst = path.join(dir, `d-${size}.out`);
      const r = await streamIntoFile({ kind: 'file', path: src }, dst, { sourceRoots: [dir] });
      const expected = sha256sum(src);
      expect(r).toEqual({ bytes: size, sha256: expected });
      expect(sha256sum(dst)).toBe(expected);
      expect(await hashFile(src)).toBe(expected);
    },
  );
});

describe('a source that changes while it is copied', () => {
  const MiB = 1024 * 1024;

  test.each(
    (
      [
        ['mid-chunk', 10 * MiB + 100],
        ['at a chunk boundary', 10 * MiB],
        ['to nothing', 0],
      ] as const
    ).flatMap(([label, to]) => [false, true].map((onWorker) => [label, to, onWorker] as const)),
  )('shrinking %s while chunks are in flight is SOURCE_CHANGED (hashed on a worker: %s)', async (_label, to, onWorker) => {
    // 1 MiB chunks, 3 buffers: at the first progress call (4 MiB hashed) reads reach 7 MiB at most.
    const src = await sourceOf(`shrink-${to}-${onWorker}.bin`, randomBytes(16 * MiB));
    const source = await openKnownFile(src, path.basename(src));
    const fh = await fs.open(path.join(dir, `shrink-${to}-${onWorker}.out`), 'w');
    let shrank = false;
    try {
      const copy = copyHashed(source, fh, {
        chunkBytes: MiB,
        depth: 3,
        hashOnWorker: onWorker,
        onProgress: () => {
          if (!shrank) truncateSync(src, to);
          shrank = true;
        },
      });
      await expect(copy).rejects.toMatchObject({ code: 'SOURCE_CHANGED' });
      expect(shrank).toBe(true);
    } finally {
      await fh.close();
      await source.close();
    }
  });

  test('shrinking during a write (default chunks) is SOURCE_CHANGED and leaves no partial file', async () => {
    const src = await sourceOf('shrink-default.bin', randomBytes(40 * MiB));
    const dst = path.join(dir, 'shrink-default.out');
    let shrank = false;
    const pending = streamIntoFile({ kind: 'file', path: src }, dst, {
      sourceRoots: [dir],
      onProgress: () => {
        if (!shrank) truncateSync(src, 20 * MiB + 100);
        shrank = true;
      },
    });
    await expect(pending).rejects.toMatchObject({ code: 'SOURCE_CHANGED' });
    expect(shrank).toBe(true);
    await expect(fs.stat(dst)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('growing during the copy stores the size at open, and the hash is of the stored bytes', async () => {
    const first = randomBytes(9 * 1024 * 1024);
    const src = await sourceOf('grow.bin', first);
    const opened = await openWriteSource(src, { roots: [dir] });
    const dst = path.join(dir, 'grow.out');
    let grew = false;
    const r = await streamIntoFile({ kind: 'opened', file: opened }, dst, {
      onProgress: () => {
        if (grew) return;
        grew = true;
        appendFileSync(src, randomBytes(8 * 1024 * 1024));
      },
    });
    expect(grew).toBe(true);
    expect(r).toEqual({ bytes: first.length, sha256: sha256(first) });
    expect(await sha256File(dst)).toBe(sha256(first));
  });

  test('content overwritten during the copy: the reported hash is always that of the bytes written', async () => {
    const size = 12 * 1024 * 1024;
    const src = await sourceOf('rewrite.bin', randomBytes(size));
    const dst = path.join(dir, 'rewrite.out');
    const fd = openSync(src, 'r+');
    try {
      let n = 0;
      const r = await streamIntoFile({ kind: 'file', path: src }, dst, {
        sourceRoots: [dir],
        // Rewrites bytes just behind, at and ahead of the copy's position: whichever of them the
        // reads ahead already fetched, what was hashed must be what was written.
        onProgress: (done) => {
          n++;
          for (const at of [done - 10, done + 10, done + 5 * 1024 * 1024]) if (at >= 0 && at < size - 4) writeSync(fd, randomBytes(4), 0, 4, at);
        },
      });
      expect(n).toBeGreaterThan(0);
      expect(r.bytes).toBe(size);
      expect(r.sha256).toBe(sha256sum(dst));
    } finally {
      closeSync(fd);
    }
  });
});

describe('failures settle everything before they surface', () => {
  test.each([false, true])('a write that fails (destination opened read-only) rejects with its errno (hashed on a worker: %s)', async (onWorker) => {
    const src = await sourceOf('w-fail.bin', randomBytes(3 * 1024 * 1024));
    const dst = path.join(dir, `w-fail-${onWorker}.out`);
    await fs.writeFile(dst, '');
    const source = await openKnownFile(src, 'w-fail.bin');
    const ro = await fs.open(dst, 'r');
    try {
      await expect(copyHashed(source, ro, { chunkBytes: 256 * 1024, depth: 4, hashOnWorker: onWorker })).rejects.toMatchObject({ code: 'EBADF' });
    } finally {
      await ro.close();
      await source.close();
    }
  });

  test('hash workers do not pile up: a failed copy ends its worker, a successful one keeps one for the next copy', async () => {
    const threads = async () => (await fs.readdir('/proc/self/task')).length;
    const src = await sourceOf('threads.bin', randomBytes(1024 * 1024));
    const dst = path.join(dir, 'threads.out');
    await fs.writeFile(dst, '');
    const once = async (fail: boolean) => {
      const source = await openKnownFile(src, 'threads.bin');
      const fh = await fs.open(dst, fail ? 'r' : 'w');
      try {
        await copyHashed(source, fh, { chunkBytes: 128 * 1024, hashOnWorker: true }).catch((err) => {
          if (!fail) throw err;
        });
      } finally {
        await fh.close();
        await source.close();
      }
    };
    await endIdleHashWorker();
    const before = await threads();
    for (let i = 0; i < 5; i++) {
      await once(true);
      await once(false);
      await once(false);
    }
    expect(await threads()).toBe(before + 1);
    await endIdleHashWorker();
    expect(await threads()).toBe(before);
  });

  test('a kept hash worker starts each copy from a fresh hash, also after a failed copy', async () => {
    const CHUNK = 256 * 1024;
    const files = await Promise.all([1, 2, 3].map((n) => sourceOf(`reuse-${n}.bin`, randomBytes(8 * CHUNK + n))));
    const dst = path.join(dir, 'reuse.out');
    for (const [i, src] of [files[0], files[1], files[0], files[2]].entries()) {
      const r = await copyWith(src, dst, { chunkBytes: CHUNK, hashOnWorker: true });
      expect(r.sha256).toBe(sha256sum(src));
      if (i === 1) {
        // A copy that fails half-way leaves a half-fed hash behind, in a worker that must not be kept.
        const source = await openKnownFile(files[2], 'reuse-3.bin');
        const ro = await fs.open(dst, 'r');
        await expect(copyHashed(source, ro, { chunkBytes: CHUNK, hashOnWorker: true })).rejects.toMatchObject({ code: 'EBADF' });
        await ro.close();
        await source.close();
      }
    }
  });

  test('an early writeback that fails fails the copy (its error is never dropped)', async () => {
    // fdatasync on /dev/null is EINVAL: the only sync copyHashed itself starts is the early one.
    const src = await sourceOf('wb-fail.bin', randomBytes(2 * 1024 * 1024));
    const source = await openKnownFile(src, 'wb-fail.bin');
    const devNull = await fs.open('/dev/null', 'w');
    try {
      await expect(copyHashed(source, devNull, { chunkBytes: 64 * 1024, writebackEveryBytes: 256 * 1024 })).rejects.toMatchObject({ code: 'EINVAL' });
      // Without early writeback the same copy succeeds: the failure came from the early sync.
      await expect(copyHashed(source, devNull, { chunkBytes: 64 * 1024, writebackEveryBytes: 0 })).resolves.toMatchObject({ bytes: 2 * 1024 * 1024 });
    } finally {
      await devNull.close();
      await source.close();
    }
  });

  test('an abort between chunks stops the copy with the signal reason; the staged file is removed', async () => {
    const src = await sourceOf('abort.bin', randomBytes(10 * 1024 * 1024));
    const dst = path.join(dir, 'abort.out');
    const ac = new AbortController();
    const reason = Object.assign(new Error('cancelled by the test'), { code: 'TEST_ABORT' });
    await expect(
      streamIntoFile({ kind: 'file', path: src }, dst, { sourceRoots: [dir], signal: ac.signal, onProgress: () => ac.abort(reason) }),
    ).rejects.toBe(reason);
    await expect(fs.stat(dst)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('a source over maxBytes is refused before a byte is read', async () => {
    const src = await sourceOf('big.bin', randomBytes(300 * 1024));
    const source = await openKnownFile(src, 'big.bin');
    const fh = await fs.open(path.join(dir, 'big.out'), 'w');
    try {
      await expect(copyHashed(source, fh, { maxBytes: 200 * 1024 })).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
      expect((await fh.stat()).size).toBe(0);
    } finally {
      await fh.close();
      await source.close();
    }
  });
});
