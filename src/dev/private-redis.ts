/**
 * A private Redis for laptops with none running: `redis-server` from the installed binary,
 * listening where REDIS_URL points, in-memory only (drift jobs are rebuilt by rescans).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { stopChild } from './child-process';

export async function redisAnswers(redisUrl: string): Promise<boolean> {
  const client = new Redis(redisUrl, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

export function findRedisServer(): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin', '/usr/local/bin', '/usr/sbin']) {
    const candidate = path.join(dir, 'redis-server');
    if (dir && fs.existsSync(candidate)) return candidate;
  }
  return null;
}

export interface PrivateRedis {
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts redis-server on the URL's host and port; resolves once it answers PING. `detached` leaves
 * it running after this process exits (for `filestore services up`); otherwise it is our child.
 */
export async function startPrivateRedis(redisUrl: string, binary: string, logFile: string, detached = false): Promise<PrivateRedis> {
  const url = new URL(redisUrl);
  const host = url.hostname === 'localhost' ? '127.0.0.1' : url.hostname;
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const child = spawn(binary, ['--port', url.port || '6379', '--bind', host, '--save', '', '--appendonly', 'no', '--logfile', logFile], {
    stdio: 'ignore',
    detached,
  });
  if (detached) child.unref();
  const deadline = Date.now() + 15_000;
  while (!(await redisAnswers(redisUrl))) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}; see ${logFile}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not answer at ${redisUrl} within 15 s; see ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    process: child,
    stop: () => stopChild(child),
  };
}

/** Makes sure a Redis answers at `redisUrl`, starting a private one if none does; null when one already answered. */
export async function ensureRedis(redisUrl: string, stateDir: string, detached = false): Promise<PrivateRedis | null> {
  if (await redisAnswers(redisUrl)) return null;
  const binary = findRedisServer();
  if (!binary) throw new Error(`no Redis answers at ${redisUrl} and redis-server is not installed (apt-get install redis-server)`);
  return startPrivateRedis(redisUrl, binary, path.join(stateDir, 'redis.log'), detached);
}
