/**
 * A private PostgreSQL cluster for laptops with no server running: initdb + pg_ctl from the
 * installed server binaries, data under the state folder, listening where DATABASE_URL points.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';

/** True when a Postgres server accepts connections at the URL's host and port. */
export async function postgresAnswers(databaseUrl: string): Promise<boolean> {
  const url = new URL(databaseUrl);
  url.pathname = '/postgres';
  const client = new Client({ connectionString: url.toString(), connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.end();
    return true;
  } catch (err) {
    const code = (err as { code?: string }).code;
    // Anything but "nobody listens" means a server is there (e.g. auth or a missing database).
    return !(code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'ETIMEDOUT' || /timeout/i.test((err as Error).message));
  }
}

/** Directory holding initdb and pg_ctl, newest installed major version first; null if none. */
export function findPostgresBin(): string | null {
  const base = '/usr/lib/postgresql';
  if (!fs.existsSync(base)) return null;
  const versions = fs.readdirSync(base).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = path.join(base, v, 'bin');
    if (fs.existsSync(path.join(bin, 'initdb')) && fs.existsSync(path.join(bin, 'pg_ctl'))) return bin;
  }
  return null;
}

export interface PrivatePostgres {
  dataDir: string;
  stop(): void;
}

/**
 * Starts (initialising on first use) a cluster in `<stateDir>/postgres` on the URL's port, with
 * trust auth for local connections. PostgreSQL refuses to run as root, so as root the data folder
 * is handed to the `postgres` user and the binaries run as that user.
 */
export function startPrivatePostgres(databaseUrl: string, stateDir: string, binDir: string): PrivatePostgres {
  const url = new URL(databaseUrl);
  const port = url.port || '5432';
  const user = decodeURIComponent(url.username || 'postgres');
  const dataDir = path.join(stateDir, 'postgres');
  const logFile = path.join(stateDir, 'postgres.log');
  fs.mkdirSync(stateDir, { recursive: true });
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]) => {
    const full = path.join(binDir, cmd);
    if (asRoot) execFileSync('runuser', ['-u', 'postgres', '--', full, ...args], { stdio: 'ignore' });
    else execFileSync(full, args, { stdio: 'ignore' });
  };
  if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
    fs.mkdirSync(dataDir, { recursive: true });
    if (asRoot) execFileSync('chown', ['-R', 'postgres:postgres', dataDir]);
    run('initdb', ['-D', dataDir, '-U', user, '--auth=trust', '--encoding=UTF8']);
  }
  if (asRoot) {
    fs.closeSync(fs.openSync(logFile, 'a'));
    execFileSync('chown', ['postgres:postgres', logFile]);
  }
  const host = url.hostname === 'localhost' ? '127.0.0.1' : url.hostname;
  // Unix socket in the data folder: /var/run/postgresql may not exist or be writable.
  run('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-o', `-p ${port} -h ${host} -k ${dataDir}`, 'start']);
  return { dataDir, stop: () => run('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', 'stop']) };
}

/** Makes sure a Postgres answers at `databaseUrl`, starting a private cluster if none does; null when one already answered. */
export async function ensurePostgres(databaseUrl: string, stateDir: string): Promise<PrivatePostgres | null> {
  if (await postgresAnswers(databaseUrl)) return null;
  const bin = findPostgresBin();
  if (!bin) throw new Error(`no Postgres answers at ${databaseUrl} and no PostgreSQL server binaries are installed (apt-get install postgresql)`);
  return startPrivatePostgres(databaseUrl, stateDir, bin);
}
