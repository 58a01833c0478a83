/**
 * The `filestore api` process: opens the catalog, a Temporal client, the executors and Redis,
 * builds the server and listens on FILESTORE_API_HOST:FILESTORE_API_PORT. The upload area is swept
 * at start and every FILESTORE_UPLOAD_GRACE_MS of what crashed runs left. `close()` is graceful:
 * no new connections, in-flight requests (uploads too) finish for up to
 * FILESTORE_API_SHUTDOWN_GRACE_MS, then the rest are cut.
 */
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { FilestoreClient } from '../client/filestore-client';
import type { Config } from '../config';
import { ExecutorRegistry } from '../executor-registry';
import { s3OptionsOf } from '../executors/index';
import type { Logger } from '../logger';
import { assertUploadAreaApart, uploadStoreOf } from '../operations/upload-store';
import { buildApiServer, type ApiApp } from './server';

/** Postgres connections of the API's catalog pool. */
const API_CATALOG_POOL = 16;

export interface RunningApi {
  /** `http://host:port` */
  url: string;
  app: ApiApp;
  close(): Promise<void>;
}

export async function startApi(config: Config, opts: { logger?: Logger; client?: FilestoreClient } = {}): Promise<RunningApi> {
  // Every request reads the catalog (token, mount, node): a pool sized for concurrent clients.
  const client = opts.client ?? (await FilestoreClient.connect(config, { catalogPoolSize: API_CATALOG_POOL }));
  const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, commandTimeout: 3_000, connectTimeout: 3_000 });
  redis.on('error', () => undefined); // /readyz reports it; ioredis keeps reconnecting
  const uploads = uploadStoreOf(config);
  assertUploadAreaApart(uploads, await client.listMounts());
  const executors = new ExecutorRegistry(client.db, {}, s3OptionsOf(config));
  const app = await buildApiServer({ config, db: client.db, client, executors, uploads, redis, logger: opts.logger });

  const sweep = () => uploads.sweep(config.uploadGraceMs, (id) => client.isRunning(id)).catch((err: unknown) => opts.logger?.warn({ err }, 'upload sweep failed'));
  await sweep();
  const sweeper = setInterval(() => void sweep(), Math.max(60_000, config.uploadGraceMs)).unref();

  await app.listen({ host: config.apiHost, port: config.apiPort });
  const { port } = app.server.address() as AddressInfo;
  const host = config.apiHost.includes(':') ? `[${config.apiHost}]` : config.apiHost;

  let closing: Promise<void> | null = null;
  return {
    url: `http://${host}:${port}`,
    app,
    close: () =>
      (closing ??= (async () => {
        clearInterval(sweeper);
        const cut = setTimeout(() => app.server.closeAllConnections(), config.apiShutdownGraceMs).unref();
        await app.close();
        clearTimeout(cut);
        redis.disconnect();
        if (!opts.client) await client.close();
      })()),
  };
}
