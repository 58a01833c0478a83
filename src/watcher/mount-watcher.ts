/**
 * A watcher for one local mount, behind one interface whatever the backend: chokidar
 * (chokidar-watcher.ts; an inotify watch per file, nothing kept across restarts) or
 * @parcel/watcher (parcel-watcher.ts; an inotify watch per directory, snapshots across restarts).
 * watch-backend.ts chooses between them (FILESTORE_WATCH_BACKEND); both report the same events,
 * leave out the same names, never follow symlinks, and answer errors with a rescan.
 */
import { watchMountWithChokidar } from './chokidar-watcher';
import { watchMountWithParcel } from './parcel-watcher';
import type { MountWatcher, MountWatcherOptions, WatchBackend } from './watch-backend-common';

export type { MountWatcher, MountWatcherOptions, WatchBackend, WatchEventName, WatchSnapshotOptions } from './watch-backend-common';

/**
 * Starts watching a mount with `backend`; resolves once the backend's initial crawl is done (and,
 * for parcel with snapshots, what changed since the last run was reported).
 * @param backend - @defaultValue 'chokidar'
 */
export function watchMount(opts: MountWatcherOptions, backend: WatchBackend = 'chokidar'): Promise<MountWatcher> {
  return backend === 'parcel' ? watchMountWithParcel(opts) : watchMountWithChokidar(opts);
}
