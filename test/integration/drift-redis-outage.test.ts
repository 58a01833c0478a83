/**
 * Redis stopped for a while and started again: the watcher keeps running, and the changes made
 * meanwhile are detected once Redis is back (buffered and delivered, or rescanned) — nothing is
 * silently lost. Uses a private redis-server on its own port, so the machine's Redis is untouched.
 * drift-redis-outage.parcel.test.ts runs it again on @parcel/watcher.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { and, eq } from 'drizzle-orm';
import { nodes } from '../../db/schema';
import { loadConfig } from '../../src/config';
import { findRedisServer, startPrivateRedis, type PrivateRedis } from '../../src/dev/private-redis';
import { startWatcherService, type RunningWatcher } from '../../src/watcher/watcher-service';
import { createTestStack, type TestStack } from '../helpers/stack';
import { WATCH_BACKEND } from '../helpers/watch-backend';
import { waitFor } from '../helpers/wait';
import { freePort } from '../../src/dev/free-port';

let stack: TestStack;
let redis: PrivateRedis | null = null;
let watcher: RunningWatcher | null = null;



afterAll(async () => {
  await watcher?.shutdown();
  await redis?.stop();
  await stack?.teardown();
});

test('changes made while Redis is down are detected after it comes back', async () => {
  const binary = findRedisServer();
  if (!binary) throw new Error('redis-server is required for this test (apt-get install redis-server)');
  stack = await createTestStack({ worker: false });
  const redisUrl = `redis://127.0.0.1:${await freePort()}`;
  const logFile = path.join(stack.tmp, 'redis.log');
  redis = await startPrivateRedis(redisUrl, binary, logFile);

  const dir = path.join(stack.tmp, 'mounts', 'outage');
  await fs.mkdir(dir, { recursive: true });
  await stack.client.addLocalMount({ id: 'outage', rootPath: dir, watch: true });
  const root = await fs.realpath(dir);
  const config = loadConfig(process.env, {
    ...stack.config,
    redisUrl,
    enableWatchers: true,
    watchBackend: WATCH_BACKEND,
    driftQueue: `outage-${randomBytes(3).toString('hex')}`,
    driftDebounceMs: 200,
    driftMaxWaitMs: 500,
  });
  watcher = await startWatcherService(config, { metrics: false });
  const state = async (p: string) =>
    (await stack.client.db.select({ state: nodes.state }).from(nodes).where(and(eq(nodes.mountId, 'outage'), eq(nodes.path, p))))[0]?.state;

  // Redis up: detection works.
  await fs.writeFile(path.join(root, 'before.txt'), 'while redis is up');
  await waitFor('before.txt INCONSISTENT', async () => (await state('before.txt')) === 'INCONSISTENT', 10_000);

  // Redis down (killed, losing everything it held), changes made meanwhile.
  redis.process.kill('SIGKILL');
  await new Promise((r) => redis!.process.once('exit', r));
  await fs.writeFile(path.join(root, 'during-1.txt'), 'while redis is down');
  await fs.mkdir(path.join(root, 'during-dir'));
  await fs.writeFile(path.join(root, 'during-dir', 'during-2.txt'), 'also while down');
  // Longer than the debounce and max wait: the watcher tries to enqueue, fails, and keeps the changes.
  await new Promise((r) => setTimeout(r, 2000));
  expect(await state('during-1.txt')).toBeUndefined();
  expect(watcher.watchedMounts()).toEqual(['outage']);

  // Redis back on the same port, empty.
  redis = await startPrivateRedis(redisUrl, binary, logFile);
  for (const p of ['during-1.txt', 'during-dir', 'during-dir/during-2.txt']) {
    await waitFor(`${p} INCONSISTENT after Redis came back`, async () => (await state(p)) === 'INCONSISTENT', 30_000);
  }

  // And live detection carries on.
  await fs.writeFile(path.join(root, 'after.txt'), 'redis is back');
  await waitFor('after.txt INCONSISTENT', async () => (await state('after.txt')) === 'INCONSISTENT', 10_000);
}, 120_000);
