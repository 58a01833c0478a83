/**
 * The watcher process of bench/drift-bench.ts's big-mount phase: `filestore watcher`'s service
 * (startWatcherService: the file watcher FILESTORE_WATCH_BACKEND picks, the aggregator, the drift
 * queue and its processor, which runs the startup scan) alone in its own process, so its RSS is
 * the watcher's own. Bundled by esbuild and run by plain `node --expose-gc` (see
 * drift-bench-watcher.ts): no TypeScript loader in the process, as in production.
 *
 * Configuration: the environment (FILESTORE_WATCH_BACKEND, DATABASE_URL, REDIS_URL, …) plus the
 * JSON object in BENCH_CHILD_CONFIG (overrides, as the bench's own process uses). Talks to the
 * bench over the IPC channel: sends `started` (clock time just before the service starts) and
 * `ready` (once it resolved: the file watcher is up); answers `measure` with RSS and heap after a
 * forced GC and the inotify watches it holds; `stop` shuts the service down and exits.
 */
import { loadConfig, type Config } from '../src/config';
import { startWatcherService } from '../src/watcher/watcher-service';
import { gc, inotifyWatches, peakRss } from './proc-stats';

type ToParent =
  | { type: 'started'; at: number }
  | { type: 'ready'; at: number; backends: Record<string, string | null> }
  | { type: 'measured'; rssBytes: number; heapUsedBytes: number; peakRssBytes: number; inotifyWatches: number | null }
  | { type: 'failed'; error: string };

const send = (m: ToParent) => process.send!(m);
async function main(): Promise<void> {
  const overrides = JSON.parse(process.env.BENCH_CHILD_CONFIG ?? '{}') as Partial<Config>;
  const config = loadConfig(process.env, overrides);
  send({ type: 'started', at: Date.now() });
  const watcher = await startWatcherService(config, { metrics: false });
  send({ type: 'ready', at: Date.now(), backends: Object.fromEntries(watcher.watchedMounts().map((id) => [id, watcher.watcherBackend(id)])) });
  process.on('message', (m: { type: string }) => {
    if (m.type === 'measure') {
      gc();
      gc();
      setTimeout(() => {
        gc();
        const mem = process.memoryUsage();
        send({ type: 'measured', rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, peakRssBytes: peakRss(), inotifyWatches: inotifyWatches() });
      }, 500);
    } else if (m.type === 'stop') {
      void watcher.shutdown().finally(() => process.exit(0));
    }
  });
}

main().catch((err: Error) => {
  send({ type: 'failed', error: err.stack ?? err.message });
  process.exit(1);
});
