/**
 * Points 11 and 12 of issue 6 — drift stays honest, on real disk, Postgres, Redis (BullMQ) and
 * Temporal:
 *  - one entry that cannot be read fails neither a full scan of its mount nor a check batch: it
 *    is reported once, as `unreadable`, and every other drift is still recorded (11);
 *  - parent directories created by a write that then rolls back never become drift (12a);
 *  - the cross-device move's scratch names are never listed nor reported (12b).
 *
 * The worker runs as root, and root reads every mode-000 directory (CAP_DAC_OVERRIDE). So the
 * unreadable cases use entries even root cannot read — a host path longer than PATH_MAX answers
 * ENAMETOOLONG to everybody — and, where `setpriv` can drop root's DAC capabilities, the drift
 * job runs in a child process without them, for which a mode-000 directory really is EACCES.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Job } from 'bullmq';
import { and, eq } from 'drizzle-orm';
import { driftEvents, journal, nodes } from '../../db/schema';
import { createActivities } from '../../activities';
import { loadConfig, type Config } from '../../src/config';
import { CommitError } from '../../src/errors';
import { type Executor, listAll } from '../../src/executors/executor';
import { crossDeviceScratch, isFilestoreScratchName } from '../../src/executors/local/local-transfer';
import { ExecutorRegistry } from '../../src/executor-registry';
import { runDriftJob } from '../../src/watcher/drift-processor';
import type { DriftJobSpec } from '../../src/watcher/drift-plan';
import { startWatcherService, type RunningWatcher } from '../../src/watcher/watcher-service';
import { createTestStack, type TestStack } from '../helpers/stack';
import { WATCH_BACKENDS } from '../helpers/watch-backend';
import { waitFor } from '../helpers/wait';
import { dropQueueKeys } from '../helpers/redis';

const run = promisify(execFile);
const MOUNT = 'honest';

let stack: TestStack;
let root: string;
let config: Config;
let watcher: RunningWatcher | null = null;
/** Test seam in the worker's activities: runs before verify of a request whose path starts with `gate/`. */
let beforeVerify: ((req: { path: string }) => Promise<void>) | null = null;

async function startWatcher(overrides: Partial<Config> = {}): Promise<RunningWatcher> {
  watcher = await startWatcherService({ ...config, ...overrides }, { metrics: false });
  return watcher;
}

async function eventsAt(p: string) {
  return stack.client.db.select().from(driftEvents).where(and(eq(driftEvents.mountId, MOUNT), eq(driftEvents.path, p)));
}
async function allEvents() {
  return stack.client.db.select().from(driftEvents).where(eq(driftEvents.mountId, MOUNT));
}
async function nodeState(p: string): Promise<string | null> {
  const [row] = await stack.client.db.select({ state: nodes.state }).from(nodes).where(and(eq(nodes.mountId, MOUNT), eq(nodes.path, p)));
  return row?.state ?? null;
}
async function clearDrift(): Promise<void> {
  await stack.client.db.delete(driftEvents).where(eq(driftEvents.mountId, MOUNT));
}

/**
 * Adds one drift job to the watcher's real queue and waits until the processor finished it — or
 * until its first attempt failed (BullMQ would retry it with backoff; a job that fails as a whole
 * is exactly what must not happen).
 */
async function runQueued(spec: DriftJobSpec): Promise<{ state: string; returnvalue: unknown; failedReason?: string }> {
  const job: Job = await watcher!.queue.add(spec.kind, spec, { jobId: `t-${randomBytes(6).toString('hex')}` });
  return waitFor(
    `drift job ${spec.kind} to finish`,
    async () => {
      const fresh = await watcher!.queue.getJob(job.id!);
      if (!fresh) return null;
      const state = await fresh.getState();
      if (state === 'completed' || state === 'failed' || fresh.attemptsMade > 0 || fresh.failedReason) {
        return { state: state === 'completed' ? state : 'failed', returnvalue: fresh.returnvalue, failedReason: fresh.failedReason };
      }
      return null;
    },
    20_000,
  );
}

beforeAll(async () => {
  stack = await createTestStack({
    activities: (deps) => {
      const real = createActivities(deps);
      const requestOf = (args: unknown[]) => (args[0] as { request: { path: string } }).request;
      return {
        ...real,
        verifyMutation: (async (...args: unknown[]) => {
          const req = requestOf(args);
          if (req.path.startsWith('gate/') && beforeVerify) await beforeVerify(req);
          return (real.verifyMutation as (...a: unknown[]) => Promise<unknown>)(...args);
        }) as typeof real.verifyMutation,
        // Writes below rollback/ and gate/ reach the disk and are then rolled back by compensation.
        commitMutation: (async (...args: unknown[]) => {
          const req = requestOf(args);
          if (req.path.startsWith('rollback/') || req.path.startsWith('gate/')) throw new CommitError('injected: the catalog refused the commit');
          return (real.commitMutation as (...a: unknown[]) => Promise<unknown>)(...args);
        }) as typeof real.commitMutation,
      };
    },
  });
  const dir = path.join(stack.tmp, 'mounts', MOUNT);
  await fs.mkdir(dir, { recursive: true });
  await stack.client.addLocalMount({ id: MOUNT, rootPath: dir, watch: true });
  await stack.worker!.refreshMounts();
  root = await fs.realpath(dir);
  config = loadConfig(process.env, {
    ...stack.config,
    enableWatchers: false,
    driftQueue: `drift-honest-${randomBytes(4).toString('hex')}`,
    driftDebounceMs: 200,
    driftMaxWaitMs: 600,
    driftRecheckMs: 200,
    driftJobsKept: 50,
    watcherMetricsPort: 0,
  });
}, 60_000);
afterEach(async () => {
  await watcher?.shutdown();
  watcher = null;
  beforeVerify = null;
  // rm(1) walks with openat(), so it removes a tree whose paths exceed PATH_MAX; fs.rm cannot.
  if (root) execFileSync('rm', ['-rf', path.join(root, 'deep')]);
});
afterAll(async () => {
  if (config) await dropQueueKeys(config.redisUrl, config.driftQueue);
  await stack?.teardown();
});

describe('11: unreadable entries are reported, never fail a scan or a check batch', () => {
  /**
   * A directory tree whose deepest entry has a host path over PATH_MAX: `lstat`/`realpath` of it
   * answer ENAMETOOLONG to every user, root included. Its mount path stays under Filestore's own
   * 4096-byte limit, so a check can name it. Created by a relative mkdir from inside its parent.
   */
  async function makeTooDeep(): Promise<string> {
    const segs: string[] = ['deep'];
    while (Buffer.byteLength(segs.join('/')) < 3850) segs.push('d'.repeat(200));
    const parentRel = segs.join('/');
    await fs.mkdir(path.join(root, parentRel), { recursive: true });
    const name = 'x'.repeat(Math.min(255, 4090 - Buffer.byteLength(parentRel) - 1));
    const rel = `${parentRel}/${name}`;
    expect(Buffer.byteLength(rel)).toBeLessThanOrEqual(4096);
    expect(Buffer.byteLength(path.join(root, rel))).toBeGreaterThanOrEqual(4096);
    execFileSync('bash', ['-c', 'cd "$1" && mkdir "$2"', 'mk', path.join(root, parentRel), name]);
    return rel;
  }

  test('a full scan lists past an entry even root cannot read: one unreadable event, other drift recorded', async () => {
    await clearDrift();
    const tooDeep = await makeTooDeep();
    await (await stack.client.put(MOUNT, 'scan/kept.txt', { content: 'catalogued' })).result();
    await fs.writeFile(path.join(root, 'scan/by-hand.txt'), 'added behind Filestore');
    await startWatcher();

    const outcome = await runQueued({ kind: 'scan', mountId: MOUNT, dir: '', firstEventAt: Date.now() });
    expect(outcome).toMatchObject({ state: 'completed' });
    expect((await eventsAt('scan/by-hand.txt')).map((e) => e.kind)).toEqual(['added']);
    const unreadable = (await allEvents()).filter((e) => e.kind === 'unreadable');
    expect(unreadable.map((e) => e.path)).toEqual([tooDeep]);
    expect(unreadable[0].observed).toMatchObject({ unreadable: 'INVALID_PATH' });
    expect(await nodeState('scan/kept.txt')).toBe('ACTIVE');

    // The next full scan of the unchanged mount repeats nothing.
    const before = (await allEvents()).length;
    expect(await runQueued({ kind: 'scan', mountId: MOUNT, dir: '', firstEventAt: Date.now() })).toMatchObject({ state: 'completed' });
    expect((await allEvents()).length).toBe(before);
  }, 60_000);

  test('a check batch isolates the unreadable path: the others in the batch are still recorded', async () => {
    await clearDrift();
    const tooDeep = await makeTooDeep();
    await fs.mkdir(path.join(root, 'batch'), { recursive: true });
    const others = Array.from({ length: 20 }, (_, i) => `batch/f${String(i).padStart(2, '0')}.txt`);
    for (const p of others) await fs.writeFile(path.join(root, p), p);
    await startWatcher();

    const outcome = await runQueued({ kind: 'check', mountId: MOUNT, paths: [...others, tooDeep].sort(), firstEventAt: Date.now() });
    expect(outcome).toMatchObject({ state: 'completed' });
    for (const p of others) expect((await eventsAt(p)).map((e) => e.kind)).toEqual(['added']);
    expect((await eventsAt(tooDeep)).map((e) => e.kind)).toEqual(['unreadable']);
  }, 60_000);

  const setprivMissing = (() => {
    if (process.getuid?.() !== 0) return 'not root: a mode-000 directory is unreadable anyway, but this case checks root without CAP_DAC_OVERRIDE';
    try {
      execFileSync('setpriv', ['--version'], { stdio: 'pipe' });
      return '';
    } catch {
      return 'setpriv (util-linux) is not installed: cannot drop root\'s DAC capabilities for the child';
    }
  })();
  if (setprivMissing) console.warn(`drift-honesty.test.ts: EACCES child-process case skipped — ${setprivMissing}`);

  (setprivMissing ? test.skip : test)('EACCES for a worker without DAC override: reported as unreadable, its catalogued children unknown (not removed)', async () => {
    await clearDrift();
    await (await stack.client.put(MOUNT, 'locked/inside.txt', { content: 'catalogued, then locked away' })).result();
    await fs.mkdir(path.join(root, 'open'), { recursive: true });
    await fs.writeFile(path.join(root, 'open/new.txt'), 'added behind Filestore');
    await fs.chmod(path.join(root, 'locked'), 0o000);
    try {
      // The drift job in a child that is root without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH, as
      // a watcher running as an unprivileged user would be: mode 000 now means EACCES.
      const child = async (spec: DriftJobSpec) => {
        const tsx = path.join(__dirname, '..', '..', 'node_modules', '.bin', 'tsx');
        const script = path.join(__dirname, 'fixtures', 'run-drift-job.ts');
        const { stdout } = await run('setpriv', ['--bounding-set=-dac_override,-dac_read_search', tsx, script, config.databaseUrl, JSON.stringify(spec)], {
          env: { ...process.env, LOG_LEVEL: 'silent' },
          timeout: 60_000,
        });
        return JSON.parse(stdout.trim().split('\n').pop()!);
      };
      const scan = await child({ kind: 'scan', mountId: MOUNT, dir: '', firstEventAt: Date.now() });
      expect(scan).toMatchObject({ ok: true });
      expect((await eventsAt('locked')).map((e) => [e.kind, (e.observed as { unreadable?: string }).unreadable])).toEqual([['unreadable', 'ACCESS_DENIED']]);
      expect((await eventsAt('open/new.txt')).map((e) => e.kind)).toEqual(['added']);
      // What is below an unreadable directory is unknown, not removed.
      expect(await eventsAt('locked/inside.txt')).toEqual([]);
      expect(await nodeState('locked/inside.txt')).toBe('ACTIVE');

      await fs.writeFile(path.join(root, 'open/new2.txt'), 'also added');
      const check = await child({ kind: 'check', mountId: MOUNT, paths: ['locked/inside.txt', 'open/new2.txt'], firstEventAt: Date.now() });
      expect(check).toMatchObject({ ok: true });
      expect((await eventsAt('locked/inside.txt')).map((e) => e.kind)).toEqual(['unreadable']);
      expect((await eventsAt('open/new2.txt')).map((e) => e.kind)).toEqual(['added']);
    } finally {
      await fs.chmod(path.join(root, 'locked'), 0o755);
    }
  }, 120_000);
});

describe('12a: a write that rolls back leaves no drift behind', () => {
  test('its new parent directories, seen by a scan that began before it, are deferred and never recorded', async () => {
    await clearDrift();
    // Deterministic interleaving, everything else real: the scan reads the catalog (no mutation
    // yet), then — while it lists the disk — a write creates gate/new/deeper/ and stops before
    // verify; the listing sees those directories, the write goes on, its commit fails and
    // compensation removes them, and only then does the scan confirm what it saw.
    const registry = new ExecutorRegistry(stack.client.db);
    let listing!: () => void;
    const listingStarted = new Promise<void>((r) => (listing = r));
    let executed!: () => void;
    const writeExecuted = new Promise<void>((r) => (executed = r));
    let release!: () => void;
    const verifyReleased = new Promise<void>((r) => (release = r));
    beforeVerify = async () => {
      executed();
      await verifyReleased;
    };
    let journalKey = '';
    const gated = {
      async get(mountId: string): Promise<Executor> {
        const real = await registry.get(mountId);
        return new Proxy(real, {
          get(target, prop, receiver) {
            if (prop !== 'list') return Reflect.get(target, prop, receiver);
            return async function* (...args: Parameters<Executor['list']>) {
              listing();
              await writeExecuted;
              const seen = await listAll(target, ...args);
              release();
              await waitFor('the write to roll back', async () => (await stack.client.getJournalEntry(journalKey))?.status === 'ROLLED_BACK', 20_000);
              yield* seen;
            };
          },
        });
      },
    } as unknown as ExecutorRegistry;

    const scan = runDriftJob({ db: stack.client.db, executors: gated }, { kind: 'scan', mountId: MOUNT, dir: '', firstEventAt: Date.now() }, 'gated');
    await listingStarted;
    const handle = await stack.client.put(MOUNT, 'gate/new/deeper/file.txt', { content: 'rolled back' });
    journalKey = handle.idempotencyKey;
    const failed = handle.result().catch((err: unknown) => err);
    const result = await scan;
    expect(await failed).toMatchObject({ code: 'COMMIT_FAILED' });
    await expect(fs.stat(path.join(root, 'gate'))).rejects.toMatchObject({ code: 'ENOENT' });

    // (Other paths of the mount may hold drift left by earlier tests; only gate/ matters here.)
    expect((await allEvents()).filter((e) => e.path.startsWith('gate')).map((e) => `${e.kind} ${e.path}`)).toEqual([]);
    expect(result.deferred).toEqual(expect.arrayContaining(['gate', 'gate/new', 'gate/new/deeper']));
    expect(await nodeState('gate/new')).toBeNull();
    // The re-check of what was deferred finds the directories gone: still nothing.
    const gatePaths = result.deferred.filter((p) => p.startsWith('gate'));
    await runDriftJob({ db: stack.client.db, executors: registry }, { kind: 'check', mountId: MOUNT, paths: gatePaths, firstEventAt: Date.now() }, 'recheck');
    expect((await allEvents()).filter((e) => e.path.startsWith('gate'))).toEqual([]);
  }, 60_000);

  // The only test of this file with a file watcher running: on both backends.
  test.each(WATCH_BACKENDS)('with the watcher running (%s), rolled-back writes into new directories never become drift', async (watchBackend) => {
    await clearDrift();
    await startWatcher({ enableWatchers: true, watchBackend, driftScanIntervalMs: 1000 });
    for (let i = 0; i < 8; i++) {
      const h = await stack.client.put(MOUNT, `rollback/r${i}/a/b/file.txt`, { content: `attempt ${i}` });
      await expect(h.result()).rejects.toMatchObject({ code: 'COMMIT_FAILED' });
    }
    const entries = await stack.client.db.select().from(journal).where(eq(journal.mountId, MOUNT));
    expect(entries.filter((e) => e.path.startsWith('rollback/')).every((e) => e.status === 'ROLLED_BACK')).toBe(true);
    // Let the events, their deferrals and at least one periodic scan go through.
    await new Promise((r) => setTimeout(r, 2500));
    await watcher!.flush();
    await waitFor(
      'the drift queue to drain',
      async () => {
        const c = await watcher!.queue.getJobCounts('waiting', 'active');
        return c.waiting + c.active === 0;
      },
      20_000,
    );
    expect((await allEvents()).filter((e) => e.path.startsWith('rollback'))).toEqual([]);
    expect(await fs.readdir(path.join(root)).then((names) => names.filter((n) => n === 'rollback'))).toEqual([]);
  }, 90_000);
});

describe('12b: Filestore\'s cross-device scratch names are never listed nor drift', () => {
  test('the predicate matches exactly what crossDeviceScratch produces', () => {
    for (const name of ['a', 'file.txt', '.hidden', 'with space', 'ünï', 'x'.repeat(200), 'a.filestore-xdev']) {
      const { tmp, trash } = crossDeviceScratch(`/m/src/${name}`, `/m/dst/${name}`);
      expect(isFilestoreScratchName(path.basename(tmp))).toBe(true);
      expect(isFilestoreScratchName(path.basename(trash))).toBe(true);
    }
    for (const name of ['file.txt', 'a.filestore-xdev', '.filestore-xdev', '..filestore-moved', '.a.filestore-xdev.bak', '.a.filestore-tmp', 'x.a.filestore-moved']) {
      expect(isFilestoreScratchName(name)).toBe(false);
    }
  });

  test('scratch left by a crashed cross-device move: not listed, not reported by a scan or a check; near-miss names are', async () => {
    await clearDrift();
    await (await stack.client.put(MOUNT, 'xdev/src/report.txt', { content: 'the source' })).result();
    // What a cross-device move of xdev/src/report.txt → xdev/dst/report.txt leaves after a crash:
    // the half-built copy next to the destination and the source renamed aside.
    const { tmp, trash } = crossDeviceScratch(path.join(root, 'xdev/src/report.txt'), path.join(root, 'xdev/dst/report.txt'));
    await fs.mkdir(path.dirname(tmp), { recursive: true });
    await fs.mkdir(tmp);
    await fs.writeFile(path.join(tmp, 'partial.bin'), 'half a copy');
    await fs.writeFile(trash, 'the source, renamed aside');
    // A user's own files that merely look similar are the user's: reported.
    await fs.writeFile(path.join(root, 'xdev/dst/report.txt.filestore-xdev'), 'user file');
    await fs.writeFile(path.join(root, 'xdev/dst/.filestore-moved'), 'user file');

    const executor = await new ExecutorRegistry(stack.client.db).get(MOUNT);
    const listed = (await listAll(executor, 'xdev', { recursive: true })).map((m) => m.path);
    expect(listed.filter((p) => p.includes('.report.txt.filestore-'))).toEqual([]);
    // Nor the mount's other own entries (staging, identity marker) at the root.
    expect((await listAll(executor, '')).map((m) => m.path).filter((p) => p.startsWith('.filestore'))).toEqual([]);

    await startWatcher();
    expect(await runQueued({ kind: 'scan', mountId: MOUNT, dir: '', firstEventAt: Date.now() })).toMatchObject({ state: 'completed' });
    const rel = (abs: string) => path.relative(root, abs).split(path.sep).join('/');
    expect(await runQueued({ kind: 'check', mountId: MOUNT, paths: [rel(tmp), `${rel(tmp)}/partial.bin`, rel(trash)], firstEventAt: Date.now() })).toMatchObject({
      state: 'completed',
    });
    const paths = (await allEvents()).map((e) => e.path);
    expect(paths.filter((p) => p.includes('.report.txt.filestore-') || p.startsWith('.filestore'))).toEqual([]);
    expect(paths).toEqual(expect.arrayContaining(['xdev/dst/report.txt.filestore-xdev', 'xdev/dst/.filestore-moved']));
    expect(await nodeState('xdev/src/report.txt')).toBe('ACTIVE');
  }, 60_000);
});
