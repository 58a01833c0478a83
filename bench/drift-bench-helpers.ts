/**
 * Small, dependency-light helpers of bench/drift-bench.ts: env knobs, percentiles, the report
 * table, RSS sampling, Redis command statistics and key clean-up. Nothing here starts Filestore
 * services.
 */
import fs from 'node:fs';
import type { Redis } from 'ioredis';
import { MiB, now, percentile } from './bench-util';

export { intEnv, log, MiB, now, percentile, table } from './bench-util';


export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
export const round = (n: number, digits = 1) => (Number.isFinite(n) ? Number(n.toFixed(digits)) : null);
export const mib = (bytes: number) => round(bytes / MiB, 1);


export function stats(values: number[]): { n: number; p50: number | null; p95: number | null; mean: number | null; min: number | null; max: number | null } {
  const s = [...values].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: round(percentile(s, 50)),
    p95: round(percentile(s, 95)),
    mean: round(s.reduce((a, v) => a + v, 0) / s.length),
    min: round(s[0] ?? NaN),
    max: round(s.at(-1) ?? NaN),
  };
}


/** Peak RSS of this process, sampled every `everyMs` until stop(). */
export function rssSampler(everyMs = 50): { stop(): number; peak(): number } {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, everyMs);
  return {
    peak: () => Math.max(peak, process.memoryUsage.rss()),
    stop() {
      clearInterval(timer);
      peak = Math.max(peak, process.memoryUsage.rss());
      return peak;
    },
  };
}

export function readSysctl(file: string): number | null {
  try {
    return Number(fs.readFileSync(file, 'utf8').trim());
  } catch {
    return null;
  }
}

/** Sum of `calls` over every command in `INFO commandstats` (the whole server), plus the per-command counts. */
export async function redisCommandCalls(redis: Redis): Promise<{ total: number; byCommand: Record<string, number> }> {
  const info = await redis.info('commandstats');
  const byCommand: Record<string, number> = {};
  let total = 0;
  for (const line of info.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (!m) continue;
    byCommand[m[1]] = Number(m[2]);
    total += Number(m[2]);
  }
  return { total, byCommand };
}

/** Per-command difference of two commandstats readings, largest first (top `limit`). */
export function commandDelta(before: Record<string, number>, after: Record<string, number>, limit = 8): Record<string, number> {
  const delta = Object.entries(after)
    .map(([k, v]) => [k, v - (before[k] ?? 0)] as const)
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit);
  return Object.fromEntries(delta);
}

/** Deletes every key matching `pattern` (SCAN, never KEYS: the server may be shared); returns how many. */
export async function deleteKeys(redis: Redis, pattern: string): Promise<number> {
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** Polls `fn` every `everyMs` until it returns a truthy value; null after `timeoutMs`. */
export async function waitFor<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs: number, everyMs: number): Promise<T | null> {
  const deadline = now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (now() > deadline) return null;
    await sleep(everyMs);
  }
}

/** Resolves with `p`, or with `fallback` after `ms` (p keeps running). */
export function withTimeout<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)))]).finally(() => clearTimeout(timer));
}

/** Writes `count` files named by `name(i)`, `batch` writeFile calls in flight at a time. */
export async function writeFiles(count: number, batch: number, name: (i: number) => string, content: (i: number) => string): Promise<void> {
  for (let start = 0; start < count; start += batch) {
    const end = Math.min(count, start + batch);
    const jobs: Promise<void>[] = [];
    for (let i = start; i < end; i++) jobs.push(fs.promises.writeFile(name(i), content(i)));
    await Promise.all(jobs);
  }
}

/**
 * Counts the commands this process sends to Redis through ioredis (every connection: the watcher's
 * producer, BullMQ's worker and its blocking duplicate; pipelines included, one per command; an
 * EVALSHA counts once however many commands its script runs). `exclude` is left out (the bench's
 * own INFO/SCAN connection). Patches Redis.prototype.sendCommand once, for the whole run.
 */
export function countRedisCommands(RedisClass: { prototype: object }, exclude: () => unknown): { snapshot(): { total: number; byCommand: Record<string, number> } } {
  const proto = RedisClass.prototype as { sendCommand: (this: unknown, command: { name?: string }, ...rest: unknown[]) => unknown };
  const original = proto.sendCommand;
  let total = 0;
  const byCommand: Record<string, number> = {};
  proto.sendCommand = function (this: unknown, command: { name?: string }, ...rest: unknown[]) {
    if (this !== exclude()) {
      total++;
      const name = command?.name ?? '?';
      byCommand[name] = (byCommand[name] ?? 0) + 1;
    }
    return original.call(this, command, ...rest);
  };
  return { snapshot: () => ({ total, byCommand: { ...byCommand } }) };
}
