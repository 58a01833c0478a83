/**
 * The worker's janitor sweeps the upload area too: an SDK stream put whose caller never awaited
 * the result (or an API that crashed) leaves its file only until the grace period has passed and
 * its run is no longer going.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FencePool } from '../../activities/tx-fence';
import { uploadDirOf } from '../../src/config';
import { ExecutorRegistry } from '../../src/executor-registry';
import { runJanitorPass } from '../../src/janitor';
import { UploadArea } from '../../src/operations/upload-area';
import { createTestStack, type TestStack } from '../helpers/stack';

jest.setTimeout(120_000);

let stack: TestStack;
let fences: FencePool;
beforeAll(async () => {
  stack = await createTestStack({ config: { inlineMaxBytes: 1024 } });
  await stack.addMount('docs');
  fences = new FencePool(stack.config.databaseUrl, { idleTimeoutMs: stack.config.fenceIdleTimeoutMs });
});
afterAll(async () => {
  await fences?.close();
  await stack?.teardown();
});

it('removes the upload of a finished run nobody awaited, after the grace period', async () => {
  const handle = await stack.client.put('docs', 'fire-and-forget.bin', { stream: Readable.from([randomBytes(64 * 1024)]) });
  // Not awaited through the handle: wait for the run some other way, as a service that forgot would not.
  await stack.client.handleOf(handle.workflowId).result();
  const dir = uploadDirOf(stack.config);
  expect((await fs.readdir(dir)).filter((f) => !f.endsWith('.json'))).toHaveLength(1);
  const janitor = (graceMs: number) =>
    runJanitorPass({
      db: stack.client.db,
      executors: new ExecutorRegistry(stack.client.db),
      fences,
      temporal: stack.client.temporal,
      serves: () => true,
      graceMs: 60_000,
      uploads: { area: new UploadArea(dir), graceMs },
    });
  await janitor(3_600_000);
  expect((await fs.readdir(dir)).filter((f) => !f.endsWith('.json'))).toHaveLength(1);
  const old = new Date(Date.now() - 10_000);
  for (const f of await fs.readdir(dir)) await fs.utimes(path.join(dir, f), old, old);
  await janitor(1000);
  expect(await fs.readdir(dir)).toEqual([]);
});
