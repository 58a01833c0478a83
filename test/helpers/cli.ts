import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

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
