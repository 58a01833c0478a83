/**
 * `filestore dev`: everything a laptop needs in one foreground process tree — Postgres (a private
 * cluster when nothing answers), migrations, the Temporal dev server with its Web UI (when nothing
 * answers at TEMPORAL_ADDRESS), a private MinIO (when no S3 server answers at FILESTORE_S3_ENDPOINT),
 * the demo mounts (local `demo`, S3 `demo-s3`), and a worker with /metrics. Ctrl-C stops it all.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openCatalog, runMigrations } from '../../db/client';
import type { MountRow } from '../catalog/types';
import { readMountMarker } from '../catalog/mount-marker';
import { addLocalMount, addS3Mount, listMounts, markLocalMount } from '../catalog/mounts';
import { ENV_NAMES, PROJECT_DIR, type Config } from '../config';
import type { Logger } from '../logger';
import { startApi } from '../api/api-process';
import { createToken, findActiveToken } from '../catalog/tokens';
import { startWatcherService } from '../watcher/watcher-service';
import { startWorker } from '../worker';
import { devS3Client, ensureBucket, ensureDevS3, exportDevS3Environment, type DevS3 } from './dev-s3';
import { ensurePostgres } from './private-postgres';
import { ensureRedis } from './private-redis';
import { devServerHttpPort, findTemporalCli, recordDevTemporalHttp, startTemporalDevServer, temporalAnswers, type DevServer } from './temporal-dev-server';

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
        httpPort: await devServerHttpPort(config),
      });
      stops.push(() => temporal!.stop());
      // The CLI finds this server's HTTP API here while it runs (temporalHttpUrlOf).
      const host = config.temporalAddress.split(':')[0];
      if (temporal.httpPort !== undefined && temporal.process.pid !== undefined) {
        stops.push(recordDevTemporalHttp(config, { url: `http://${host}:${temporal.httpPort}`, pid: temporal.process.pid, temporalAddress: config.temporalAddress }));
      }
      uiUrl = temporal.uiUrl;
      out(`temporal   dev server at ${config.temporalAddress} (${cli})`);
    } else {
      out(`temporal   using the server at ${config.temporalAddress}`);
    }

    const s3 = await startDevS3(config, out);
    if (s3?.server) stops.push(() => s3.server!.stop());

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
      if (s3 && !mounts.some((m) => m.kind === 's3')) {
        await addS3Mount(catalog.db, { id: 'demo-s3', bucket: 'demo', endpoint: s3.endpoint, region: s3.region, pathStyle: s3.pathStyle, watch: true });
        out(`mount      demo-s3 → s3://demo at ${s3.endpoint} (watched by listing; created because no S3 mount existed)`);
      }
    } finally {
      await catalog.close();
    }

    // A laptop puts files from the checkout and the temp dir; an explicit FILESTORE_SOURCE_ROOTS wins.
    const sourceRoots = process.env[ENV_NAMES.sourceRoots] === undefined ? [PROJECT_DIR, os.tmpdir()] : config.sourceRoots;
    const worker = await startWorker({ ...config, sourceRoots, s3Endpoint: s3?.endpoint ?? config.s3Endpoint }, { logger: log });
    stops.push(() => worker.shutdown());
    out(`sources    put reads files under ${sourceRoots.join(', ') || '(nowhere: FILESTORE_SOURCE_ROOTS is empty)'} (FILESTORE_SOURCE_ROOTS)`);
    out(`worker     task queue ${config.taskQueue}; serving ${worker.servedMounts().join(', ') || 'no local mounts yet'}`);
    // The dev stack shows drift detection live unless FILESTORE_ENABLE_WATCHERS=false was set explicitly.
    const watcherConfig = { ...config, enableWatchers: process.env[ENV_NAMES.enableWatchers] === undefined ? true : config.enableWatchers };
    const watcher = await startWatcherService(watcherConfig, { logger: log });
    stops.push(() => watcher.shutdown());
    out(`watcher    ${watcher.watchedMounts().join(', ') || 'no watched mounts'} (chokidar ${watcherConfig.enableWatchers ? 'on' : 'off'}; drift queue ${config.driftQueue})`);
    const api = await startApi(config, { logger: log });
    stops.push(() => api.close());
    const token = await devToken(config);
    out(`api        ${api.url}  (OpenAPI ${api.url}/openapi.json; FILESTORE_API_PORT)`);
    out(`dev token  ${token.token}  (admin; kept in ${token.file})`);
    out(`metrics    ${worker.metricsUrl} (worker), ${watcher.metricsUrl} (watcher), ${api.url}/metrics (api)`);
    out(`web ui     ${uiUrl}/namespaces/${config.temporalNamespace}/workflows`);
    if (s3?.consoleUrl) out(`s3 console ${s3.consoleUrl}${s3.credentials ? `  (user ${s3.credentials.accessKeyId}, password ${s3.credentials.secretAccessKey})` : ''}`);
    if (s3?.credentials) {
      out(`s3 shell   export FILESTORE_S3_ENDPOINT=${s3.endpoint} AWS_REGION=${s3.region} AWS_ACCESS_KEY_ID=${s3.credentials.accessKeyId} AWS_SECRET_ACCESS_KEY=${s3.credentials.secretAccessKey}`);
    }
    out('');
    out('ready — try:  ./bin/filestore.js put README.md demo:readme.md   (Ctrl-C stops everything)');
    if (s3) out('       s3:    ./bin/filestore.js put README.md demo-s3:readme.md');
    out('       drift: change a file by hand in a watched mount\'s folder, then ./bin/filestore.js drift ls');
    out(`       http:  curl -H "Authorization: Bearer $(cat ${token.file})" -T README.md ${api.url}/v1/mounts/demo/files/readme.md`);

    await new Promise<void>((resolve, reject) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
      worker.done.catch(reject);
      temporal?.process.once('exit', () => reject(new Error('the Temporal dev server exited')));
      s3?.server?.process.once('exit', () => reject(new Error(`MinIO exited; see ${path.join(config.stateDir, 'minio.log')}`)));
    });
    out('stopping…');
  } finally {
    await stopAll();
  }
}

/**
 * The dev stack's S3 server (see dev-s3.ts) with its `demo` bucket, exported to this process's
 * environment for the worker and watcher; null (and a line saying why) when the stack runs without S3.
 */
async function startDevS3(config: Config, out: (line: string) => void): Promise<DevS3 | null> {
  const s3 = await ensureDevS3(config);
  if ('skipped' in s3) {
    out(`s3         none — ${s3.skipped}`);
    return null;
  }
  try {
    exportDevS3Environment(s3);
    const client = devS3Client(s3);
    try {
      const bucket = await ensureBucket(client, 'demo');
      out(`s3         ${s3.summary}; bucket demo ${bucket}`);
    } finally {
      client.destroy();
    }
    return s3;
  } catch (err) {
    await s3.server?.stop();
    throw err;
  }
}

/** The demo mount `filestore dev` created under its state dir exists but carries no marker (only that one is fixed here). */
async function demoMountLacksMarker(mounts: MountRow[], root: string): Promise<boolean> {
  const demo = mounts.find((m) => m.id === 'demo' && m.kind === 'local');
  const real = await fs.realpath(root).catch(() => null);
  if (!demo?.rootPath || real === null || demo.rootPath !== real) return false;
  return (await readMountMarker(real).catch(() => 'unusable')) === null;
}

/**
 * The dev stack's admin token: the one kept in `<stateDir>/dev-token` while it is still valid,
 * else a new one (named `dev`) written there, readable by this user only.
 */
async function devToken(config: Config): Promise<{ token: string; file: string }> {
  const file = path.join(config.stateDir, 'dev-token');
  const catalog = openCatalog(config.databaseUrl, { max: 1 });
  try {
    const kept = await fs.readFile(file, 'utf8').then((s) => s.trim(), () => '');
    if (kept && (await findActiveToken(catalog.db, kept))) return { token: kept, file };
    const { token } = await createToken(catalog.db, { admin: true, name: 'dev' });
    await fs.mkdir(config.stateDir, { recursive: true });
    await fs.writeFile(file, `${token}\n`, { mode: 0o600 });
    await fs.chmod(file, 0o600);
    return { token, file };
  } finally {
    await catalog.close();
  }
}
