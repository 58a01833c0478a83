/**
 * What every command group of the CLI shares: the config, the connections it opens on first use,
 * and the output. Connections are opened lazily and each verb loads only the modules it needs
 * (dynamic imports), so a catalog read never pays for the Temporal SDK, the worker, the dev stack,
 * BullMQ or the AWS SDK (test/unit/cli-module-graph.test.ts keeps it so).
 */
import type { Db } from '../../db/client';
import type { CatalogReader } from '../client/catalog-reader';
import type { FilestoreClient } from '../client/filestore-client';
import type { MutationStarter } from '../client/mutation-starter';
import { loadConfig, temporalHttpUrlOf, type Config } from '../config';

export interface CommandContext {
  cfg(): Config;
  /** The catalog alone (Postgres): reads and mount settings. No Temporal connection. */
  reader(): Promise<CatalogReader>;
  /** Catalog database of {@link CommandContext.reader}, for the catalog functions that take a Db. */
  db(): Promise<Db>;
  /** Temporal and the catalog: for the verbs that start mutations. Loads @temporalio/client. */
  connect(): Promise<FilestoreClient>;
  /**
   * What the mutating verbs start through: over Temporal's HTTP API when one is configured
   * (temporalHttpUrlOf), without loading @temporalio/client unless that path hands over to gRPC;
   * else the connected FilestoreClient. Same requests, checks and results either way.
   */
  mutations(): Promise<Pick<MutationStarter, 'put' | 'mkdir' | 'move' | 'copy' | 'remove' | 'reconcile'>>;
  out(line: string): void;
}

/** The context of one `main()` call, and the `close()` that releases what it opened. */
export function createCommandContext(out: (line: string) => void): CommandContext & { close(): Promise<void> } {
  let config: Config | undefined;
  const cfg = () => (config ??= loadConfig());
  let reader: Promise<CatalogReader> | undefined;
  /** The reader opened its own pool (no client was connected yet): close() must end it. */
  let ownReader = false;
  let client: Promise<FilestoreClient> | undefined;
  const closers: Array<() => void> = [];
  const ctx = {
    cfg,
    out,
    reader: () => {
      if (reader) return reader;
      if (client) {
        // A verb that already connected reads on the client's pool rather than opening a second one.
        const c = client;
        return (reader = import('../client/catalog-reader').then(async ({ CatalogReader }) => new CatalogReader((await c).db)));
      }
      ownReader = true;
      return (reader = import('../client/catalog-reader').then(({ CatalogReader }) => CatalogReader.open(cfg())));
    },
    db: async () => (await ctx.reader()).db,
    connect: () => (client ??= import('../client/filestore-client').then(({ FilestoreClient }) => FilestoreClient.connect(cfg()))),
    mutations: async () => {
      const httpUrl = temporalHttpUrlOf(cfg());
      if (!httpUrl) return ctx.connect();
      const [{ MutationStarter }, { HttpStartTransport }, db] = await Promise.all([import('../client/mutation-starter'), import('../client/temporal-http'), ctx.db()]);
      const transport = new HttpStartTransport(httpUrl, cfg().temporalNamespace, async () => {
        const c = await ctx.connect();
        return { start: (spec) => c.startRun(spec), handleOf: (id) => c.handleOf(id) };
      });
      closers.push(() => transport.close());
      return new MutationStarter(cfg(), db, transport);
    },
    async close() {
      // Settled, not awaited: a failed open has nothing to close and its error is already on its way.
      const [r, c] = await Promise.allSettled([reader, client]);
      if (ownReader && r.status === 'fulfilled' && r.value) await r.value.close();
      if (c.status === 'fulfilled' && c.value) await c.value.close();
      for (const close of closers) close();
    },
  };
  return ctx;
}
