/**
 * Point 9: routing comes from the catalog, and a host serves a local mount only where the mount's
 * identity marker is. A request cannot name the queue its mount's activities run on; an empty
 * mount point (a disk that did not mount) is never served or written; another mount row with the
 * same root path is not served from the first one's marker.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { NativeConnection, Worker } from '@temporalio/worker';
import { ApplicationFailure } from '@temporalio/common';
import { eq } from 'drizzle-orm';
import pino from 'pino';
import { backendMounts, journal } from '../../db/schema';
import { markLocalMount } from '../../src/catalog/mounts';
import { main } from '../../src/cli/main';
import { mountTaskQueue } from '../../src/config';
import { ExecutorRegistry, MARKER_RECHECK_MS } from '../../src/executor-registry';
import { MOUNT_MARKER } from '../../src/paths';
import { startWorker } from '../../src/worker';
import { stackEnv } from '../helpers/cli';
import { listTree } from '../helpers/files';
import { createTestStack, type TestStack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';

let stack: TestStack;

beforeAll(async () => {
  stack = await createTestStack();
});
afterAll(async () => stack?.teardown());

function served(): string[] {
  return stack.worker!.servedMounts();
}

test('mount add writes the identity marker (0644, this mount\'s id and instance)', async () => {
  const root = await stack.addMount('marked');
  const [row] = await stack.client.db.select().from(backendMounts).where(eq(backendMounts.id, 'marked'));
  const st = await fs.stat(path.join(root, MOUNT_MARKER));
  expect(st.mode & 0o7777).toBe(0o644);
  expect(JSON.parse(await fs.readFile(path.join(root, MOUNT_MARKER), 'utf8'))).toEqual({ mountId: 'marked', instanceId: row.instanceId });
  // Only the marker: no temporary sibling left behind.
  expect(await fs.readdir(root)).toEqual([MOUNT_MARKER]);
  expect(served()).toContain('marked');
  // Filestore itself can never write, move or delete it.
  await expect(stack.client.put('marked', MOUNT_MARKER, { content: '{}' }, { overwrite: true })).rejects.toMatchObject({ code: 'RESERVED_PATH' });
  await expect(stack.client.remove('marked', MOUNT_MARKER)).rejects.toMatchObject({ code: 'RESERVED_PATH' });
});

test('(a) a mountTaskQueue in the request is ignored: the activities run on the mount\'s queue from the catalog', async () => {
  const root = await stack.addMount('routed');
  // A rogue worker polls the queue the request names; it must never see an activity.
  const rogueQueue = `${stack.config.taskQueue}-rogue`;
  const rogueCalls: string[] = [];
  const rogueActivity = (name: string) => async () => {
    rogueCalls.push(name);
    throw ApplicationFailure.nonRetryable(`rogue worker ran ${name}`);
  };
  const connection = await NativeConnection.connect({ address: stack.config.temporalAddress });
  const rogue = await Worker.create({
    connection,
    namespace: stack.config.temporalNamespace,
    taskQueue: rogueQueue,
    activities: Object.fromEntries(
      ['executeMutation', 'verifyMutation', 'compensateMutation', 'finalizeMutation', 'commitMutation'].map((n) => [n, rogueActivity(n)]),
    ),
  });
  const rogueRun = rogue.run();
  try {
    const key = randomUUID();
    const workflowId = `routing-raw-${key}`;
    const handle = await stack.client.temporal.workflow.start('mutationWorkflow', {
      taskQueue: stack.config.taskQueue,
      workflowId,
      args: [{ idempotencyKey: key, mountId: 'routed', mountTaskQueue: rogueQueue, op: 'mkdir', path: 'dir' }],
    });
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      handle.result(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('the mutation did not finish within 60 s')), 60_000);
      }),
    ]).finally(() => clearTimeout(timer));
    expect(result).toMatchObject({ status: 'COMMITTED', path: 'dir' });
    expect((await fs.stat(path.join(root, 'dir'))).isDirectory()).toBe(true);
    expect(rogueCalls).toEqual([]);

    // The backend activities were scheduled on the mount's own queue, nothing on the rogue one.
    const history = await handle.fetchHistory();
    const scheduled = (history.events ?? [])
      .map((e) => e.activityTaskScheduledEventAttributes)
      .filter((a) => !!a)
      .map((a) => ({ name: a!.activityType?.name, queue: a!.taskQueue?.name }));
    const mountQueue = mountTaskQueue(stack.config, 'routed');
    expect(scheduled.filter((a) => a.name === 'executeMutation' || a.name === 'verifyMutation' || a.name === 'finalizeMutation')).toEqual([
      { name: 'executeMutation', queue: mountQueue },
      { name: 'verifyMutation', queue: mountQueue },
      { name: 'finalizeMutation', queue: mountQueue },
    ]);
    for (const a of scheduled) expect([stack.config.taskQueue, mountQueue]).toContain(a.queue);
  } finally {
    rogue.shutdown();
    await rogueRun;
    await connection.close();
  }
});

test('(b) an empty mount point is not served; the mutation waits and completes once the disk is back', async () => {
  const root = await stack.addMount('disk');
  expect(served()).toContain('disk');

  // The disk "fails to mount": the mount point is an empty directory.
  const away = `${root}.unmounted`;
  await fs.rename(root, away);
  await fs.mkdir(root);
  await stack.worker!.refreshMounts();
  expect(served()).not.toContain('disk');

  const handle = await stack.client.put('disk', 'sub/file.txt', { content: 'on the real disk' });
  await waitFor('the PENDING entry', async () => (await stack.client.listJournal({ status: 'PENDING', mountId: 'disk' })).length > 0, 30_000);
  // Time for an execute attempt to land somewhere if anything served the queue.
  await new Promise((r) => setTimeout(r, 3_000));
  expect(await listTree(root)).toEqual([]);
  expect(await listTree(away)).toEqual([MOUNT_MARKER]);
  const [entry] = await stack.client.listJournal({ mountId: 'disk' });
  expect(entry.status).toBe('PENDING');

  // The disk is back.
  await fs.rmdir(root);
  await fs.rename(away, root);
  await stack.worker!.refreshMounts();
  expect(served()).toContain('disk');
  const result = await handle.result();
  expect(result).toMatchObject({ status: 'COMMITTED', path: 'sub/file.txt' });
  expect(await fs.readFile(path.join(root, 'sub/file.txt'), 'utf8')).toBe('on the real disk');
});

test('(b) the executor registry refuses a local mount whose marker went away (MOUNT_UNAVAILABLE, retryable), and recovers', async () => {
  const root = await stack.addMount('flaky');
  const registry = new ExecutorRegistry(stack.client.db);
  await registry.get('flaky');
  const marker = await fs.readFile(path.join(root, MOUNT_MARKER));
  await fs.rm(path.join(root, MOUNT_MARKER));
  await new Promise((r) => setTimeout(r, MARKER_RECHECK_MS + 200));
  await expect(registry.get('flaky')).rejects.toMatchObject({ code: 'MOUNT_UNAVAILABLE', retryable: true });
  // A fresh registry does not trust the directory either.
  await expect(new ExecutorRegistry(stack.client.db).get('flaky')).rejects.toMatchObject({ code: 'MOUNT_UNAVAILABLE' });
  // A marker of some other mount is no better.
  await fs.writeFile(path.join(root, MOUNT_MARKER), JSON.stringify({ mountId: 'other', instanceId: randomUUID() }));
  await expect(registry.get('flaky')).rejects.toMatchObject({ code: 'MOUNT_UNAVAILABLE' });
  await fs.writeFile(path.join(root, MOUNT_MARKER), marker);
  await expect(registry.get('flaky')).resolves.toBeDefined();
});

test('(c) another mount row with the same root is not served from the first one\'s marker', async () => {
  const root = await stack.addMount('first');
  // mount add refuses outright: one directory cannot be two mounts.
  await expect(stack.client.addLocalMount({ id: 'second', rootPath: root })).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
  expect(await stack.client.db.select().from(backendMounts).where(eq(backendMounts.id, 'second'))).toEqual([]);

  // A row that got there anyway (another host registered its own disk under the same path).
  await stack.client.db.insert(backendMounts).values({ id: 'twin', kind: 'local', rootPath: root, options: {} });
  await stack.worker!.refreshMounts();
  expect(served()).toContain('first');
  expect(served()).not.toContain('twin');
  await expect(new ExecutorRegistry(stack.client.db).get('twin')).rejects.toMatchObject({ code: 'MOUNT_UNAVAILABLE' });
  // Nor can `mount mark` hand the first one's root to the twin.
  await expect(markLocalMount(stack.client.db, 'twin')).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
  await stack.worker!.refreshMounts();
  expect(served()).toContain('first');

  // The same id re-registered (new instance): the old marker no longer proves anything…
  await stack.client.db.update(backendMounts).set({ instanceId: randomUUID(), updatedAt: new Date() }).where(eq(backendMounts.id, 'first'));
  await stack.worker!.refreshMounts();
  expect(served()).not.toContain('first');
  // …until the operator marks it on the host whose disk it is (`filestore mount mark first`).
  const lines: string[] = [];
  const saved = { ...process.env };
  Object.assign(process.env, stackEnv(stack.config));
  try {
    await main(['node', 'filestore', 'mount', 'mark', 'first'], (l) => lines.push(l));
  } finally {
    process.env = saved;
  }
  expect(lines).toEqual([`mount first → ${root}: identity marker written`]);
  await stack.worker!.refreshMounts();
  expect(served()).toContain('first');
  await (await stack.client.mkdir('first', 'after-mark')).result();
  expect((await fs.stat(path.join(root, 'after-mark'))).isDirectory()).toBe(true);
  expect(await stack.client.db.select().from(journal).where(eq(journal.mountId, 'twin'))).toEqual([]);
});

test('a worker warns once per unmarked mount, naming the fix', async () => {
  const root = await stack.addMount('quiet');
  await fs.rm(path.join(root, MOUNT_MARKER));
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
  const extra = await startWorker(stack.config, { workflowBundle: { codePath: process.env.FILESTORE_TEST_WORKFLOW_BUNDLE! }, metrics: false, logger });
  try {
    await extra.refreshMounts();
    await extra.refreshMounts();
    expect(extra.servedMounts()).not.toContain('quiet');
    const warnings = lines.map((l) => JSON.parse(l) as { mount?: string; msg: string }).filter((l) => l.mount === 'quiet');
    expect(warnings).toHaveLength(1);
    expect(warnings[0].msg).toContain('filestore mount mark quiet');
  } finally {
    await extra.shutdown();
  }
});
