/**
 * The `filestore` command. Mutating verbs print the workflow id first, then the committed result;
 * any error ends with one line `filestore: <CODE>: <message>` and a non-zero exit.
 *
 * Start-up is part of the interface: this file and the command-group files load commander and the
 * config only, and each verb's action imports what it needs when it runs. A catalog read never
 * loads the Temporal SDK, the dev stack, the worker, BullMQ, chokidar or the AWS SDK
 * (test/unit/cli-module-graph.test.ts fails if one creeps back in).
 */
import { Command } from 'commander';
import { FilestoreError } from '../errors';
import { createCommandContext } from './context';
import { registerMountCommands } from './mount-commands';
import { registerMutationCommands } from './mutation-commands';
import { registerReadCommands } from './read-commands';
import { registerStackCommands } from './stack-commands';
import { registerWatchCommands } from './watch-commands';

export { parseTarget } from './target';

export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Promise<void> {
  const ctx = createCommandContext(out);

  const program = new Command('filestore')
    .description('Durable, verified, journaled file mutations on Temporal + Postgres')
    .showHelpAfterError()
    .exitOverride();

  // Registration order is the order of `filestore --help`.
  registerStackCommands(program, ctx);
  registerMountCommands(program, ctx);
  registerMutationCommands(program, ctx);
  registerReadCommands(program, ctx);
  registerWatchCommands(program, ctx);

  try {
    await program.parseAsync(argv);
  } catch (err) {
    const e = err as { code?: string; exitCode?: number };
    // commander already printed help / version / its own usage error.
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      if (e.exitCode) process.exitCode = e.exitCode;
      return;
    }
    throw err;
  } finally {
    await ctx.close();
  }
}

/** One clear line for any error. */
export function errorLine(err: unknown): string {
  if (err instanceof FilestoreError || (err && typeof err === 'object' && 'code' in err && typeof (err as FilestoreError).code === 'string')) {
    const e = err as FilestoreError;
    return `${e.code}: ${e.message}`;
  }
  // drizzle's "Failed query: <sql> params: …" spans lines and hides why: say what Postgres said.
  if (err instanceof Error && err.message.startsWith('Failed query:') && err.cause instanceof Error) return `catalog query failed: ${err.cause.message}`;
  return err instanceof Error ? err.message : String(err);
}
