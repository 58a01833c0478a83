/**
 * Filestore workers in child processes for bench/s3-bench.ts (bench/s3-bench-worker.ts, run as
 * `filestore worker` is: configured from the environment of test/helpers/cli.ts `stackEnv`). Each
 * {@link ChildQueue} has its own base task queue, which no other worker polls — S3 mounts'
 * activities run on the base queue — so its mutations run only in its children: a dedicated
 * worker process, as in production, for the large upload, and one that can be killed with
 * SIGKILL for the resume.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { FilestoreClient } from '../src/client';
import { ENV_NAMES, loadConfig, type Config } from '../src/config';
import { stopChild } from '../src/dev/child-process';
import { stackEnv } from '../test/helpers/cli';
import type { S3BenchStack } from './s3-bench-stack';

export interface ChildWorker {
  child: ChildProcess;
  metricsUrl: string;
}

export interface ChildQueue {
  config: Config;
  /** A client whose mutations go to this queue. */
  client: FilestoreClient;
  /** Starts a worker process on this queue; resolves once it polls. */
  start(): Promise<ChildWorker>;
  /** Stops every worker still running (SIGTERM, then SIGKILL) and closes the client. */
  close(): Promise<void>;
}

export const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

/** kill -9, and wait until the process is gone. */
export async function kill9(child: ChildProcess): Promise<void> {
  child.kill('SIGKILL');
  await exited(child);
}

/** A queue `<stack queue>-<suffix>` served only by the child workers it starts. */
export async function openChildQueue(stack: S3BenchStack, suffix: string): Promise<ChildQueue> {
  const config = loadConfig(process.env, { ...stack.config, taskQueue: `${stack.config.taskQueue}-${suffix}` });
  const client = await FilestoreClient.connect(config);
  const children: ChildProcess[] = [];

  const start = async (): Promise<ChildWorker> => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 's3-bench-worker.ts')], {
      cwd: path.join(__dirname, '..'),
      env: stackEnv(config, { [ENV_NAMES.metricsPort]: '0', BENCH_WORKFLOW_BUNDLE: path.join(stack.tmp, 'workflows.js') }),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    const line = await new Promise<string>((resolve, reject) => {
      const rl = createInterface({ input: child.stdout! });
      rl.once('line', (l) => {
        rl.close();
        resolve(l);
      });
      child.once('exit', (code, signal) => reject(new Error(`the child worker exited with ${code ?? signal} before it was ready`)));
    });
    child.stdout!.resume();
    const { metricsUrl } = JSON.parse(line) as { metricsUrl: string | null };
    if (!metricsUrl) throw new Error('the child worker serves no /metrics');
    return { child, metricsUrl };
  };

  return {
    config,
    client,
    start,
    close: async () => {
      await Promise.all(children.map((c) => stopChild(c, 5000)));
      await client.close();
    },
  };
}
