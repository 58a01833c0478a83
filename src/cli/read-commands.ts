/**
 * Catalog reads: `ls`, `stat`, `journal ls` and `journal show`. They open the catalog alone
 * (CatalogReader): no Temporal connection, none of its SDK — a read costs a Postgres round trip and
 * little else. `status` is the exception: a run's state lives in Temporal, so it connects.
 */
import { Option, type Command } from 'commander';
import { FilestoreError, NotFoundError } from '../errors';
import type { CommandContext } from './context';
import { formatJournal, formatJournalEntry, formatNodes, formatRunStatus, positiveInt } from './format';
import { parseTarget } from './target';

export function registerReadCommands(program: Command, ctx: CommandContext): void {
  const { out } = ctx;

  program
    .command('ls <target>')
    .description('list a directory from the catalog, one page at a time')
    .option('-r, --recursive', 'the whole subtree')
    .option('--limit <n>', 'nodes per page (at most 10000)', positiveInt, 1000)
    .option('--cursor <cursor>', 'continue the listing where the previous page ended (its "next cursor")')
    .option('--json', 'print JSON: {"nodes": [...], "nextCursor": "…" | null}')
    .action(async (target: string, o: { json?: boolean; recursive?: boolean; limit: number; cursor?: string }) => {
      const t = parseTarget(target);
      const page = await (await ctx.reader()).listPage(t.mount, t.path, { recursive: o.recursive, limit: o.limit, cursor: o.cursor });
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
      const reader = await ctx.reader();
      await reader.getMount(t.mount);
      const row = await reader.getNode(t.mount, t.path);
      if (!row) throw new FilestoreError('NOT_FOUND', `${t.mount}:${t.path} is not in the catalog`);
      out(o.json ? JSON.stringify(row) : formatNodes([row], { long: true }));
    });

  const journalCmd = program.command('journal').description('the mutation journal');
  journalCmd
    .command('ls')
    .description('journal entries, newest first, one page at a time')
    .option('--mount <id>', 'only this mount')
    .addOption(new Option('--status <status>', 'only this status').choices(['PENDING', 'COMMITTED', 'ROLLED_BACK', 'FAILED']))
    .option('--limit <n>', 'entries per page', positiveInt, 50)
    .option('--cursor <cursor>', 'continue where the previous page ended (its "next cursor")')
    .option('--json', 'print JSON: {"entries": [...], "nextCursor": "…" | null}')
    .action(async (o: { mount?: string; status?: 'PENDING'; limit: number; cursor?: string; json?: boolean }) => {
      const [db, { listJournalPage }] = await Promise.all([ctx.db(), import('../catalog/journal')]);
      const page = await listJournalPage(db, { mountId: o.mount, status: o.status, limit: o.limit, cursor: o.cursor });
      if (o.json) return out(JSON.stringify(page));
      out(formatJournal(page.entries));
      if (page.nextCursor) {
        const again = ['filestore journal ls', ...(o.mount ? [`--mount ${o.mount}`] : []), ...(o.status ? [`--status ${o.status}`] : []), `--limit ${o.limit}`, `--cursor ${page.nextCursor}`];
        out(`next cursor: ${page.nextCursor}  (${again.join(' ')})`);
      }
    });

  journalCmd
    .command('show <id-or-key>')
    .description('one journal entry, by its id or its idempotency key: request, result or error')
    .option('--json', 'print the entry as JSON')
    .action(async (idOrKey: string, o: { json?: boolean }) => {
      const row = await (await ctx.reader()).getJournalEntry(idOrKey);
      if (!row) throw new NotFoundError(`journal entry ${JSON.stringify(idOrKey)}`, { idOrKey });
      out(o.json ? JSON.stringify(row) : formatJournalEntry(row));
    });

  program
    .command('status <workflow-id>')
    .description("a mutation's run: RUNNING, or how it ended (its result or its error)")
    .option('--json', 'print JSON: {"workflowId", "status", "result"? , "error"?}')
    .action(async (workflowId: string, o: { json?: boolean }) => {
      const { runStatus } = await import('./run-status');
      const s = await runStatus(await ctx.connect(), workflowId);
      out(o.json ? JSON.stringify(s) : formatRunStatus(s));
    });
}
