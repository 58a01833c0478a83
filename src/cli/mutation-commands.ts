/**
 * The mutating verbs: `put`, `mkdir`, `mv`, `cp`, `rm`. Each prints the workflow id first, then the
 * committed result. They load the Temporal client (through FilestoreClient) when they run, and
 * nothing of the worker side: no worker SDK, no backends, no BullMQ.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import type { MutationHandle } from '../client/mutation-starter';
import type { CommandContext } from './context';
import { formatResult } from './format';
import { parseTarget } from './target';

/** `put` draws a progress bar (on a TTY) for files at least this big. */
const PROGRESS_MIN_BYTES = 8 * 1024 * 1024;

interface MutatingFlags {
  key?: string;
  wait?: boolean;
  waitForLock?: boolean;
  force?: boolean;
  json?: boolean;
}

export function registerMutationCommands(program: Command, ctx: CommandContext): void {
  const { mutations, out } = ctx;

  /** @param progressBytes - draw a progress bar of this many bytes while waiting (a TTY `put`). */
  async function finish(handle: MutationHandle, flags: MutatingFlags, progressBytes?: number): Promise<void> {
    if (!flags.json) out(`workflow ${handle.workflowId}`);
    if (flags.wait === false) {
      if (flags.json) out(JSON.stringify({ workflowId: handle.workflowId, idempotencyKey: handle.idempotencyKey }));
      return;
    }
    const bar = progressBytes !== undefined && !flags.json && process.stderr.isTTY === true;
    const result = bar ? await (await import('./progress')).resultWithProgress(handle, progressBytes) : await handle.result();
    out(flags.json ? JSON.stringify(result) : formatResult(result));
  }

  const mutating = (cmd: Command) =>
    cmd
      .option('--key <idempotency-key>', 'idempotency key (same key → same result, never a second execution)')
      .option('--no-wait', 'print the workflow id and return without waiting for the result')
      .option('--wait-for-lock', 'wait for a conflicting mutation of the path instead of failing')
      .option('--force', 'mutate even if the catalog marks the path (or a node below it) INCONSISTENT')
      .option('--json', 'print the result as JSON');

  mutating(program.command('put <local-file> <target>').description('write a local file to <mount>:<path>'))
    .option('--overwrite', 'replace an existing file')
    .option('--no-parents', 'fail instead of creating missing parent directories')
    .action(async (file: string, target: string, o: MutatingFlags & { overwrite?: boolean; parents?: boolean }) => {
      const t = parseTarget(target);
      const handle = await (await mutations()).put(t.mount, t.path, { file }, {
        idempotencyKey: o.key,
        overwrite: o.overwrite,
        createParents: o.parents,
        waitForLock: o.waitForLock,
        force: o.force,
      });
      // The bar only for what takes a while; the size is the caller's view (the worker re-checks).
      const size = await fs.promises.stat(file).then((st) => st.size, () => 0);
      await finish(handle, o, size >= PROGRESS_MIN_BYTES ? size : undefined);
    });

  mutating(program.command('mkdir <target>').description('create a directory (and missing parents)'))
    .action(async (target: string, o: MutatingFlags) => {
      const t = parseTarget(target);
      await finish(await (await mutations()).mkdir(t.mount, t.path, { idempotencyKey: o.key, waitForLock: o.waitForLock, force: o.force }), o);
    });

  for (const [verb, op] of [['mv', 'move'], ['cp', 'copy']] as const) {
    const cmd = mutating(program.command(`${verb} <source> <target>`).description(`${op} within a mount, or a file to another mount: ${verb} <mount>:<path> <other-mount>:<path>`)).option('--overwrite', 'replace an existing target file');
    if (op === 'copy') cmd.option('-r, --recursive', 'copy a directory tree');
    cmd.action(async (source: string, target: string, o: MutatingFlags & { overwrite?: boolean; recursive?: boolean }) => {
      const s = parseTarget(source);
      const t = parseTarget(target);
      const c = await mutations();
      const opts = { idempotencyKey: o.key, waitForLock: o.waitForLock, force: o.force, overwrite: o.overwrite, targetMountId: t.mount };
      await finish(op === 'move' ? await c.move(s.mount, s.path, t.path, opts) : await c.copy(s.mount, s.path, t.path, { ...opts, recursive: o.recursive }), o);
    });
  }

  mutating(program.command('rm <target>').description('delete a file, or a directory tree with -r'))
    .option('-r, --recursive', 'delete a directory and everything below it')
    .action(async (target: string, o: MutatingFlags & { recursive?: boolean }) => {
      const t = parseTarget(target);
      const opts = { idempotencyKey: o.key, waitForLock: o.waitForLock, force: o.force, recursive: o.recursive };
      await finish(await (await mutations()).remove(t.mount, t.path, opts), o);
    });
}
