/** CLI verbs for drift detection: the watcher process and open drift events (watch options on mounts: `mount set`). */
import type { Command } from 'commander';
import type { CommandContext } from './context';
import { formatDrift, positiveInt } from './format';

export function registerWatchCommands(program: Command, ctx: CommandContext): void {
  program
    .command('watcher')
    .description('detect changes made behind Filestore on this host (FILESTORE_ENABLE_WATCHERS=true for live watching)')
    .action(async () => {
      // chokidar, BullMQ and the backends load here, for this verb only.
      const [{ startWatcherService }, { createLogger }] = await Promise.all([import('../watcher/watcher-service'), import('../logger')]);
      const log = createLogger(ctx.cfg().logLevel);
      const watcher = await startWatcherService(ctx.cfg(), { logger: log });
      log.info({ mounts: watcher.watchedMounts(), chokidar: ctx.cfg().enableWatchers, metrics: watcher.metricsUrl }, 'watcher running');
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await watcher.shutdown();
    });

  program
    .command('drift')
    .description('changes detected behind Filestore')
    .command('ls')
    .description('drift events, newest first, one page at a time')
    .option('--mount <id>', 'only this mount')
    .option('--all', 'include resolved events')
    .option('--limit <n>', 'events per page', positiveInt, 100)
    .option('--cursor <cursor>', 'continue where the previous page ended (its "next cursor")')
    .option('--json', 'print JSON: {"events": [...], "nextCursor": "…" | null}')
    .action(async (o: { mount?: string; all?: boolean; limit: number; cursor?: string; json?: boolean }) => {
      const [db, { listDriftPage }] = await Promise.all([ctx.db(), import('../catalog/drift')]);
      const page = await listDriftPage(db, { mountId: o.mount, all: o.all, limit: o.limit, cursor: o.cursor });
      if (o.json) return ctx.out(JSON.stringify(page));
      ctx.out(formatDrift(page.events));
      if (page.nextCursor) {
        const again = ['filestore drift ls', ...(o.mount ? [`--mount ${o.mount}`] : []), ...(o.all ? ['--all'] : []), `--limit ${o.limit}`, `--cursor ${page.nextCursor}`];
        ctx.out(`next cursor: ${page.nextCursor}  (${again.join(' ')})`);
      }
    });
}
