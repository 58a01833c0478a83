import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ENV_NAMES, type Config } from '../../src/config';

const run = promisify(execFile);

/** bin/filestore.js, run on the built dist/ exactly as a person runs it. */
export const FILESTORE_BIN = path.join(__dirname, '..', '..', 'bin', 'filestore.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `filestore <args>` with `env`; never throws — a failure comes back as a non-zero code. */
export async function runCli(env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [FILESTORE_BIN, ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Environment that points a `filestore` child process at a test stack's database, Temporal and queues. */
export function stackEnv(config: Config, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    [ENV_NAMES.databaseUrl]: config.databaseUrl,
    [ENV_NAMES.temporalAddress]: config.temporalAddress,
    [ENV_NAMES.temporalHttpUrl]: config.temporalHttpUrl ?? 'off',
    [ENV_NAMES.taskQueue]: config.taskQueue,
    [ENV_NAMES.redisUrl]: config.redisUrl,
    [ENV_NAMES.mountRefreshMs]: '500',
    [ENV_NAMES.logLevel]: 'warn',
    [ENV_NAMES.sourceRoots]: config.sourceRoots.join(','),
    ...extra,
  };
}
