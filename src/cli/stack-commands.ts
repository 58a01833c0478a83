/**
 * CLI verbs that run or prepare processes: `dev`, `services up`, `migrate`, `worker`. Each loads its
 * machinery (the dev stack, the Temporal worker SDK, the migrator) only when it runs.
 */
import type { Command } from 'commander';
import type { CommandContext } from './context';

export function registerStackCommands(program: Command, ctx: CommandContext): void {
  const { cfg, out } = ctx;

  program
    .command('dev')
    .description('run the whole stack in the foreground: Postgres, Temporal dev server + Web UI, migrations, worker')
    .action(async () => {
      const [{ runDevStack }, { createLogger }] = await Promise.all([import('../dev/dev-stack'), import('../logger')]);
      await runDevStack(cfg(), createLogger(cfg().logLevel), out);
    });

  program
    .command('services')
    .description('service helpers for scripts')
    .command('up')
    .description('make sure Postgres and Redis answer, starting private ones that keep running if none do')
    .action(async () => {
      const [{ ensurePostgres }, { ensureRedis }] = await Promise.all([import('../dev/private-postgres'), import('../dev/private-redis')]);
      const pg = await ensurePostgres(cfg().databaseUrl, cfg().stateDir);
      out(pg ? `postgres: started a private cluster in ${pg.dataDir}` : 'postgres: answering');
      const redis = await ensureRedis(cfg().redisUrl, cfg().stateDir, true);
      out(redis ? `redis: started a private redis-server at ${cfg().redisUrl}` : 'redis: answering');
    });

  program
    .command('migrate')
    .description('create the catalog database if missing and apply migrations')
    .action(async () => {
      const { runMigrations } = await import('../../db/client');
      await runMigrations(cfg().databaseUrl);
      out('migrations applied');
    });

  program
    .command('worker')
    .description('run a worker: workflows, general activities, and the local mounts of this host')
    .action(async () => {
      const [{ startWorker }, { createLogger }] = await Promise.all([import('../worker'), import('../logger')]);
      const log = createLogger(cfg().logLevel);
      const worker = await startWorker(cfg(), { logger: log });
      log.info({ taskQueue: cfg().taskQueue, mounts: worker.servedMounts(), metrics: worker.metricsUrl }, 'worker running');
      const stop = () => void worker.shutdown();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await worker.done;
    });
}
