/**
 * One chokidar watcher for one local mount: every event becomes a mount-relative path in the
 * aggregator. `atomic: false` so editor and temp names (`foo~`, `.x.swp`) are reported, not
 * swallowed; Filestore's staging folder and the cross-device move's scratch names (see
 * scratch-names.ts) are excluded by the `ignored` function, so its own temp files, backups, plans
 * and half-moved trees never reach the queue.
 */
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '../logger';
import { watcherErrors, watcherEvents } from '../metrics';
import { isInFilestoreScratch } from '../executors/scratch-names';
import { STAGING_DIR } from '../paths';

export interface MountWatcherOptions {
  mountId: string;
  /** realpath of the mount root. */
  rootReal: string;
  onEvent(path: string, event: string): void;
  /** A watcher error: the caller rescans the mount (events may have been lost). */
  onError(code: string): void;
  log?: Logger;
}

export interface MountWatcher {
  mountId: string;
  close(): Promise<void>;
}

const EVENTS = new Set(['add', 'change', 'unlink', 'addDir', 'unlinkDir']);

/** Starts watching; resolves once chokidar finished its initial crawl (it reports nothing for it: ignoreInitial). */
export async function watchMount(opts: MountWatcherOptions): Promise<MountWatcher> {
  const staging = path.join(opts.rootReal, STAGING_DIR);
  const watcher: FSWatcher = watch(opts.rootReal, {
    ignoreInitial: true,
    atomic: false,
    followSymlinks: false,
    persistent: true,
    alwaysStat: false,
    ignored: (p: string) => p === staging || p.startsWith(staging + path.sep) || isInFilestoreScratch(path.relative(opts.rootReal, p).split(path.sep).join('/')),
  });
  watcher.on('all', (event: string, abs: string) => {
    if (!EVENTS.has(event)) return;
    const rel = path.relative(opts.rootReal, abs).split(path.sep).join('/');
    if (rel.startsWith('..')) return;
    watcherEvents.inc({ mount: opts.mountId, event });
    opts.onEvent(rel, event);
  });
  watcher.on('error', (err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code ?? 'UNKNOWN';
    watcherErrors.inc({ mount: opts.mountId, code });
    const hint =
      code === 'ENOSPC'
        ? ' — the inotify watch limit is exhausted; raise it (sysctl fs.inotify.max_user_watches=524288) — changes are still caught by rescans'
        : '';
    opts.log?.error({ mount: opts.mountId, code, err: (err as Error).message }, `watcher error on mount ${opts.mountId}${hint}; rescanning the mount`);
    opts.onError(code);
  });
  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  return { mountId: opts.mountId, close: () => watcher.close() };
}
