/**
 * Starts bench/drift-bench-watcher-child.ts as a separate `node --expose-gc` process (its own
 * RSS is the watcher's: nothing of the bench, and no TypeScript loader, lives in it) and talks to
 * it over IPC. The child is bundled once per run by esbuild from the current sources into
 * node_modules/.cache/filestore-bench/ (inside the project, so its packages resolve as usual).
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import type { Config } from '../src/config';
import { PROJECT_DIR } from '../src/config';
import { log, withTimeout } from './drift-bench-helpers';

let bundled: Promise<string> | null = null;
/** Watcher processes not stopped yet: killed by {@link killWatcherChildren} when the bench is torn down early. */
const live = new Set<ChildProcess>();

/** SIGKILLs every watcher process still running (teardown after an error or a signal). */
export function killWatcherChildren(): number {
  for (const c of live) c.kill('SIGKILL');
  return live.size;
}

/** The child, bundled (project sources inlined, packages left to node_modules). */
function childBundle(): Promise<string> {
  bundled ??= (async () => {
    const outfile = path.join(PROJECT_DIR, 'node_modules', '.cache', 'filestore-bench', 'drift-watcher-child.cjs');
    await build({
      entryPoints: [path.join(PROJECT_DIR, 'bench', 'drift-bench-watcher-child.ts')],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      packages: 'external',
      logLevel: 'warning',
    });
    return outfile;
  })();
  return bundled;
}

export interface ChildMeasure {
  rssBytes: number;
  heapUsedBytes: number;
  peakRssBytes: number;
  inotifyWatches: number | null;
}

export interface WatcherChild {
  pid: number;
  /** Clock time (Date.now) just before the service started. */
  startedAt: number;
  /** Resolves with the clock time the service was up (file watchers ready) and each mount's backend. */
  ready: Promise<{ at: number; backends: Record<string, string | null> }>;
  /** Peak RSS so far (VmHWM, read from /proc by the bench). */
  peakRss(): number;
  /** RSS and heap after a forced GC in the child, its peak and its inotify watches. */
  measure(): Promise<ChildMeasure>;
  stop(): Promise<void>;
}

/** VmHWM / VmRSS of another process, in bytes (NaN once it is gone). */
export function procMemory(pid: number): { rss: number; hwm: number } {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

/**
 * Starts a watcher process with `FILESTORE_WATCH_BACKEND=backend`; `overrides` become its config
 * (as loadConfig overrides). FILESTORE_DRIFT_* and the other settings the bench ignores are left out.
 */
export async function startWatcherChild(backend: string, env: NodeJS.ProcessEnv, overrides: Partial<Config>): Promise<WatcherChild> {
  const file = await childBundle();
  const child: ChildProcess = fork(file, [], {
    execArgv: ['--expose-gc'],
    env: { ...env, FILESTORE_WATCH_BACKEND: backend, BENCH_CHILD_CONFIG: JSON.stringify(overrides) },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  // The child's own output is progress, never the report: it goes to stderr.
  child.stdout!.on('data', (b: Buffer) => process.stderr.write(b));
  child.stderr!.on('data', (b: Buffer) => process.stderr.write(b));
  live.add(child);
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      live.delete(child);
      resolve();
    }),
  );
  const listeners = new Set<(m: { type: string } & Record<string, unknown>) => void>();
  child.on('message', (m: { type: string } & Record<string, unknown>) => {
    if (m.type === 'failed') log(`watcher child failed: ${String(m.error)}`);
    for (const l of listeners) l(m);
  });
  const next = <T>(type: string, timeoutMs: number): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`watcher child: no '${type}' within ${timeoutMs} ms`)), timeoutMs);
      const onExit = () => done(new Error(`watcher child exited before '${type}'`));
      const l = (m: { type: string } & Record<string, unknown>) => {
        if (m.type === type) done(null, m as T);
        else if (m.type === 'failed') done(new Error(`watcher child failed: ${String(m.error).split('\n')[0]}`));
      };
      function done(err: Error | null, value?: T) {
        clearTimeout(timer);
        listeners.delete(l);
        child.off('exit', onExit);
        if (err) reject(err);
        else resolve(value as T);
      }
      listeners.add(l);
      child.once('exit', onExit);
    });
  const started = await next<{ at: number }>('started', 60_000);
  const ready = next<{ at: number; backends: Record<string, string | null> }>('ready', 30 * 60_000);
  ready.catch(() => undefined);
  let peak = 0;
  return {
    pid: child.pid!,
    startedAt: started.at,
    ready,
    peakRss() {
      const { hwm } = procMemory(child.pid!);
      if (Number.isFinite(hwm)) peak = Math.max(peak, hwm);
      return peak;
    },
    async measure() {
      const reply = next<ChildMeasure>('measured', 60_000);
      child.send({ type: 'measure' });
      const m = await reply;
      peak = Math.max(peak, m.peakRssBytes);
      return m;
    },
    async stop() {
      if (exited) return;
      child.send({ type: 'stop' });
      if (!(await withTimeout(exit.then(() => true), 120_000, false))) {
        log('watcher child did not stop within 120 s; killing it');
        child.kill('SIGKILL');
        await exit;
      }
    },
  };
}
