/**
 * What the two watch backends (chokidar-watcher.ts, parcel-watcher.ts) share, so that they report
 * alike: the options and the handle of a mount watcher, the mount-relative form of an event path
 * with Filestore's own names filtered out, and the reporting of events and errors (metrics, the
 * log line with its ENOSPC hint, the caller's rescan).
 */
import path from 'node:path';
import { isInFilestoreScratch } from '../executors/local/scratch-names';
import type { Logger } from '../logger';
import { watcherErrors, watcherEvents } from '../metrics';
import { STAGING_DIR } from '../paths';

/** The file-system watcher behind a mount: chokidar (an inotify watch per file and directory) or @parcel/watcher (one per directory). */
export type WatchBackend = 'chokidar' | 'parcel';

/**
 * Event names passed to `onEvent` and counted in `filestore_watcher_events_total`, whatever the
 * backend: chokidar's own. @parcel/watcher's `create` becomes `add` or `addDir`, `update` becomes
 * `change`, and `delete` becomes `unlink` (it does not say whether a directory went; the drift
 * processor treats a gone catalogued directory as the removal of its subtree either way).
 */
export type WatchEventName = 'add' | 'change' | 'unlink' | 'addDir' | 'unlinkDir';

/** Persisted snapshots of the parcel backend: what changed while no watcher ran is replayed at start. */
export interface WatchSnapshotOptions {
  /** Folder for the snapshot files: Filestore's (mode 0700), never inside a mount. */
  dir: string;
  /** The mount row's instance id: a snapshot of an earlier mount under the same id is not replayed. */
  instanceId: string;
  /** A fresh snapshot is committed this often while watching (ms), and once more at close. */
  everyMs: number;
  /**
   * Hands every change reported so far over to the drift queue, and says whether that worked. A
   * snapshot is committed only after this returned true for the events it covers, so a change the
   * queue never received is replayed at the next start instead of being lost.
   */
  handedOver(): Promise<boolean>;
}

export interface MountWatcherOptions {
  mountId: string;
  /** realpath of the mount root. */
  rootReal: string;
  /** One changed mount-relative path (never Filestore's own names). */
  onEvent(path: string, event: WatchEventName): void;
  /** Asks for a scan of one directory ('' = the whole mount): its changes may not have been reported one by one. */
  onScan?(dir: string): void;
  /** A watcher error: the caller rescans the mount (events may have been lost). */
  onError(code: string): void;
  log?: Logger;
  /** parcel only: snapshots across restarts; without it every start needs the caller's full scan. */
  snapshot?: WatchSnapshotOptions;
}

export interface MountWatcher {
  mountId: string;
  backend: WatchBackend;
  /**
   * True when this watcher already reported everything that changed since the previous watcher
   * of the mount stopped (parcel replayed a valid snapshot), so the caller's startup scan can be
   * skipped. False means: scan the mount.
   */
  caughtUp: boolean;
  close(): Promise<void>;
}

/** The watched mount's staging folder (Filestore's own; never watched). */
export function stagingPathOf(rootReal: string): string {
  return path.join(rootReal, STAGING_DIR);
}

/**
 * The canonical mount-relative form of an absolute event path (`''` for the root itself, which
 * the aggregator turns into a scan of the whole mount), or null for what is not the user's:
 * outside the root, the staging folder and anything in it, and the cross-device move's scratch
 * names (scratch-names.ts).
 */
export function mountPathOf(rootReal: string, abs: string): string | null {
  const rel = path.relative(rootReal, abs).split(path.sep).join('/');
  if (rel === '..' || rel.startsWith('../') || path.isAbsolute(rel)) return null;
  if (rel === STAGING_DIR || rel.startsWith(`${STAGING_DIR}/`)) return null;
  return isInFilestoreScratch(rel) ? null : rel;
}

/** Counts and passes on one event. */
export function reportEvent(opts: MountWatcherOptions, rel: string, event: WatchEventName): void {
  watcherEvents.inc({ mount: opts.mountId, event });
  opts.onEvent(rel, event);
}

/** Counts and logs a watcher error, then has the caller rescan the mount. */
export function reportError(opts: MountWatcherOptions, code: string, message: string): void {
  watcherErrors.inc({ mount: opts.mountId, code });
  const hint =
    code === 'ENOSPC'
      ? ' — the inotify watch limit is exhausted; raise it (sysctl fs.inotify.max_user_watches=524288) — changes are still caught by rescans'
      : '';
  opts.log?.error({ mount: opts.mountId, code, err: message }, `watcher error on mount ${opts.mountId}${hint}; rescanning the mount`);
  opts.onError(code);
}
