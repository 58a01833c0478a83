/**
 * The upload area names a file by (workflow id, content hash): two requests with one key and one
 * body share it. A second request refused at start (the key reused for another path) must not
 * remove the file a first request's run — started, not yet executed — has yet to read (it failed
 * before the fix: the twin's cleanup deleted the shared file and the first run ended NOT_FOUND).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { uploadDirOf } from '../../src/config';
import { createApiTestStack, type ApiTestStack } from '../helpers/api';

jest.setTimeout(120_000);

let t: ApiTestStack;
beforeAll(async () => {
  t = await createApiTestStack();
  await t.stack.addMount('docs');
});
afterAll(() => t?.teardown());

it("a refused twin upload leaves the first run's source in place, and the first run commits", async () => {
  // No worker: the first run is started and waits, its source not yet read.
  await t.stack.worker!.shutdown();
  const body = 'shared body';
  const first = await t.call('/v1/mounts/docs/files/held.txt', { method: 'PUT', body, headers: { 'idempotency-key': 'twin-k1', prefer: 'respond-async' } });
  expect(first.status).toBe(202);
  const dir = uploadDirOf(t.stack.config);
  const files = (await fs.readdir(dir)).filter((f) => !f.endsWith('.json'));
  expect(files).toHaveLength(1);

  const twin = await t.call('/v1/mounts/docs/files/other.txt', { method: 'PUT', body, headers: { 'idempotency-key': 'twin-k1' } });
  expect(twin.status).toBe(422);
  expect(((await twin.json()) as { code: string }).code).toBe('IDEMPOTENCY_KEY_REUSED');
  // The first run (not yet executed: no worker) still has its source.
  expect((await fs.readdir(dir)).filter((f) => !f.endsWith('.json'))).toEqual(files);

  await t.stack.startWorker();
  const { workflowId } = (await first.json()) as { workflowId: string };
  const result = (await t.stack.client.handleOf(workflowId).result()) as { status: string };
  expect(result.status).toBe('COMMITTED');
  expect(await fs.readFile(path.join(t.stack.tmp, 'mounts', 'docs', 'held.txt'), 'utf8')).toBe(body);
});
