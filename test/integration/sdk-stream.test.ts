/**
 * FilestoreClient: put from a Buffer or a stream of any size goes through the upload area (never
 * inline in history beyond the inline limit), get/openRead read back through the backend, on a
 * local and an S3 mount.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { Readable } from 'node:stream';
import { uploadDirOf } from '../../src/config';
const errCode = (e: unknown) => (e as { code?: string } | undefined)?.code;
import { createTestStack, type TestStack } from '../helpers/stack';

jest.setTimeout(120_000);

let stack: TestStack;
beforeAll(async () => {
  stack = await createTestStack({ config: { inlineMaxBytes: 1024 } });
  await stack.addMount('docs');
  await stack.addS3Mount('objs');
  await stack.addMount('frozen', { readOnly: true });
});
afterAll(() => stack?.teardown());

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function historyInputBytes(workflowId: string): Promise<number> {
  const { history } = await stack.client.temporal.workflowService.getWorkflowExecutionHistory({
    namespace: stack.client.temporal.options.namespace,
    execution: { workflowId },
    maximumPageSize: 1,
  });
  const payload = history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  return payload?.data?.length ?? 0;
}

describe.each(['docs', 'objs'])('mount %s', (mount) => {
  it('puts a Buffer above the inline limit through the upload area and gets it back', async () => {
    const data = randomBytes(200_000);
    const handle = await stack.client.put(mount, 'buf.bin', { content: data });
    const result = await handle.result();
    expect(result.node?.sha256).toBe(sha(data));
    // The request in history names the upload file, it does not carry the bytes.
    expect(await historyInputBytes(handle.workflowId)).toBeLessThan(4096);
    expect(sha(await stack.client.get(mount, 'buf.bin'))).toBe(sha(data));
    expect(await fs.readdir(uploadDirOf(stack.config))).toEqual([]);
  });

  it('puts a stream of 12 MiB and reads a range back', async () => {
    const chunks = Array.from({ length: 12 }, () => randomBytes(1024 * 1024));
    const whole = Buffer.concat(chunks);
    async function* gen() {
      for (const c of chunks) yield c;
    }
    const result = await (await stack.client.put(mount, 'dir/stream.bin', { stream: gen() })).result();
    expect(result.node?.size).toBe(whole.length);
    expect(result.node?.sha256).toBe(sha(whole));
    const { version, stream } = await stack.client.openRead(mount, 'dir/stream.bin', { range: { start: 100, end: 199 } });
    expect(version.etag).toBe(`"${sha(whole)}"`);
    const parts: Buffer[] = [];
    for await (const c of stream) parts.push(c as Buffer);
    expect(Buffer.concat(parts)).toEqual(whole.subarray(100, 200));
    expect(await fs.readdir(uploadDirOf(stack.config))).toEqual([]);
  });

  it('small content still goes inline', async () => {
    const result = await (await stack.client.put(mount, 'small.txt', { content: 'tiny' })).result();
    expect(result.node?.size).toBe(4);
  });
});

it('refuses a stream to a read-only mount before storing anything', async () => {
  const err = await stack.client.put('frozen', 'x.bin', { stream: Readable.from([randomBytes(4096)]) }).catch((e: unknown) => e);
  expect(errCode(err)).toBe('READ_ONLY_MOUNT');
  expect(await fs.readdir(uploadDirOf(stack.config)).catch(() => [])).toEqual([]);
});

it('refuses a stream whose content is not the expected sha256, leaving nothing', async () => {
  const err = await stack.client.put('docs', 'bad.bin', { stream: Readable.from([randomBytes(4096)]) }, { expectedSha256: '0'.repeat(64) }).catch((e: unknown) => e);
  expect(errCode(err)).toBe('INVALID_REQUEST');
  expect(await fs.readdir(uploadDirOf(stack.config))).toEqual([]);
  expect(await stack.client.getNode('docs', 'bad.bin')).toBeNull();
});

it('get of a missing file and of a directory are typed', async () => {
  expect(errCode(await stack.client.get('docs', 'nope').catch((e: unknown) => e))).toBe('NOT_FOUND');
  expect(errCode(await stack.client.get('docs', 'dir').catch((e: unknown) => e))).toBe('IS_A_DIRECTORY');
  expect(errCode(await stack.client.get('docs', '../etc/passwd').catch((e: unknown) => e))).toBe('PATH_TRAVERSAL');
});
