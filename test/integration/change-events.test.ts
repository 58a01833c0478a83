/**
 * Change events on Redis (real Redis, Temporal and Postgres): one event per committed mutation on
 * `filestore:changes`, none for failed ones or for a replay of a committed key, and a publish that
 * fails is retried by Temporal until it lands. The channel is shared by every test file running
 * against the same Redis, so events are filtered by this file's unique mount id.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createActivities } from '../../activities';
import { createNotifyActivities } from '../../activities/notify';
import { CHANGES_CHANNEL, type ChangeEvent } from '../../src/change-events';
import type { MutationResult } from '../../src/mutations';
import { openRedis } from '../../src/worker';
import { createTestStack, type TestStack } from '../helpers/stack';

const MOUNT = `events-${randomBytes(4).toString('hex')}`;

let stack: TestStack;
let sub: Redis;
const events: ChangeEvent[] = [];
const waiters: Array<() => void> = [];

beforeAll(async () => {
  stack = await createTestStack();
  await stack.addMount(MOUNT);
  sub = new Redis(stack.config.redisUrl);
  sub.on('message', (channel: string, message: string) => {
    if (channel !== CHANGES_CHANNEL) return;
    const event = JSON.parse(message) as ChangeEvent;
    if (event.mountId !== MOUNT) return;
    events.push(event);
    for (const wake of waiters.splice(0)) wake();
  });
  await sub.subscribe(CHANGES_CHANNEL);
});
afterAll(async () => {
  await sub?.quit();
  await stack?.teardown();
});

/** Resolves once an event of this journal entry arrived (the workflow returns after the PUBLISH). */
async function eventOf(journalId: string, timeoutMs = 10_000): Promise<ChangeEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = events.find((e) => e.journalId === journalId);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no change event for journal entry ${journalId}`);
    await new Promise<void>((resolve) => {
      waiters.push(resolve);
      setTimeout(resolve, 200);
    });
  }
}

/** A committed mkdir whose event, once received, proves every earlier publish was delivered too (Pub/Sub keeps order). */
async function barrier(): Promise<void> {
  const r = await (await stack.client.mkdir(MOUNT, `barrier-${randomBytes(4).toString('hex')}`)).result();
  await eventOf(r.journalId);
}

function expectedEvent(r: MutationResult, version: number | null): ChangeEvent {
  return {
    mountId: MOUNT,
    path: r.path,
    targetPath: r.targetPath,
    op: r.op,
    version,
    journalId: r.journalId,
    workflowId: r.workflowId,
    committedAt: r.committedAt,
  };
}

test('put, mkdir, move, copy, overwrite and delete each publish exactly one event with the committed fields', async () => {
  const start = events.length;
  const put = await (await stack.client.put(MOUNT, 'a.txt', { content: 'alpha' })).result();
  const mkdir = await (await stack.client.mkdir(MOUNT, 'dir')).result();
  const move = await (await stack.client.move(MOUNT, 'a.txt', 'dir/a.txt')).result();
  const copy = await (await stack.client.copy(MOUNT, 'dir/a.txt', 'b.txt')).result();
  const overwrite = await (await stack.client.put(MOUNT, 'b.txt', { content: 'beta' }, { overwrite: true })).result();
  const del = await (await stack.client.remove(MOUNT, 'dir', { recursive: true })).result();
  const committed = [put, mkdir, move, copy, overwrite, del];
  await eventOf(del.journalId);

  expect(events.slice(start)).toEqual([
    expectedEvent(put, 1),
    expectedEvent(mkdir, 1),
    { ...expectedEvent(move, 1), path: 'a.txt', targetPath: 'dir/a.txt' },
    { ...expectedEvent(copy, 1), path: 'dir/a.txt', targetPath: 'b.txt' },
    expectedEvent(overwrite, 2),
    { ...expectedEvent(del, null), op: 'delete', path: 'dir' },
  ]);
  // The version in the event is the one the commit recorded for the node.
  expect(committed.map((r) => r.node?.version ?? null)).toEqual([1, 1, 1, 1, 2, null]);
  expect((await stack.client.getNode(MOUNT, 'b.txt'))?.version).toBe(2);
});

test('failed and refused mutations publish nothing', async () => {
  await (await stack.client.put(MOUNT, 'exists.txt', { content: 'x' })).result();
  await barrier();
  const start = events.length;

  // Fails in execute (after the journal entry was written): compensated, journal FAILED.
  const exists = await stack.client.put(MOUNT, 'exists.txt', { content: 'y' });
  await expect(exists.result()).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
  const missing = await stack.client.remove(MOUNT, 'missing.txt');
  await expect(missing.result()).rejects.toMatchObject({ code: 'NOT_FOUND' });
  // Refused by beginJournal before any journal entry (a path moved into itself).
  const intoItself = await stack.client.move(MOUNT, 'exists.txt', 'exists.txt/inside');
  await expect(intoItself.result()).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
  expect((await stack.client.getJournalEntry(exists.idempotencyKey))?.status).toMatch(/^(FAILED|ROLLED_BACK)$/);

  await barrier();
  const failedIds = [exists.workflowId, missing.workflowId, intoItself.workflowId];
  expect(events.slice(start).filter((e) => failedIds.includes(e.workflowId))).toEqual([]);
  expect(events.slice(start)).toHaveLength(1); // the barrier's
});

test('a replay of a committed idempotency key answers from the journal without a second event', async () => {
  const key = `replay-${randomBytes(4).toString('hex')}`;
  const first = await (await stack.client.put(MOUNT, 'replayed.txt', { content: 'once' }, { idempotencyKey: key })).result();
  await eventOf(first.journalId);
  const again = await (await stack.client.put(MOUNT, 'replayed.txt', { content: 'once' }, { idempotencyKey: key })).result();
  expect(again).toEqual(first);
  await barrier();
  expect(events.filter((e) => e.journalId === first.journalId)).toHaveLength(1);
});

test('a Redis client with the worker options fails a publish fast while Redis is unreachable', async () => {
  const dead = openRedis('redis://127.0.0.1:1');
  try {
    const started = Date.now();
    await expect(dead.publish(CHANGES_CHANNEL, '{}')).rejects.toThrow(/max retries per request/i);
    // Well inside the notify activity's 10 s attempt bound: Temporal's retry takes over, not a hang.
    expect(Date.now() - started).toBeLessThan(5_000);
  } finally {
    dead.disconnect();
  }
});

test('a publish Redis does not take fails as SERVICE_UNAVAILABLE, retryable: never bounded like an unknown error', async () => {
  const dead = openRedis('redis://127.0.0.1:1');
  try {
    const { publishChange } = createNotifyActivities({ redis: dead });
    const result = { status: 'COMMITTED', journalId: 'j', workflowId: 'w', op: 'write', mountId: MOUNT, path: 'p', targetPath: null, node: null, nodesAffected: 1, bytesWritten: 1, committedAt: new Date().toISOString() } as const;
    await expect(publishChange({ result })).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE', retryable: true });
  } finally {
    dead.disconnect();
  }
});

test('a publish that fails is retried by Temporal until it lands: the workflow completes after it, with one event', async () => {
  let attempts = 0;
  // Last: restarts this file's worker with a publish that fails its first two attempts before reaching Redis.
  await stack.startWorker((deps) => {
    const real = createNotifyActivities({ redis: deps.redis });
    return {
      ...createActivities(deps),
      publishChange: async (input: Parameters<typeof real.publishChange>[0]) => {
        attempts += 1;
        if (attempts <= 2) throw new Error(`injected: redis refused publish attempt ${attempts}`);
        return real.publishChange(input);
      },
    };
  });
  const r = await (await stack.client.put(MOUNT, 'retried.txt', { content: 'eventually' })).result();
  expect(attempts).toBe(3);
  // The workflow only returned after the third attempt published, so the event is on its way or here.
  expect(await eventOf(r.journalId)).toEqual(expectedEvent(r, 1));
  await barrier();
  expect(events.filter((e) => e.journalId === r.journalId)).toHaveLength(1);
  expect((await stack.client.getJournalEntry(r.journalId))?.status).toBe('COMMITTED');
});
