/**
 * `filestore watcher` as a real process, driven through the CLI as a person would: a watched
 * mount, a change made by hand, `drift ls`, `mount set --no-watch`, and the watcher's /metrics.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ENV_NAMES } from '../../src/config';
import { FILESTORE_BIN, runCli, stackEnv } from '../helpers/cli';
import { createTestStack, type TestStack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';
import { dropQueueKeys } from '../helpers/redis';

const BIN = FILESTORE_BIN;
const cli = (...args: string[]) => runCli(env, ...args);

let stack: TestStack;
let env: NodeJS.ProcessEnv;
let watcher: ChildProcess;
let metricsPort: number;
let dir: string;
const queue = `drift-cli-${randomBytes(3).toString('hex')}`;

beforeAll(async () => {
  stack = await createTestStack({ worker: false });
  metricsPort = 20000 + Math.floor(Math.random() * 20000);
  env = stackEnv(stack.config, { [ENV_NAMES.driftQueue]: queue });
  dir = path.join(stack.tmp, 'watched-by-cli');
  await fs.mkdir(dir);
  expect((await cli('mount', 'add', 'seen', '--local', dir, '--watch')).code).toBe(0);
  watcher = spawn(process.execPath, [BIN, 'watcher'], {
    env: { ...env, [ENV_NAMES.enableWatchers]: 'true', [ENV_NAMES.watcherMetricsPort]: String(metricsPort) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitFor('the watcher to serve /healthz', async () => (await fetch(`http://127.0.0.1:${metricsPort}/healthz`).catch(() => null))?.ok, 30_000);
});
afterAll(async () => {
  watcher?.kill('SIGTERM');
  if (watcher && watcher.exitCode === null) await new Promise((r) => watcher.once('exit', r));
  await dropQueueKeys(stack.config.redisUrl, queue);
  await stack?.teardown();
});

test('a file made by hand shows up in `drift ls`, and the watcher exports its metrics', async () => {
  // chokidar needs a moment after the process came up to have the mount under watch.
  await new Promise((r) => setTimeout(r, 1000));
  await fs.writeFile(path.join(dir, 'by-hand.txt'), 'nobody told Filestore');
  const events = await waitFor(
    'the drift event',
    async () => {
      const res = await cli('drift', 'ls', '--json');
      const rows = (JSON.parse(res.stdout) as { events: Array<{ mountId: string; path: string; kind: string }> }).events;
      return rows.length > 0 ? rows : null;
    },
    15_000,
  );
  expect(events).toEqual([expect.objectContaining({ mountId: 'seen', path: 'by-hand.txt', kind: 'added' })]);
  const human = await cli('drift', 'ls');
  expect(human.stdout).toMatch(/added\s+seen:by-hand\.txt\s+file 21 bytes/);
  const stat = JSON.parse((await cli('stat', 'seen:by-hand.txt', '--json')).stdout);
  expect(stat).toMatchObject({ state: 'INCONSISTENT', kind: 'file', size: 21 });

  const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  expect(body).toMatch(/filestore_watcher_events_total\{mount="seen",event="add"\} [1-9]/);
  expect(body).toMatch(/filestore_drift_detected_total\{mount="seen",kind="added"\} 1/);
  expect(body).toMatch(/filestore_drift_detection_latency_seconds_count\{mount="seen"\} 1/);
  expect(body).toMatch(/filestore_drift_jobs_total\{kind="\w+",stage="processed"\} [1-9]/);
  expect(body).toMatch(/filestore_drift_queue_depth\{state="waiting"\} \d+/);
  expect(body).not.toContain('by-hand.txt');
});

test('mount set toggles watching; the watcher drops and picks up the mount', async () => {
  const off = await cli('mount', 'set', 'seen', '--no-watch');
  expect(off.code).toBe(0);
  expect(JSON.parse((await cli('mount', 'ls', '--json')).stdout).mounts[0].options).toMatchObject({ watch: false });
  // Unwatched: a new file is not reported.
  await new Promise((r) => setTimeout(r, 1500));
  await fs.writeFile(path.join(dir, 'unseen.txt'), 'not watched');
  await new Promise((r) => setTimeout(r, 2500));
  expect((JSON.parse((await cli('drift', 'ls', '--json')).stdout) as { events: Array<{ path: string }> }).events.map((e) => e.path)).toEqual(['by-hand.txt']);

  // Watched again: the startup scan of the mount finds what changed meanwhile.
  expect((await cli('mount', 'set', 'seen', '--watch')).code).toBe(0);
  await waitFor(
    'unseen.txt found by the rescan',
    async () => (JSON.parse((await cli('drift', 'ls', '--json')).stdout) as { events: Array<{ path: string }> }).events.some((e) => e.path === 'unseen.txt'),
    15_000,
  );
  const bad = await cli('mount', 'set', 'seen');
  expect(bad.code).not.toBe(0);
  expect(bad.stderr.trim()).toMatch(/^filestore: INVALID_REQUEST: nothing to set/);
});
