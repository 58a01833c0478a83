/**
 * The `filestore` command. Mutating verbs print the workflow id first, then the committed result;
 * any error ends with one line `filestore: <CODE>: <message>` and the exit code of its class
 * ({@link exitCodeOf}; docs/cli.md lists every verb and code).
 *
 * Start-up is part of the interface: this file and the command-group files load commander and the
 * config only, and each verb's action imports what it needs when it runs. A catalog read never
 * loads the Temporal SDK, the dev stack, the worker, BullMQ, chokidar or the AWS SDK; only `get` and
 * `cat`, which read through the backends, load those (test/unit/cli-module-graph.test.ts fails if
 * one creeps in elsewhere).
 */
import { Command } from 'commander';
import { FilestoreError, statusOf } from '../errors';
import { createCommandContext, type CommandContext } from './context';
import { registerFileCommands } from './file-commands';
import { registerMountCommands } from './mount-commands';
import { registerMutationCommands } from './mutation-commands';
import { registerReadCommands } from './read-commands';
import { registerStackCommands } from './stack-commands';
import { registerTokenCommands } from './token-commands';
import { registerWatchCommands } from './watch-commands';

export { parseTarget } from './target';

export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Promise<void> {
  const ctx = createCommandContext(out);
  const program = buildProgram(ctx);

  try {
    await program.parseAsync(argv);
  } catch (err) {
    const e = err as { code?: string; exitCode?: number };
    // commander already printed help / version / its own usage error: a usage error exits 2.
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      if (e.exitCode) process.exitCode = USAGE_EXIT_CODE;
      return;
    }
    throw err;
  } finally {
    await ctx.close();
  }
}

/**
 * The whole command tree, every verb registered and grouped for `--help`. Registering opens
 * nothing: `ctx` is used only by the actions, when they run.
 */
export function buildProgram(ctx: CommandContext): Command {
  const program = new Command('filestore')
    .description('Durable, verified, journaled file mutations on Temporal + Postgres')
    .showHelpAfterError()
    .exitOverride();

  // Registration order is the order within each group of `filestore --help`.
  registerStackCommands(program, ctx);
  registerMountCommands(program, ctx);
  registerMutationCommands(program, ctx);
  registerFileCommands(program, ctx);
  registerReadCommands(program, ctx);
  registerWatchCommands(program, ctx);
  registerTokenCommands(program, ctx);
  groupCommands(program);
  return program;
}

/** Exit code of a command line commander refused (unknown verb or option, missing argument). */
export const USAGE_EXIT_CODE = 2;

/**
 * `filestore --help` lists the verbs by task, groups in this order; a verb not listed here lands
 * in commander's default "Commands:" group (test/unit/cli-help.test.ts keeps the table complete).
 */
export const HELP_GROUPS: ReadonlyArray<readonly [heading: string, verbs: readonly string[]]> = [
  ['Files:', ['put', 'get', 'cat', 'ls', 'stat', 'mkdir', 'cp', 'mv', 'rm']],
  ['Catalog and journal:', ['journal', 'status']],
  ['Mounts:', ['mount']],
  ['Drift:', ['drift', 'reconcile', 'watcher']],
  ['Access tokens:', ['token']],
  ['Stack:', ['dev', 'api', 'worker', 'services', 'migrate']],
];

/** Sets each verb's help group (HELP_GROUPS) and orders the verbs so the groups print in that order. */
function groupCommands(program: Command): void {
  const rank = new Map<string, number>();
  HELP_GROUPS.forEach(([heading, verbs], g) =>
    verbs.forEach((verb, i) => {
      const cmd = program.commands.find((c) => c.name() === verb);
      if (!cmd) return;
      cmd.helpGroup(heading);
      rank.set(verb, g * 1000 + i);
    }),
  );
  // commander prints groups in the order their first verb was registered: sort the verbs (stable).
  const commands = program.commands as Command[];
  commands.sort((a, b) => (rank.get(a.name()) ?? 1e9) - (rank.get(b.name()) ?? 1e9));
}

/**
 * The process exit code for an error `main` threw: the error class's row in ERROR_STATUS
 * (src/errors.ts; docs/cli.md lists them), 1 for anything without a Filestore code.
 */
export function exitCodeOf(err: unknown): number {
  const code = err && typeof err === 'object' && 'code' in err ? (err as { code: unknown }).code : undefined;
  return typeof code === 'string' && err instanceof Error && (err instanceof FilestoreError || /^[A-Z][A-Z_]+$/.test(code)) ? statusOf(code).exit : 1;
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
