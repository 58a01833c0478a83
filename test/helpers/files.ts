import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';

export async function sha256File(p: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(p)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Writes `bytes` of random data in 8 MiB chunks (constant memory); returns its sha256. */
export async function writeRandomFile(p: string, bytes: number): Promise<string> {
  const hash = createHash('sha256');
  const fh = await fs.open(p, 'w');
  try {
    const chunk = randomBytes(8 * 1024 * 1024);
    for (let done = 0; done < bytes; ) {
      const n = Math.min(chunk.length, bytes - done);
      const part = chunk.subarray(0, n);
      // Vary each chunk so the file is not one repeated block.
      part.writeUInt32LE(done >>> 0, 0);
      await fh.write(part);
      hash.update(part);
      done += n;
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

/** Every file below `dir` (relative paths), for "nothing written outside" checks. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    const parent = (e as unknown as { parentPath?: string; path?: string }).parentPath ?? (e as unknown as { path: string }).path;
    out.push(`${parent}/${e.name}`.slice(dir.length + 1));
  }
  return out.sort();
}

export async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  );
}
