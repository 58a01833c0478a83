/**
 * Graceful shutdown: `close()` while an upload is mid-body lets it finish — the body arrives, the
 * mutation commits, the client gets its 200 — while new connections are no longer accepted.
 */
import http from 'node:http';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createApiTestStack, type ApiTestStack } from '../helpers/api';

jest.setTimeout(120_000);

let t: ApiTestStack;
beforeAll(async () => {
  t = await createApiTestStack();
  await t.stack.addMount('docs');
});
afterAll(async () => {
  await t?.api.close();
  await t?.stack.teardown();
});

it('an upload in flight at close() completes and commits; a new connection is refused', async () => {
  const half = Buffer.alloc(512 * 1024, 'a');
  const url = new URL('/v1/mounts/docs/files/inflight.bin', t.url);
  let closing: Promise<void> | null = null;
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(url, {
      method: 'PUT',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-length': half.length * 2, 'content-type': 'application/octet-stream' },
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.write(half);
    // The second half only after the server began closing.
    void (async () => {
      await sleep(300);
      closing = t.api.close();
      await sleep(300);
      req.end(half);
    })();
  });

  const res = await answer;
  expect(res.status).toBe(200);
  expect((JSON.parse(res.body) as { status: string }).status).toBe('COMMITTED');
  expect((await fs.stat(path.join(t.stack.tmp, 'mounts', 'docs', 'inflight.bin'))).size).toBe(half.length * 2);
  await closing;
  await expect(fetch(`${t.url}/healthz`)).rejects.toThrow();
});
