/**
 * Which watch backend a local mount gets (FILESTORE_WATCH_BACKEND): `chokidar`, `parcel`, or
 * `auto` — parcel for a mount of more than FILESTORE_WATCH_AUTO_THRESHOLD entries, chokidar below.
 *
 * `auto` counts cheaply and boundedly: the mount's catalogued nodes (not DELETED), and only when
 * those are few, its entries on disk — both stop at threshold + 1, so the cost does not grow with
 * the mount. The disk count matters for a mount whose files the catalog does not know yet (just
 * added over an existing tree): the catalog alone would hand a million files to chokidar.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { STAGING_DIR, isMountMarkerName } from '../paths';
import type { WatchBackend } from './watch-backend-common';

export type WatchBackendSetting = WatchBackend | 'auto';

export interface BackendChoice {
  backend: WatchBackend;
  /** Why, for the log line. */
  reason: string;
}

/** Counters {@link chooseWatchBackend} uses; each may stop counting past `limit`. */
export interface MountSizeProbe {
  catalogued(limit: number): Promise<number>;
  onDisk(limit: number): Promise<number>;
}

/** The backend for one mount, by the setting and (for `auto`) the mount's size. */
export async function chooseWatchBackend(setting: WatchBackendSetting, threshold: number, probe: MountSizeProbe): Promise<BackendChoice> {
  if (setting !== 'auto') return { backend: setting, reason: `FILESTORE_WATCH_BACKEND=${setting}` };
  const catalogued = await probe.catalogued(threshold + 1);
  if (catalogued > threshold) return { backend: 'parcel', reason: `auto: more than ${threshold} catalogued nodes` };
  const onDisk = await probe.onDisk(threshold + 1);
  if (onDisk > threshold) return { backend: 'parcel', reason: `auto: more than ${threshold} entries on disk` };
  return { backend: 'chokidar', reason: `auto: ${Math.max(catalogued, onDisk)} entries, at most ${threshold}` };
}

/**
 * Entries below `rootReal` (files, directories, links; the staging folder and identity marker left out), counting no
 * further than `limit`. Breadth-first, symlinks not followed; unreadable directories are skipped.
 */
export async function countEntriesUpTo(rootReal: string, limit: number): Promise<number> {
  let n = 0;
  const queue: string[] = [rootReal];
  while (queue.length > 0 && n < limit) {
    const dir = queue.shift()!;
    let handle;
    try {
      handle = await fs.opendir(dir, { bufferSize: 256 });
    } catch {
      continue;
    }
    try {
      for await (const entry of handle) {
        if (dir === rootReal && (entry.name === STAGING_DIR || isMountMarkerName(entry.name))) continue;
        n += 1;
        if (n >= limit) break;
        if (entry.isDirectory()) queue.push(path.join(dir, entry.name));
      }
    } finally {
      // A `for await` that ran to the end closed it already.
      await handle.close().catch(() => undefined);
    }
  }
  return n;
}
