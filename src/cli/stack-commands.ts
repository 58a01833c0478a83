/**
 * CLI verbs that run or prepare processes: `dev`, `services up`, `migrate`, `api`, `worker`. Each loads its
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
    .option('--json', 'print JSON: {"postgres": {"started", "dataDir"?}, "redis": {"started"}}')
    .action(async (o: { json?: boolean }) => {
      const [{ ensurePostgres }, { ensureRedis }] = await Promise.all([import('../dev/private-postgres'), import('../dev/private-redis')]);
      const pg = await ensurePostgres(cfg().databaseUrl, cfg().stateDir);
      if (!o.json) out(pg ? `postgres: started a private cluster in ${pg.dataDir}` : 'postgres: answering');
      const redis = await ensureRedis(cfg().redisUrl, cfg().stateDir, true);
      if (!o.json) out(redis ? `redis: started a private redis-server at ${cfg().redisUrl}` : 'redis: answering');
      else out(JSON.stringify({ postgres: pg ? { started: true, dataDir: pg.dataDir } : { started: false }, redis: { started: !!redis } }));
    });

  program
    .command('migrate')
    .description('create the catalog database if missing and apply migrations')
    .option('--json', 'print {"migrated": true} when done')
    .action(async (o: { json?: boolean }) => {
      const { runMigrations } = await import('../../db/client');
      await runMigrations(cfg().databaseUrl);
      out(o.json ? JSON.stringify({ migrated: true }) : 'migrations applied');
    });

  program
    .command('api')
    .description('run the HTTP API (FILESTORE_API_HOST:FILESTORE_API_PORT): files, catalog, journal, drift, mounts, reconcile')
    .action(async () => {
      const [{ startApi }, { createLogger }] = await Promise.all([import('../api/api-process'), import('../logger')]);
      const log = createLogger(cfg().logLevel);
      const api = await startApi(cfg(), { logger: log });
      out(`api        ${api.url}  (OpenAPI: ${api.url}/openapi.json)`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await api.close();
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
