/** Finding and running the Temporal CLI dev server (with the Web UI) for `filestore dev`. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { devTemporalHttpFile, PROJECT_DIR, type Config, type DevTemporalHttp } from '../config';
import { devServerSearchAttributeArgs } from '../temporal';
import { stopChild } from './child-process';
import { freePort } from './free-port';

/** The project's own tools folder (git-ignored); scripts/bootstrap.sh builds the Temporal CLI into it. */
export const TOOLS_BIN = path.join(PROJECT_DIR, '.tools', 'bin');

/** TEMPORAL_CLI_PATH, then `temporal` on PATH, then .tools/bin/temporal; null when none exists. */
export function findTemporalCli(config: Pick<Config, 'temporalCliPath'>): string | null {
  if (config.temporalCliPath) return fs.existsSync(config.temporalCliPath) ? config.temporalCliPath : null;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'temporal');
    if (dir && fs.existsSync(candidate)) return candidate;
  }
  const local = path.join(TOOLS_BIN, 'temporal');
  return fs.existsSync(local) ? local : null;
}

/** True when a Temporal frontend answers at `address`. */
export async function temporalAnswers(address: string): Promise<boolean> {
  try {
    const connection = await Connection.connect({ address, connectTimeout: '1s' });
    try {
      await connection.workflowService.getSystemInfo({});
      return true;
    } finally {
      await connection.close();
    }
  } catch {
    return false;
  }
}

export interface DevServer {
  address: string;
  uiUrl: string;
  /** Port of its HTTP API (the one asked for, else undefined: a random one). */
  httpPort: number | undefined;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * The port for the dev server's HTTP API: FILESTORE_TEMPORAL_HTTP_URL's when it names the server's
 * own host, else one the kernel picks as free now (never a fixed port someone else may hold).
 */
export async function devServerHttpPort(config: Pick<Config, 'temporalHttpUrl' | 'temporalAddress'>): Promise<number> {
  const host = config.temporalAddress.split(':')[0];
  if (config.temporalHttpUrl !== undefined && config.temporalHttpUrl !== 'off') {
    const url = new URL(config.temporalHttpUrl);
    if (url.hostname === host && url.port !== '') return Number(url.port);
  }
  return freePort(host);
}

/**
 * Records the dev server's HTTP API for the CLI (temporalHttpUrlOf) while it runs; the returned
 * function removes the record again (on stop).
 */
export function recordDevTemporalHttp(config: Pick<Config, 'stateDir'>, record: DevTemporalHttp): () => void {
  const file = devTemporalHttpFile(config);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(record));
  fs.renameSync(`${file}.tmp`, file);
  return () => fs.rmSync(file, { force: true });
}

/**
 * Starts `temporal server start-dev` bound to `address`, persisting to `dbFile` so runs survive a
 * restart, with Filestore's search attributes registered; resolves once the frontend answers.
 */
export async function startTemporalDevServer(opts: { cliPath: string; address: string; uiPort: number; dbFile: string; logFile: string; httpPort?: number }): Promise<DevServer> {
  const [host, portText] = opts.address.split(':');
  fs.mkdirSync(path.dirname(opts.dbFile), { recursive: true });
  const log = fs.openSync(opts.logFile, 'a');
  const child = spawn(
    opts.cliPath,
    [
      'server', 'start-dev',
      '--ip', host, '--port', portText,
      '--ui-port', String(opts.uiPort),
      // The HTTP API the CLI starts mutations through (see recordDevTemporalHttp); else a random port.
      ...(opts.httpPort !== undefined ? ['--http-port', String(opts.httpPort)] : []),
      '--db-filename', opts.dbFile,
      '--log-level', 'warn',
      ...devServerSearchAttributeArgs(),
    ],
    { stdio: ['ignore', log, log] },
  );
  fs.closeSync(log);
  let exited: string | null = null;
  child.once('exit', (code, signal) => (exited = `exited with ${signal ?? code}`));
  const deadline = Date.now() + 60_000;
  while (!(await temporalAnswers(opts.address))) {
    if (exited) throw new Error(`Temporal dev server ${exited}; see ${opts.logFile}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`Temporal dev server did not answer at ${opts.address} within 60 s; see ${opts.logFile}`);
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  return {
    address: opts.address,
    uiUrl: `http://${host}:${opts.uiPort}`,
    httpPort: opts.httpPort,
    process: child,
    stop: () => stopChild(child),
  };
}
