import path from 'node:path';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { Client, Pool } from 'pg';
import { PROJECT_DIR } from '../src/config';
import * as schema from './schema';

export type Db = NodePgDatabase<typeof schema>;

export interface Catalog {
  db: Db;
  pool: Pool;
  close(): Promise<void>;
}

export const MIGRATIONS_DIR = path.join(PROJECT_DIR, 'db', 'migrations');

/** Opens a pooled connection to the catalog. */
export function openCatalog(databaseUrl: string, opts: { max?: number } = {}): Catalog {
  const pool = new Pool({ connectionString: databaseUrl, max: opts.max ?? 10, application_name: 'filestore' });
  // An idle client losing its server (restart, failover) must not crash the process; the pool reconnects.
  pool.on('error', () => undefined);
  const db = drizzle(pool, { schema });
  return { db, pool, close: () => pool.end() };
}

/** Creates the database named in `databaseUrl` if it does not exist (connects to `postgres` to do it). */
export async function ensureDatabase(databaseUrl: string): Promise<{ created: boolean }> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!name) throw new Error(`DATABASE_URL has no database name: ${databaseUrl}`);
  url.pathname = '/postgres';
  const admin = new Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return { created: false };
    try {
      await admin.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
    } catch (err) {
      // Two processes starting at once: the loser sees duplicate_database, which is fine.
      if ((err as { code?: string }).code !== '42P04') throw err;
    }
    return { created: true };
  } finally {
    await admin.end();
  }
}

/** Drops a database (tests). */
export async function dropDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  url.pathname = '/postgres';
  const admin = new Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** Applies the committed SQL migrations (drizzle's migrator keeps track of what ran). */
export async function runMigrations(databaseUrl: string): Promise<void> {
  // Loaded here, not at the top: every catalog reader (the CLI's reads among them) imports this file.
  const { migrate } = await import('drizzle-orm/node-postgres/migrator');
  await ensureDatabase(databaseUrl);
  // One connection, so the session-level advisory lock serialises concurrent starters (dev + tests).
  const catalog = openCatalog(databaseUrl, { max: 1 });
  try {
    await catalog.pool.query('SELECT pg_advisory_lock(hashtext($1))', ['filestore:migrate']);
    await migrate(catalog.db, { migrationsFolder: MIGRATIONS_DIR });
    await catalog.pool.query('SELECT pg_advisory_unlock(hashtext($1))', ['filestore:migrate']);
  } finally {
    await catalog.close();
  }
}
