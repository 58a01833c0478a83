/**
 * The chokidar backend: one chokidar watcher for one local mount; every event becomes a
 * mount-relative path for the aggregator. `atomic: false` so editor and temp names (`foo~`,
 * `.x.swp`) are reported, not swallowed; Filestore's staging folder and the cross-device move's
 * scratch names (see scratch-names.ts) are excluded by the `ignored` function, so its own temp
 * files, backups, plans and half-moved trees never reach the queue. Symlinks are not followed.
 *
 * chokidar holds an inotify watch (and an fs.watch handle) per file *and* directory: fine for
 * small mounts, about 6 KiB per file for large ones — see parcel-watcher.ts for those.
 */
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { isInFilestoreScratch } from '../executors/local/scratch-names';
import { mountPathOf, reportError, reportEvent, stagingPathOf, type MountWatcher, type MountWatcherOptions, type WatchEventName } from './watch-backend-common';

const EVENTS = new Set<string>(['add', 'change', 'unlink', 'addDir', 'unlinkDir']);
/** How long start waits for 'ready' after an error during the initial crawl. */
const CRAWL_ERROR_GRACE_MS = 3000;

/** Starts watching; resolves once chokidar finished its initial crawl (it reports nothing for it: ignoreInitial). */
export async function watchMountWithChokidar(opts: MountWatcherOptions): Promise<MountWatcher> {
  const staging = stagingPathOf(opts.rootReal);
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
    const rel = mountPathOf(opts.rootReal, abs);
    if (rel === null) return;
    reportEvent(opts, rel, event as WatchEventName);
  });
  watcher.on('error', (err: unknown) => {
    reportError(opts, (err as NodeJS.ErrnoException).code ?? 'UNKNOWN', (err as Error).message);
  });
  await new Promise<void>((resolve) => {
    // chokidar never gets ready when its crawl fails on an entry (e.g. a host path over PATH_MAX:
    // ENAMETOOLONG from lstat): the error asked for a rescan already, so stop waiting soon after.
    const onCrawlError = () => setTimeout(done, CRAWL_ERROR_GRACE_MS).unref();
    function done() {
      watcher.off('error', onCrawlError);
      resolve();
    }
    watcher.once('ready', done);
    watcher.on('error', onCrawlError);
  });
  // chokidar keeps nothing across restarts: the caller's startup scan finds what changed meanwhile.
  return { mountId: opts.mountId, backend: 'chokidar', caughtUp: false, close: () => watcher.close() };
}
