/** First contact: upload, download, list, stat and a problem, against a real API + worker. */
import { createApiTestStack, type ApiTestStack } from '../helpers/api';

jest.setTimeout(120_000);

let t: ApiTestStack;
beforeAll(async () => {
  t = await createApiTestStack();
  await t.stack.addMount('docs');
});
afterAll(() => t?.teardown());

it('puts and gets a file', async () => {
  const put = await t.call('/v1/mounts/docs/files/a/b.txt', { method: 'PUT', body: 'hello api', headers: { 'content-type': 'application/octet-stream' } });
  const result = (await put.json()) as { status: string; node: { sha256: string } };
  expect(put.status).toBe(200);
  expect(result.status).toBe('COMMITTED');
  const get = await t.call('/v1/mounts/docs/files/a/b.txt');
  expect(get.status).toBe(200);
  expect(await get.text()).toBe('hello api');
  expect(get.headers.get('etag')).toBe(`"${result.node.sha256}"`);
  const head = await t.call('/v1/mounts/docs/files/a/b.txt', { method: 'HEAD' });
  expect(head.status).toBe(200);
  expect(head.headers.get('content-length')).toBe('9');
  const list = await t.call('/v1/mounts/docs/list/a');
  expect(((await list.json()) as { nodes: { path: string }[] }).nodes.map((n) => n.path)).toEqual(['a/b.txt']);
  const missing = await t.call('/v1/mounts/docs/files/nope');
  expect(missing.status).toBe(404);
  expect(missing.headers.get('content-type')).toContain('application/problem+json');
  expect(((await missing.json()) as { code: string }).code).toBe('NOT_FOUND');
  const noToken = await t.call('/v1/mounts/docs/files/a/b.txt', { token: null });
  expect(noToken.status).toBe(401);
});
