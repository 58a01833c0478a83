/**
 * Bad input gets a clear, typed error and changes nothing — whether it comes through the SDK
 * (which refuses early) or straight into the workflow (which trusts nothing it is given).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { toFilestoreError } from '../../src/client';
import type { MutationRequest } from '../../src/mutations';
import { MOUNT_MARKER } from '../../src/paths';
import { listTree } from '../helpers/files';
import { createTestStack, type TestStack } from '../helpers/stack';

let stack: TestStack;
let root: string;
let outside: string;

beforeAll(async () => {
  stack = await createTestStack();
  root = await stack.addMount('bad');
  await stack.addMount('ro', { readOnly: true });
  outside = path.join(stack.tmp, 'outside');
  await fs.mkdir(outside);
  await fs.writeFile(path.join(outside, 'secret.txt'), 'do not touch');
  await fs.symlink(outside, path.join(root, 'escape'));
  await fs.mkdir(path.join(root, 'inside'));
  await fs.symlink(path.join(root, 'inside'), path.join(root, 'alias'));
});
afterAll(async () => stack?.teardown());

/** Starts the workflow directly, skipping every client-side check. */
async function rawMutation(req: Record<string, unknown>): Promise<unknown> {
  const key = randomUUID();
  const full = { idempotencyKey: key, mountId: 'bad', ...req } as MutationRequest;
  try {
    return await stack.client.temporal.workflow.execute('mutationWorkflow', {
      taskQueue: stack.config.taskQueue,
      workflowId: `bad-input-${key}`,
      args: [full],
    });
  } catch (err) {
    throw toFilestoreError(err);
  }
}

async function expectUnchanged(): Promise<void> {
  expect(await listTree(outside)).toEqual(['secret.txt']);
  expect(await fs.readFile(path.join(outside, 'secret.txt'), 'utf8')).toBe('do not touch');
  expect(await stack.client.listJournal({ status: 'PENDING' })).toEqual([]);
}

const cases: Array<[string, string, string]> = [
  ['traversal', '../outside/evil.txt', 'PATH_TRAVERSAL'],
  ['traversal in the middle', 'a/../../evil.txt', 'PATH_TRAVERSAL'],
  ['absolute path', '/etc/evil.txt', 'ABSOLUTE_PATH'],
  ['NUL byte', 'evil\0.txt', 'NUL_BYTE'],
  ['staging folder', '.filestore-staging/x', 'RESERVED_PATH'],
  ['mount identity marker', '.filestore-mount.json', 'RESERVED_PATH'],
];

describe.each(cases)('%s', (_name, badPath, code) => {
  test('SDK refuses before starting anything', async () => {
    await expect(stack.client.put('bad', badPath, { content: 'x' })).rejects.toMatchObject({ code });
    await expect(stack.client.move('bad', 'inside', badPath)).rejects.toMatchObject({ code });
    await expectUnchanged();
  });
  test('workflow refuses the same request sent directly', async () => {
    await expect(rawMutation({ op: 'write', path: badPath, source: { kind: 'inline', base64: 'eA==' } })).rejects.toMatchObject({ code });
    await expectUnchanged();
  });
});

test('a symlink leading out of the mount is refused for writes, copies, moves and deletes', async () => {
  await expect((await stack.client.put('bad', 'escape/evil.txt', { content: 'x' })).result()).rejects.toMatchObject({ code: 'SYMLINK_ESCAPE' });
  await expect((await stack.client.copy('bad', 'escape/secret.txt', 'stolen.txt')).result()).rejects.toMatchObject({ code: 'SYMLINK_ESCAPE' });
  await expect((await stack.client.remove('bad', 'escape/secret.txt')).result()).rejects.toMatchObject({ code: 'SYMLINK_ESCAPE' });
  await expect((await stack.client.mkdir('bad', 'escape/newdir')).result()).rejects.toMatchObject({ code: 'SYMLINK_ESCAPE' });
  await expectUnchanged();
  expect(await listTree(root)).not.toContain('stolen.txt');
  // The refused mutations are on record as FAILED, with the typed error.
  const failed = await stack.client.listJournal({ status: 'FAILED' });
  expect(failed.length).toBeGreaterThanOrEqual(4);
  expect(failed.every((e) => (e.error as { code: string }).code === 'SYMLINK_ESCAPE')).toBe(true);
});

test('a symlink that stays inside the mount is followed', async () => {
  await (await stack.client.put('bad', 'alias/ok.txt', { content: 'fine' })).result();
  expect(await fs.readFile(path.join(root, 'inside/ok.txt'), 'utf8')).toBe('fine');
});

test('read-only mount: refused by the SDK and by the workflow', async () => {
  await expect(stack.client.put('ro', 'x.txt', { content: 'x' })).rejects.toMatchObject({ code: 'READ_ONLY_MOUNT' });
  await expect(
    rawMutation({ mountId: 'ro', op: 'mkdir', path: 'dir' }),
  ).rejects.toMatchObject({ code: 'READ_ONLY_MOUNT' });
  const roRoot = path.join(stack.tmp, 'mounts', 'ro');
  expect(await listTree(roRoot)).toEqual([MOUNT_MARKER]);
  await expectUnchanged();
});

test('missing source file: refused by the SDK; sent directly it fails NOT_FOUND and is journalled FAILED', async () => {
  const missing = path.join(stack.tmp, 'no-such-file.bin');
  await expect(stack.client.put('bad', 'x.bin', { file: missing })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  await expect(rawMutation({ op: 'write', path: 'x.bin', source: { kind: 'file', path: missing } })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  expect(await listTree(root)).not.toContain('x.bin');
  await expectUnchanged();
});

test('unknown mount: refused by the SDK and by the workflow', async () => {
  await expect(stack.client.put('nope', 'x.txt', { content: 'x' })).rejects.toMatchObject({ code: 'UNKNOWN_MOUNT' });
  await expect(rawMutation({ mountId: 'nope', op: 'mkdir', path: 'x' })).rejects.toMatchObject({ code: 'UNKNOWN_MOUNT' });
  await expectUnchanged();
});

// Content above the inline limit through FilestoreClient.put goes through the upload area now
// (test/integration/sdk-stream.test.ts); carried inline in a request it is still refused (below).
test('oversize inline content in a request and malformed requests', async () => {
  await expect(stack.client.put('bad', 'k.txt', { content: 'x' }, { idempotencyKey: 'has spaces' })).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
  await expect(rawMutation({ op: 'write', path: 'x.txt', source: { kind: 'inline', base64: Buffer.alloc(300 * 1024).toString('base64') } })).rejects.toMatchObject({
    code: 'INVALID_REQUEST',
  });
  await expect(rawMutation({ op: 'explode', path: 'x.txt' })).rejects.toMatchObject({ code: 'UNSUPPORTED' });
  await expect(rawMutation({ op: 'write', path: 'x.txt' })).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
  await expect(rawMutation({ op: 'move', path: 'inside', targetPath: 'inside/sub' })).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
  await expectUnchanged();
});
