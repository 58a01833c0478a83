/**
 * The mutating verbs: `put`, `mkdir`, `mv`, `cp`, `rm`, `reconcile`. Each prints the workflow id
 * first, then the committed result. They load the Temporal client (through FilestoreClient) when
 * they run, and nothing of the worker side: no worker SDK, no backends, no BullMQ.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import type { MutationHandle } from '../client/mutation-starter';
import type { CommandContext } from './context';
import { formatResult } from './format';
import { PROGRESS_MIN_BYTES, wantsProgress } from './progress-mode';
import { parseTarget } from './target';

interface MutatingFlags {
  key?: string;
  wait?: boolean;
  waitForLock?: boolean;
  force?: boolean;
  json?: boolean;
  /** `--progress` / `--no-progress` (put, cp, mv); undefined: a bar on a TTY for large files. */
  progress?: boolean;
}

export function registerMutationCommands(program: Command, ctx: CommandContext): void {
  const { mutations, out } = ctx;

  /**
   * Prints the workflow id, then waits for and prints the result.
   * @param progress - the transfer's size and what the bar says (put, cp, mv); a bar is drawn when
   *   wantsProgress agrees (a TTY and a large file, or --progress).
   */
  async function finish(handle: MutationHandle, flags: MutatingFlags, progress?: { bytes: number | undefined; label: string }): Promise<void> {
    if (!flags.json) out(`workflow ${handle.workflowId}`);
    if (flags.wait === false) {
      if (flags.json) out(JSON.stringify({ workflowId: handle.workflowId, idempotencyKey: handle.idempotencyKey }));
      return;
    }
    const bytes = progress?.bytes;
    const bar = progress !== undefined && bytes !== undefined && wantsProgress(flags, bytes);
    const result = bar ? await (await import('./progress')).resultWithProgress(handle, bytes, progress.label) : await handle.result();
    out(flags.json ? JSON.stringify(result) : formatResult(result));
  }

  /** Size of a catalogued file (what a cp/mv bar counts), undefined for a directory or an unknown path. */
  async function catalogFileSize(mount: string, nodePath: string): Promise<number | undefined> {
    const node = await (await ctx.reader()).getNode(mount, nodePath).catch(() => null);
    return node?.kind === 'file' ? Number(node.size) : undefined;
  }

  const withProgress = (cmd: Command) =>
    cmd.option('--progress', 'draw a progress bar even when not on a terminal or for small files').option('--no-progress', 'never draw a progress bar');

  const mutating = (cmd: Command) =>
    cmd
      .option('--key <idempotency-key>', 'idempotency key (same key → same result, never a second execution)')
      .option('--no-wait', 'print the workflow id and return without waiting for the result')
      .option('--wait-for-lock', 'wait for a conflicting mutation of the path instead of failing')
      .option('--force', 'mutate even if the catalog marks the path (or a node below it) INCONSISTENT')
      .option('--json', 'print the result as JSON');

  withProgress(mutating(program.command('put <local-file> <target>').description('write a local file to <mount>:<path>')))
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
      const size = await fs.promises.stat(file).then((st) => st.size, () => undefined);
      await finish(handle, o, { bytes: size, label: 'uploading' });
    });

  mutating(program.command('mkdir <target>').description('create a directory (and missing parents)'))
    .action(async (target: string, o: MutatingFlags) => {
      const t = parseTarget(target);
      await finish(await (await mutations()).mkdir(t.mount, t.path, { idempotencyKey: o.key, waitForLock: o.waitForLock, force: o.force }), o);
    });

  for (const [verb, op] of [['mv', 'move'], ['cp', 'copy']] as const) {
    const cmd = withProgress(mutating(program.command(`${verb} <source> <target>`).description(`${op} within a mount, or a file to another mount: ${verb} <mount>:<path> <other-mount>:<path>`)).option('--overwrite', 'replace an existing target file'));
    if (op === 'copy') cmd.option('-r, --recursive', 'copy a directory tree');
    cmd.action(async (source: string, target: string, o: MutatingFlags & { overwrite?: boolean; recursive?: boolean }) => {
      const s = parseTarget(source);
      const t = parseTarget(target);
      // The size before the start (a move takes the node away); looked up only when a bar could be drawn.
      const bytes = o.wait !== false && wantsProgress(o, PROGRESS_MIN_BYTES) ? await catalogFileSize(s.mount, s.path) : undefined;
      const c = await mutations();
      const opts = { idempotencyKey: o.key, waitForLock: o.waitForLock, force: o.force, overwrite: o.overwrite, targetMountId: t.mount };
      const handle = op === 'move' ? await c.move(s.mount, s.path, t.path, opts) : await c.copy(s.mount, s.path, t.path, { ...opts, recursive: o.recursive });
      // Bytes travel only for a file (a same-mount move is a rename: its bar jumps to the end).
      await finish(handle, o, { bytes, label: op === 'move' ? 'moving' : 'copying' });
    });
  }

  mutating(program.command('rm <target>').description('delete a file, or a directory tree with -r'))
    .option('-r, --recursive', 'delete a directory and everything below it')
    .action(async (target: string, o: MutatingFlags & { recursive?: boolean }) => {
      const t = parseTarget(target);
      const opts = { idempotencyKey: o.key, waitForLock: o.waitForLock, force: o.force, recursive: o.recursive };
      await finish(await (await mutations()).remove(t.mount, t.path, opts), o);
    });

  mutating(program.command('reconcile <target>').description("accept what is on the backend now as the catalog's truth for <mount>:<path> (clears INCONSISTENT, resolves its drift events)"))
    .option('-r, --recursive', 'the whole subtree below the path')
    .action(async (target: string, o: MutatingFlags & { recursive?: boolean }) => {
      const t = parseTarget(target);
      const opts = { idempotencyKey: o.key, waitForLock: o.waitForLock, force: o.force, recursive: o.recursive };
      await finish(await (await mutations()).reconcile(t.mount, t.path, opts), o);
    });
}
