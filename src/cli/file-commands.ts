/**
 * Reading files back: `get <mount>:<path> <file|->` and `cat <mount>:<path>`. The bytes come from
 * the mount's backend through src/operations/read-file.ts (the same reads as the HTTP API's
 * download); the backends — and with them the AWS SDK — load inside these actions only.
 */
import type { Command } from 'commander';
import { InvalidRequestError } from '../errors';
import type { CommandContext } from './context';
import { wantsProgress } from './progress-mode';
import { parseTarget } from './target';

interface GetFlags {
  overwrite?: boolean;
  progress?: boolean;
  json?: boolean;
}

export function registerFileCommands(program: Command, ctx: CommandContext): void {
  const { out } = ctx;

  /** A bar factory for `onStart`, or nothing when no bar is wanted (see wantsProgress). */
  async function barFor(flags: GetFlags, toStdout: boolean) {
    // Writing the file to stdout: a bar only when forced (the terminal shows the bytes themselves).
    const mode = toStdout && flags.progress !== true ? { ...flags, progress: false } : flags;
    const { byteBar } = await import('./progress');
    return (size: number) => (wantsProgress(mode, size) ? byteBar('downloading', size) : undefined);
  }

  program
    .command('get <source> <file>')
    .description('download <mount>:<path> to a local file (or into a directory, or to stdout with -); the file appears only when complete')
    .option('--overwrite', 'replace an existing local file')
    .option('--progress', 'draw a progress bar even when not on a terminal or for small files')
    .option('--no-progress', 'never draw a progress bar')
    .option('--json', 'print {"mount", "path", "bytes", "etag", "sha256", "file"} when done')
    .action(async (source: string, file: string, o: GetFlags) => {
      const t = parseTarget(source);
      const toStdout = file === '-';
      if (toStdout && o.json) throw new InvalidRequestError('--json cannot be combined with `-` (stdout carries the file); write to a file instead');
      const [db, download] = await Promise.all([ctx.db(), import('./download')]);
      const deps = download.readerDeps(db, ctx.cfg());
      const onStart = await barFor(o, toStdout);
      if (toStdout) {
        await download.downloadToStdout(deps, t.mount, t.path, { onStart });
        return;
      }
      const r = await download.downloadToFile(deps, t.mount, t.path, file, { overwrite: o.overwrite, onStart });
      out(o.json ? JSON.stringify(r) : `${r.mount}:${r.path} → ${r.file} (${r.bytes} bytes, sha256 ${r.sha256})`);
    });

  program
    .command('cat <source>')
    .description('write <mount>:<path> to stdout')
    .action(async (source: string) => {
      const t = parseTarget(source);
      const [db, download] = await Promise.all([ctx.db(), import('./download')]);
      await download.downloadToStdout(download.readerDeps(db, ctx.cfg()), t.mount, t.path);
    });
}
