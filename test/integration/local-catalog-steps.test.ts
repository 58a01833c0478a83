/**
 * The catalog-only steps (begin, commit, publish) run as local activities (workflows/workflow-
 * common.ts, runCatalogStep): read from the real history of real mutations that a mutation is 4
 * workflow tasks and 3 activity tasks — only the backend steps go through a task queue —, that a
 * typed failure of a local step is the step's answer (not retried again through the queue), and
 * that a local step still failing when its local time is up continues through the queue with the
 * unbounded retry it always had, so a committed mutation's change event still lands, once.
 */
import { randomBytes } from 'node:crypto';
import { temporal } from '@temporalio/proto';
import { Redis } from 'ioredis';
import { createActivities } from '../../activities';
import { CHANGES_CHANNEL, type ChangeEvent } from '../../src/change-events';
import { mountTaskQueue } from '../../src/config';
import { ServiceUnavailableError } from '../../src/errors';
import { createTestStack, type TestStack } from '../helpers/stack';

const MOUNT = `local-steps-${randomBytes(4).toString('hex')}`;
const E = temporal.api.enums.v1.EventType;

let stack: TestStack;
let sub: Redis;
const events: ChangeEvent[] = [];
/** Until when (ms since epoch) the injected publish refuses, as Redis would while it is down. */
let publishRefusedUntil = 0;
let publishAttempts = 0;

beforeAll(async () => {
  stack = await createTestStack({
    activities: (deps) => {
      const real = createActivities(deps);
      return {
        ...real,
        publishChange: async (input: Parameters<typeof real.publishChange>[0]) => {
          if (input.result.mountId === MOUNT && input.result.path.startsWith('refused/')) {
            publishAttempts += 1;
            if (Date.now() < publishRefusedUntil) throw new ServiceUnavailableError('redis', 'injected: Redis refuses the PUBLISH');
          }
          return real.publishChange(input);
        },
      };
    },
  });
  await stack.addMount(MOUNT);
  sub = new Redis(stack.config.redisUrl);
  sub.on('message', (channel: string, message: string) => {
    const event = JSON.parse(message) as ChangeEvent;
    if (channel === CHANGES_CHANNEL && event.mountId === MOUNT) events.push(event);
  });
  await sub.subscribe(CHANGES_CHANNEL);
});
afterAll(async () => {
  await sub?.quit();
  await stack?.teardown();
});

/** What a run's history shows: workflow tasks, activities through a queue (name, queue), local activities (name). */
async function roundTrips(workflowId: string) {
  const history = (await stack.client.temporal.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const queued = history
    .filter((e) => e.eventType === E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    .map((e) => ({ name: e.activityTaskScheduledEventAttributes!.activityType!.name, queue: e.activityTaskScheduledEventAttributes!.taskQueue!.name }));
  const local = history
    .filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity')
    .map((e) => (JSON.parse(Buffer.from(e.markerRecordedEventAttributes!.details!.data!.payloads![0].data!).toString('utf8')) as { activity_type: string }).activity_type);
  const workflowTasks = history.filter((e) => e.eventType === E.EVENT_TYPE_WORKFLOW_TASK_STARTED).length;
  return { queued, local, workflowTasks };
}

test('a write is 4 workflow tasks and 3 activity tasks: begin, commit and publish run locally, the backend steps on the mount queue', async () => {
  const h = await stack.client.put(MOUNT, 'a.txt', { content: 'alpha' });
  expect(await h.result()).toMatchObject({ status: 'COMMITTED' });
  const trips = await roundTrips(h.workflowId);
  const mountQueue = mountTaskQueue(stack.config, MOUNT);
  expect(trips.queued).toEqual([
    { name: 'executeMutation', queue: mountQueue },
    { name: 'verifyMutation', queue: mountQueue },
    { name: 'finalizeMutation', queue: mountQueue },
  ]);
  expect(trips.local).toEqual(['beginJournal', 'commitMutation', 'publishChange']);
  // [begin → schedule execute] [schedule verify] [commit → schedule finalize] [publish → complete]
  expect(trips.workflowTasks).toBe(4);
});

test('a commit that may rewrite a whole subtree (recursive delete, directory move) goes through the queue; a file move commits locally', async () => {
  await (await stack.client.put(MOUNT, 'tree/sub/x.txt', { content: 'x' })).result();
  await (await stack.client.put(MOUNT, 'tree/y.txt', { content: 'y' })).result();
  const fileMove = await stack.client.move(MOUNT, 'tree/y.txt', 'y.txt');
  await fileMove.result();
  expect((await roundTrips(fileMove.workflowId)).local).toEqual(['beginJournal', 'commitMutation', 'publishChange']);
  const dirMove = await stack.client.move(MOUNT, 'tree', 'moved-tree');
  await dirMove.result();
  const moved = await roundTrips(dirMove.workflowId);
  expect(moved.local).toEqual(['beginJournal', 'publishChange']);
  expect(moved.queued.map((a) => a.name)).toEqual(['executeMutation', 'verifyMutation', 'commitMutation', 'finalizeMutation']);
  expect(moved.queued[2].queue).toBe(stack.config.taskQueue);
  const del = await stack.client.remove(MOUNT, 'moved-tree', { recursive: true });
  await del.result();
  const deleted = await roundTrips(del.workflowId);
  expect(deleted.local).toEqual(['beginJournal', 'publishChange']);
  expect(deleted.queued.map((a) => a.name)).toEqual(['executeMutation', 'verifyMutation', 'commitMutation', 'finalizeMutation']);
  expect(await stack.client.getNode(MOUNT, 'moved-tree/sub/x.txt')).toMatchObject({ state: 'DELETED' });
});

test('a typed failure of a local step is its answer: the refused begin is not tried again through the queue', async () => {
  const key = `reused-${randomBytes(4).toString('hex')}`;
  await (await stack.client.put(MOUNT, 'b.txt', { content: 'first' }, { idempotencyKey: key })).result();
  const second = await stack.client.put(MOUNT, 'b.txt', { content: 'different' }, { idempotencyKey: key });
  await expect(second.result()).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  const trips = await roundTrips(second.workflowId);
  expect(trips.local).toEqual(['beginJournal']);
  expect(trips.queued).toEqual([]);
});

test('a publish still refused when its local attempts run out continues through the queue and lands once', async () => {
  // Past the local bound (LOCAL_ACTIVITY_PRESETS.notify: 6 attempts, ~31 s) but not for ever.
  publishRefusedUntil = Date.now() + 40_000;
  const h = await stack.client.put(MOUNT, 'refused/c.txt', { content: 'late event' });
  const result = await h.result();
  expect(result).toMatchObject({ status: 'COMMITTED' });
  expect(Date.now()).toBeGreaterThanOrEqual(publishRefusedUntil);
  // 6 local attempts, then the queued ones until Redis takes it.
  expect(publishAttempts).toBeGreaterThan(6);
  const trips = await roundTrips(h.workflowId);
  // The local attempts are recorded (as failed) once; the queued publish is what landed.
  expect(trips.local).toEqual(['beginJournal', 'commitMutation', 'publishChange']);
  expect(trips.queued.map((a) => a.name)).toEqual(['executeMutation', 'verifyMutation', 'finalizeMutation', 'publishChange']);
  expect(trips.queued.at(-1)!.queue).toBe(stack.config.taskQueue);
  // Only the last attempt reached Redis: exactly one event.
  const deadline = Date.now() + 10_000;
  while (!events.some((e) => e.journalId === result.journalId) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  expect(events.filter((e) => e.journalId === result.journalId)).toHaveLength(1);
  expect((await stack.client.getJournalEntry(h.idempotencyKey))?.status).toBe('COMMITTED');
}, 180_000);
