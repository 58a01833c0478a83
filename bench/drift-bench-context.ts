/**
 * What the phases of bench/drift-bench.ts share: the context of one run (catalog, connections,
 * temp dirs, the running watcher service) and the ids of the mounts.
 */
import type { FSWatcher } from 'chokidar';
import type { Redis } from 'ioredis';
import type { Client as PgClient } from 'pg';
import type { Catalog } from '../db/client';
import type { Config } from '../src/config';
import type { createLogger } from '../src/logger';
import type { RunningWatcher } from '../src/watcher/watcher-service';
import type { countRedisCommands } from './drift-bench-helpers';

export const MOUNT = 'drift';
export const BIG_MOUNT = 'big';
export const MILLION_MOUNT = 'million';

export interface Ctx {
  config: Config;
  /** The environment, minus the settings the bench ignores: what watcher processes it starts get. */
  env: NodeJS.ProcessEnv;
  catalog: Catalog;
  /** Our own connection for polling and resets (the watcher has its own pool). */
  pg: PgClient;
  /** Our own connection for INFO and key clean-up. */
  redis: Redis;
  tmp: string;
  /** Directories outside `tmp` the teardown removes (the million-file tree on /dev/shm). */
  cleanup: string[];
  root: string;
  bigRoot: string;
  logger: ReturnType<typeof createLogger>;
  watcher: RunningWatcher | null;
  raw: FSWatcher | null;
  /** Commands this process sent through ioredis, the bench's own connection excluded. */
  sent: ReturnType<typeof countRedisCommands>;
}

/** Zero-padded index, for file names (`f-00042.txt`). */
export const pad = (i: number, n = 5) => String(i).padStart(n, '0');
