/**
 * The watch backend the drift suites run on. Each suite runs as itself on chokidar, and again on
 * @parcel/watcher through a `*.parcel.test.ts` wrapper that sets FILESTORE_TEST_WATCH_BACKEND
 * before loading it — so every watcher test runs on both backends (Jest gives each test file its
 * own copy of process.env, so the setting stays in the wrapper's file).
 */
import type { WatchBackend } from '../../src/watcher/mount-watcher';

export const WATCH_BACKENDS: readonly WatchBackend[] = ['chokidar', 'parcel'];

export const WATCH_BACKEND: WatchBackend = process.env.FILESTORE_TEST_WATCH_BACKEND === 'parcel' ? 'parcel' : 'chokidar';

