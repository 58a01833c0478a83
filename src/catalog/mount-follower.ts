/**
 * Keeps a process in step with backend_mounts: runs `refresh` once now, again at once on
 * `NOTIFY filestore_mounts` (sent by every mount change), and every `intervalMs` as the fallback
 * for a missed notification or a lost LISTEN connection. Runs never overlap.
 */
import { Client as PgClient } from 'pg';
import type { Logger } from '../logger';
import { MOUNTS_CHANNEL } from './mounts';

export interface MountFollower {
  /** Runs a refresh now (after any in flight) and resolves when it is done. */
  refresh(): Promise<void>;
  /** Stops following; waits for a refresh in flight. */
  stop(): Promise<void>;
}

export async function followMounts(databaseUrl: string, intervalMs: number, refresh: () => Promise<void>, log?: Logger): Promise<MountFollower> {
  let chain: Promise<void> = Promise.resolve();
  let stopped = false;
  const run = () => {
    chain = chain
      .then(() => (stopped ? undefined : refresh()))
      .catch((err: Error) => log?.warn({ err: err.message }, 'mount refresh failed'));
    return chain;
  };
  await run();
  const timer = setInterval(run, intervalMs);
  timer.unref();
  const listener = new PgClient({ connectionString: databaseUrl });
  listener.on('error', () => undefined);
  await listener.connect().then(
    () => listener.query(`LISTEN ${MOUNTS_CHANNEL}`),
    (err: Error) => log?.warn({ err: err.message }, 'LISTEN for mount changes failed; polling only'),
  );
  listener.on('notification', () => void run());
  return {
    refresh: run,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await chain;
      await listener.end().catch(() => undefined);
    },
  };
}
