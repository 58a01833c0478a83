/** CLI verbs for drift detection: the watcher process, watch options on mounts, open drift events. */
import type { Command } from 'commander';
import type { FilestoreClient } from '../client';
import { listDriftEvents } from '../catalog/drift';
import { setMountOptions } from '../catalog/mounts';
import type { Config } from '../config';
import { InvalidRequestError } from '../errors';
import { createLogger } from '../logger';
import { startWatcherService } from '../watcher/watcher-service';
import { formatDrift, formatMounts, positiveInt } from './format';

export interface CommandContext {
  cfg(): Config;
  connect(): Promise<FilestoreClient>;
  out(line: string): void;
}

export function registerWatchCommands(program: Command, mount: Command, ctx: CommandContext): void {
  program
    .command('watcher')
    .description('detect changes made behind Filestore on this host (FILESTORE_ENABLE_WATCHERS=true for live watching)')
    .action(async () => {
      const log = createLogger(ctx.cfg().logLevel);
      const watcher = await startWatcherService(ctx.cfg(), { logger: log });
      log.info({ mounts: watcher.watchedMounts(), chokidar: ctx.cfg().enableWatchers, metrics: watcher.metricsUrl }, 'watcher running');
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await watcher.shutdown();
    });

  mount
    .command('set <id>')
    .description('change a mount\'s options')
    .option('--watch', 'watch the mount for changes made behind Filestore')
    .option('--no-watch', 'stop watching it')
    .option('--read-only', 'refuse every mutation')
    .option('--no-read-only', 'allow mutations again')
    .option('--allow-special-modes', 'let mutations keep or set setuid, setgid and sticky bits')
    .option('--no-allow-special-modes', 'strip them again (and refuse them in an explicit mode)')
    .action(async (id: string, o: { watch?: boolean; readOnly?: boolean; allowSpecialModes?: boolean }) => {
      const patch: { watch?: boolean; readOnly?: boolean; allowSpecialModes?: boolean } = {};
      if (o.watch !== undefined) patch.watch = o.watch;
      if (o.readOnly !== undefined) patch.readOnly = o.readOnly;
      if (o.allowSpecialModes !== undefined) patch.allowSpecialModes = o.allowSpecialModes;
      if (Object.keys(patch).length === 0) {
        throw new InvalidRequestError('nothing to set: pass --watch, --no-watch, --read-only, --no-read-only, --allow-special-modes or --no-allow-special-modes');
      }
      const row = await setMountOptions((await ctx.connect()).db, id, patch);
      ctx.out(formatMounts([row]));
    });

  program
    .command('drift')
    .description('changes detected behind Filestore')
    .command('ls')
    .option('--mount <id>', 'only this mount')
    .option('--all', 'include resolved events')
    .option('--limit <n>', 'most recent n events', positiveInt, 100)
    .option('--json', 'print JSON')
    .action(async (o: { mount?: string; all?: boolean; limit: number; json?: boolean }) => {
      const rows = await listDriftEvents((await ctx.connect()).db, { mountId: o.mount, all: o.all, limit: o.limit });
      ctx.out(o.json ? JSON.stringify(rows) : formatDrift(rows));
    });
}
