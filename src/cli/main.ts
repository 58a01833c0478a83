/**
 * The `filestore` command. Mutating verbs print the workflow id first, then the committed result;
 * any error ends with one line `filestore: <CODE>: <message>` and a non-zero exit.
 */
import path from 'node:path';
import { Command, Option } from 'commander';
import { runMigrations } from '../../db/client';
import { markLocalMount } from '../catalog/mounts';
import { FilestoreClient, type MutationHandle } from '../client';
import { loadConfig, type Config } from '../config';
import { runDevStack } from '../dev/dev-stack';
import { ensurePostgres } from '../dev/private-postgres';
import { ensureRedis } from '../dev/private-redis';
import { FilestoreError, InvalidRequestError } from '../errors';
import { createLogger } from '../logger';
import { startWorker } from '../worker';
import { formatJournal, formatMounts, formatNodes, formatResult, positiveInt } from './format';
import { registerWatchCommands } from './watch-commands';

/** Splits `<mount>:<path>`; the path part is validated by the client. */
export function parseTarget(arg: string): { mount: string; path: string } {
  const i = arg.indexOf(':');
  if (i <= 0) throw new InvalidRequestError(`expected <mount>:<path>, got ${JSON.stringify(arg)}`);
  return { mount: arg.slice(0, i), path: arg.slice(i + 1) };
}

interface MutatingFlags {
  key?: string;
  wait?: boolean;
  waitForLock?: boolean;
  force?: boolean;
  json?: boolean;
}

export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Promise<void> {
  let config: Config | undefined;
  const cfg = () => (config ??= loadConfig());
  let client: FilestoreClient | undefined;
  const connect = async () => (client ??= await FilestoreClient.connect(cfg()));

  async function finish(handle: MutationHandle, flags: MutatingFlags): Promise<void> {
    if (!flags.json) out(`workflow ${handle.workflowId}`);
    if (flags.wait === false) {
      if (flags.json) out(JSON.stringify({ workflowId: handle.workflowId, idempotencyKey: handle.idempotencyKey }));
      return;
    }
    const result = await handle.result();
    out(flags.json ? JSON.stringify(result) : formatResult(result));
  }

  const program = new Command('filestore')
    .description('Durable, verified, journaled file mutations on Temporal + Postgres')
    .showHelpAfterError()
    .exitOverride();

  const mutating = (cmd: Command) =>
    cmd
      .option('--key <idempotency-key>', 'idempotency key (same key → same result, never a second execution)')
      .option('--no-wait', 'print the workflow id and return without waiting for the result')
      .option('--wait-for-lock', 'wait for a conflicting mutation of the path instead of failing')
      .option('--force', 'mutate even if the catalog marks the path (or a node below it) INCONSISTENT')
      .option('--json', 'print the result as JSON');

  program
    .command('dev')
    .description('run the whole stack in the foreground: Postgres, Temporal dev server + Web UI, migrations, worker')
    .action(async () => runDevStack(cfg(), createLogger(cfg().logLevel), out));

  program
    .command('services')
    .description('service helpers for scripts')
    .command('up')
    .description('make sure Postgres and Redis answer, starting private ones that keep running if none do')
    .action(async () => {
      const pg = await ensurePostgres(cfg().databaseUrl, cfg().stateDir);
      out(pg ? `postgres: started a private cluster in ${pg.dataDir}` : 'postgres: answering');
      const redis = await ensureRedis(cfg().redisUrl, cfg().stateDir, true);
      out(redis ? `redis: started a private redis-server at ${cfg().redisUrl}` : 'redis: answering');
    });

  program
    .command('migrate')
    .description('create the catalog database if missing and apply migrations')
    .action(async () => {
      await runMigrations(cfg().databaseUrl);
      out('migrations applied');
    });

  program
    .command('worker')
    .description('run a worker: workflows, general activities, and the local mounts of this host')
    .action(async () => {
      const log = createLogger(cfg().logLevel);
      const worker = await startWorker(cfg(), { logger: log });
      log.info({ taskQueue: cfg().taskQueue, mounts: worker.servedMounts(), metrics: worker.metricsUrl }, 'worker running');
      const stop = () => void worker.shutdown();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await worker.done;
    });

  const mount = program.command('mount').description('manage mounts');
  mount
    .command('add <id>')
    .description('register a mount')
    .requiredOption('--local <dir>', 'directory on this host that the mount exposes')
    .option('--read-only', 'refuse every mutation')
    .option('--watch', 'watch the mount for changes made behind Filestore (drift detection)')
    .option('--allow-special-modes', 'let mutations keep or set setuid, setgid and sticky bits (off: they are stripped, and refused in an explicit mode)')
    .action(async (id: string, o: { local: string; readOnly?: boolean; watch?: boolean; allowSpecialModes?: boolean }) => {
      const c = await connect();
      const row = await c.addLocalMount({ id, rootPath: path.resolve(o.local), readOnly: o.readOnly, watch: o.watch, allowSpecialModes: o.allowSpecialModes });
      out(`mount ${row.id} → ${row.rootPath}${row.options.readOnly ? ' (read-only)' : ''}`);
    });
  mount
    .command('mark <id>')
    .description(
      "(re)write a local mount's identity marker into its root — run it ONLY on the host whose disk is the mount: workers serve a mount only where its marker is",
    )
    .action(async (id: string) => {
      const row = await markLocalMount((await connect()).db, id);
      out(`mount ${row.id} → ${row.rootPath}: identity marker written`);
    });
  mount
    .command('ls')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const rows = await (await connect()).listMounts();
      out(o.json ? JSON.stringify(rows) : formatMounts(rows));
    });

  mutating(program.command('put <local-file> <target>').description('write a local file to <mount>:<path>'))
    .option('--overwrite', 'replace an existing file')
    .option('--no-parents', 'fail instead of creating missing parent directories')
    .action(async (file: string, target: string, o: MutatingFlags & { overwrite?: boolean; parents?: boolean }) => {
      const t = parseTarget(target);
      const handle = await (await connect()).put(t.mount, t.path, { file }, {
        idempotencyKey: o.key,
        overwrite: o.overwrite,
        createParents: o.parents,
        waitForLock: o.waitForLock,
        force: o.force,
      });
      await finish(handle, o);
    });

  mutating(program.command('mkdir <target>').description('create a directory (and missing parents)'))
    .action(async (target: string, o: MutatingFlags) => {
      const t = parseTarget(target);
      await finish(await (await connect()).mkdir(t.mount, t.path, { idempotencyKey: o.key, waitForLock: o.waitForLock, force: o.force }), o);
    });

  for (const [verb, op] of [['mv', 'move'], ['cp', 'copy']] as const) {
    const cmd = mutating(program.command(`${verb} <source> <target>`).description(`${op} within a mount`)).option('--overwrite', 'replace an existing target file');
    if (op === 'copy') cmd.option('-r, --recursive', 'copy a directory tree');
    cmd.action(async (source: string, target: string, o: MutatingFlags & { overwrite?: boolean; recursive?: boolean }) => {
      const s = parseTarget(source);
      const t = parseTarget(target);
      const c = await connect();
      const opts = { idempotencyKey: o.key, waitForLock: o.waitForLock, force: o.force, overwrite: o.overwrite, targetMountId: t.mount };
      await finish(op === 'move' ? await c.move(s.mount, s.path, t.path, opts) : await c.copy(s.mount, s.path, t.path, { ...opts, recursive: o.recursive }), o);
    });
  }

  mutating(program.command('rm <target>').description('delete a file, or a directory tree with -r'))
    .option('-r, --recursive', 'delete a directory and everything below it')
    .action(async (target: string, o: MutatingFlags & { recursive?: boolean }) => {
      const t = parseTarget(target);
      const opts = { idempotencyKey: o.key, waitForLock: o.waitForLock, force: o.force, recursive: o.recursive };
      await finish(await (await connect()).remove(t.mount, t.path, opts), o);
    });

  program
    .command('ls <target>')
    .description('list a directory from the catalog, one page at a time')
    .option('-r, --recursive', 'the whole subtree')
    .option('--limit <n>', 'nodes per page (at most 10000)', positiveInt, 1000)
    .option('--cursor <cursor>', 'continue the listing where the previous page ended (its "next cursor")')
    .option('--json', 'print JSON: {"nodes": [...], "nextCursor": "…" | null}')
    .action(async (target: string, o: { json?: boolean; recursive?: boolean; limit: number; cursor?: string }) => {
      const t = parseTarget(target);
      const page = await (await connect()).listPage(t.mount, t.path, { recursive: o.recursive, limit: o.limit, cursor: o.cursor });
      if (o.json) return out(JSON.stringify(page));
      out(formatNodes(page.nodes));
      // A page is full or the end: say how to go on rather than stopping silently.
      if (page.nextCursor) out(`next cursor: ${page.nextCursor}  (filestore ls ${target}${o.recursive ? ' -r' : ''} --limit ${o.limit} --cursor ${page.nextCursor})`);
    });

  program
    .command('stat <target>')
    .description('catalog metadata of one node')
    .option('--json', 'print JSON')
    .action(async (target: string, o: { json?: boolean }) => {
      const t = parseTarget(target);
      const c = await connect();
      await c.getMount(t.mount);
      const row = await c.getNode(t.mount, t.path);
      if (!row) throw new FilestoreError('NOT_FOUND', `${t.mount}:${t.path} is not in the catalog`);
      out(o.json ? JSON.stringify(row) : formatNodes([row], { long: true }));
    });

  registerWatchCommands(program, mount, { cfg, connect, out });

  const journalCmd = program.command('journal').description('the mutation journal');
  journalCmd
    .command('ls')
    .option('--mount <id>', 'only this mount')
    .addOption(new Option('--status <status>', 'only this status').choices(['PENDING', 'COMMITTED', 'ROLLED_BACK', 'FAILED']))
    .option('--limit <n>', 'most recent n entries', positiveInt, 50)
    .option('--json', 'print JSON')
    .action(async (o: { mount?: string; status?: 'PENDING'; limit: number; json?: boolean }) => {
      const rows = await (await connect()).listJournal({ mountId: o.mount, status: o.status, limit: o.limit });
      out(o.json ? JSON.stringify(rows) : formatJournal(rows));
    });

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
    await client?.close();
  }
}

/** One clear line for any error. */
export function errorLine(err: unknown): string {
  if (err instanceof FilestoreError || (err && typeof err === 'object' && 'code' in err && typeof (err as FilestoreError).code === 'string')) {
    const e = err as FilestoreError;
    return `${e.code}: ${e.message}`;
  }
  return err instanceof Error ? err.message : String(err);
}
