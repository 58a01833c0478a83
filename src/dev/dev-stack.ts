/**
 * `filestore dev`: everything a laptop needs in one foreground process tree — Postgres (a private
 * cluster when nothing answers), migrations, the Temporal dev server with its Web UI (when nothing
 * answers at TEMPORAL_ADDRESS), a demo mount, and a worker with /metrics. Ctrl-C stops it all.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openCatalog, runMigrations } from '../../db/client';
import type { MountRow } from '../../db/schema';
import { readMountMarker } from '../catalog/mount-marker';
import { addLocalMount, listMounts, markLocalMount } from '../catalog/mounts';
import { ENV_NAMES, PROJECT_DIR, type Config } from '../config';
import type { Logger } from '../logger';
import { startWatcherService } from '../watcher/watcher-service';
import { startWorker } from '../worker';
import { ensurePostgres } from './private-postgres';
import { ensureRedis } from './private-redis';
import { findTemporalCli, startTemporalDevServer, temporalAnswers, type DevServer } from './temporal-dev-server';

export async function runDevStack(config: Config, log: Logger, out: (line: string) => void = console.log): Promise<void> {
  const stops: Array<() => Promise<void> | void> = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await Promise.resolve(stop()).catch((err: Error) => log.warn({ err: err.message }, 'stop failed'));
  };
  try {
    const pg = await ensurePostgres(config.databaseUrl, config.stateDir);
    if (pg) {
      stops.push(() => pg.stop());
      out(`postgres   private cluster in ${pg.dataDir}`);
    }
    const redis = await ensureRedis(config.redisUrl, config.stateDir);
    if (redis) {
      stops.push(() => redis.stop());
      out(`redis      private redis-server at ${config.redisUrl}`);
    }
    await runMigrations(config.databaseUrl);
    out(`catalog    ${config.databaseUrl.replace(/\/\/[^@]*@/, '//')} (migrated)`);

    let temporal: DevServer | null = null;
    let uiUrl = `http://${config.temporalAddress.split(':')[0]}:${config.temporalUiPort}`;
    if (!(await temporalAnswers(config.temporalAddress))) {
      if (!config.devStartTemporal) throw new Error(`no Temporal server answers at ${config.temporalAddress}`);
      const cli = findTemporalCli(config);
      if (!cli) throw new Error('Temporal CLI not found: set TEMPORAL_CLI_PATH, put `temporal` on PATH, or run scripts/bootstrap.sh');
      temporal = await startTemporalDevServer({
        cliPath: cli,
        address: config.temporalAddress,
        uiPort: config.temporalUiPort,
        dbFile: path.join(config.stateDir, 'temporal.db'),
        logFile: path.join(config.stateDir, 'temporal.log'),
      });
      stops.push(() => temporal!.stop());
      uiUrl = temporal.uiUrl;
      out(`temporal   dev server at ${config.temporalAddress} (${cli})`);
    } else {
      out(`temporal   using the server at ${config.temporalAddress}`);
    }

    const catalog = openCatalog(config.databaseUrl, { max: 1 });
    try {
      const mounts = await listMounts(catalog.db);
      const root = path.join(config.stateDir, 'mounts', 'demo');
      if (mounts.length === 0) {
        await addLocalMount(catalog.db, { id: 'demo', rootPath: root, createRoot: true, watch: true });
        out(`mount      demo → ${root} (watched; created because no mount existed)`);
      } else if (await demoMountLacksMarker(mounts, root)) {
        // Dev state from before identity markers: this directory is the demo mount by construction.
        await markLocalMount(catalog.db, 'demo');
        out(`mount      demo → ${root} (identity marker written; it predates markers)`);
      }
    } finally {
      await catalog.close();
    }

    // A laptop puts files from the checkout and the temp dir; an explicit FILESTORE_SOURCE_ROOTS wins.
    const sourceRoots = process.env[ENV_NAMES.sourceRoots] === undefined ? [PROJECT_DIR, os.tmpdir()] : config.sourceRoots;
    const worker = await startWorker({ ...config, sourceRoots }, { logger: log });
    stops.push(() => worker.shutdown());
    out(`sources    put reads files under ${sourceRoots.join(', ') || '(nowhere: FILESTORE_SOURCE_ROOTS is empty)'} (FILESTORE_SOURCE_ROOTS)`);
    out(`worker     task queue ${config.taskQueue}; serving ${worker.servedMounts().join(', ') || 'no local mounts yet'}`);
    // The dev stack shows drift detection live unless FILESTORE_ENABLE_WATCHERS=false was set explicitly.
    const watcherConfig = { ...config, enableWatchers: process.env[ENV_NAMES.enableWatchers] === undefined ? true : config.enableWatchers };
    const watcher = await startWatcherService(watcherConfig, { logger: log });
    stops.push(() => watcher.shutdown());
    out(`watcher    ${watcher.watchedMounts().join(', ') || 'no watched mounts'} (chokidar ${watcherConfig.enableWatchers ? 'on' : 'off'}; drift queue ${config.driftQueue})`);
    out(`metrics    ${worker.metricsUrl} (worker), ${watcher.metricsUrl} (watcher)`);
    out(`web ui     ${uiUrl}/namespaces/${config.temporalNamespace}/workflows`);
    out('');
    out('ready — try:  ./bin/filestore.js put README.md demo:readme.md   (Ctrl-C stops everything)');
    out('       drift: change a file by hand in a watched mount\'s folder, then ./bin/filestore.js drift ls');

    await new Promise<void>((resolve, reject) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
      worker.done.catch(reject);
      temporal?.process.once('exit', () => reject(new Error('the Temporal dev server exited')));
    });
    out('stopping…');
  } finally {
    await stopAll();
  }
}

/** The demo mount `filestore dev` created under its state dir exists but carries no marker (only that one is fixed here). */
async function demoMountLacksMarker(mounts: MountRow[], root: string): Promise<boolean> {
  const demo = mounts.find((m) => m.id === 'demo' && m.kind === 'local');
  const real = await fs.realpath(root).catch(() => null);
  if (!demo?.rootPath || real === null || demo.rootPath !== real) return false;
  return (await readMountMarker(real).catch(() => 'unusable')) === null;
}
