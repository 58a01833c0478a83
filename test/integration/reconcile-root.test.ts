/**
 * Reconcile of a mount's root: the whole mount as the backend has it — files added, changed and
 * removed behind Filestore's back anywhere in it — in one mutation, on a local and an S3 mount.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { sha256 } from '../helpers/files';
import type { TestBucket } from '../helpers/s3';
import { createTestStack, type TestStack } from '../helpers/stack';

jest.setTimeout(120_000);

let stack: TestStack;
let root: string;
let bucket: TestBucket;
beforeAll(async () => {
  stack = await createTestStack();
  root = await stack.addMount('loc');
  bucket = await stack.addS3Mount('obj');
});
afterAll(() => stack?.teardown());

const behind = {
  loc: {
    write: async (p: string, body: string) => {
      await fs.mkdir(path.dirname(path.join(root, p)), { recursive: true });
      await fs.writeFile(path.join(root, p), body);
    },
    remove: (p: string) => fs.rm(path.join(root, p)),
  },
  obj: {
    write: (p: string, body: string) => bucket.client.send(new PutObjectCommand({ Bucket: bucket.bucket, Key: p, Body: body })).then(() => undefined),
    remove: (p: string) => bucket.client.send(new DeleteObjectCommand({ Bucket: bucket.bucket, Key: p })).then(() => undefined),
  },
};

describe.each(['loc', 'obj'] as const)('mount %s', (mount) => {
  it('reconciles the whole mount from its root', async () => {
    for (const p of ['a.txt', 'd/b.txt', 'd/e/c.txt']) await (await stack.client.put(mount, p, { content: `v1 ${p}` })).result();
    await behind[mount].write('a.txt', 'v2 by hand');
    await behind[mount].remove('d/b.txt');
    await behind[mount].write('d/e/new.txt', 'new by hand');

    const result = await (await stack.client.reconcile(mount, '')).result();
    expect(result.op).toBe('reconcile');
    expect(result.path).toBe('');

    expect((await stack.client.getNode(mount, 'a.txt'))?.sha256).toBe(sha256(Buffer.from('v2 by hand')));
    expect((await stack.client.getNode(mount, 'd/b.txt'))?.state).toBe('DELETED');
    expect((await stack.client.getNode(mount, 'd/e/new.txt'))?.sha256).toBe(sha256(Buffer.from('new by hand')));
    const c = await stack.client.getNode(mount, 'd/e/c.txt');
    expect(c?.state).toBe('ACTIVE');
    expect(c?.version).toBe(1);
    // No row for the root itself.
    expect(await stack.client.getNode(mount, '')).toBeNull();
  });
});
