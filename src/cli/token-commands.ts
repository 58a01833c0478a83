/**
 * `filestore token …`: create, list and revoke the HTTP API's bearer tokens. Catalog only (no
 * Temporal): each action loads src/catalog/tokens when it runs. A token is printed once, by
 * `token create`; the catalog keeps only its hash, so neither `token ls` nor anything else can show
 * it again.
 */
import type { Command } from 'commander';
import type { TokenInfo } from '../catalog/tokens';
import type { CommandContext } from './context';
import { positiveInt } from './format';

interface TokenCreateFlags {
  admin?: boolean;
  mount?: string;
  readOnly?: boolean;
  name?: string;
  json?: boolean;
}

/** `admin`, or `mount <id> rw|ro`. */
function scopeOf(t: TokenInfo): string {
  return t.admin ? 'admin' : `mount ${t.mountId} ${t.readOnly ? 'ro' : 'rw'}`;
}

function formatTokens(rows: TokenInfo[]): string {
  if (rows.length === 0) return '(no tokens; create one with `filestore token create --admin` or `--mount <id> [--read-only]`)';
  const cells = [
    ['ID', 'SCOPE', 'NAME', 'CREATED', 'REVOKED'],
    ...rows.map((t) => [t.id, scopeOf(t), t.name ?? '-', t.createdAt.toISOString(), t.revokedAt?.toISOString() ?? '-']),
  ];
  const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
}

/** Registers `token` and its verbs on `program`; returns the group. */
export function registerTokenCommands(program: Command, ctx: CommandContext): Command {
  const { out } = ctx;
  const token = program.command('token').description('manage the HTTP API\'s bearer tokens (stored hashed; a token is shown once, when created)');

  token
    .command('create')
    .description('create a token: --admin (everything) or --mount <id> (that mount; --read-only: no mutations)')
    // Scope rules are checked by the catalog (a typed INVALID_REQUEST), not by commander.
    .option('--admin', 'everything, including mount administration')
    .option('--mount <id>', 'only this mount')
    .option('--read-only', 'with --mount: reads only')
    .option('--name <name>', 'a label shown by `token ls`')
    .option('--json', 'print JSON: {"token": "fst_…", "id": "tok_…", "admin": …, "mountId": …, "readOnly": …}')
    .action(async (o: TokenCreateFlags) => {
      const [db, { createToken }] = await Promise.all([ctx.db(), import('../catalog/tokens')]);
      const { token: secret, row } = await createToken(db, { admin: o.admin, mountId: o.mount, readOnly: o.readOnly, name: o.name });
      if (o.json) {
        out(JSON.stringify({ token: secret, id: row.id, admin: row.admin, mountId: row.mountId, readOnly: row.readOnly, name: row.name, createdAt: row.createdAt }));
        return;
      }
      out(`token ${row.id} (${scopeOf(row)}${row.name ? `, ${JSON.stringify(row.name)}` : ''}):`);
      out(secret);
      out('This token is shown only once: store it now (Filestore keeps only its hash; revoke it with `filestore token revoke ' + row.id + '`).');
    });

  token
    .command('ls')
    .description('list tokens (ids, scopes, names, dates; never the tokens)')
    .option('--limit <n>', 'tokens per page', positiveInt, 100)
    .option('--cursor <cursor>', 'continue where the previous page ended (its "next cursor")')
    .option('--json', 'print JSON: {"tokens": [...], "nextCursor": "…" | null}')
    .action(async (o: { json?: boolean; limit: number; cursor?: string }) => {
      const [db, { listTokenPage }] = await Promise.all([ctx.db(), import('../catalog/tokens')]);
      const page = await listTokenPage(db, { limit: o.limit, cursor: o.cursor });
      if (o.json) return out(JSON.stringify(page));
      out(formatTokens(page.tokens));
      if (page.nextCursor) out(`next cursor: ${page.nextCursor}  (filestore token ls --limit ${o.limit} --cursor ${page.nextCursor})`);
    });

  token
    .command('revoke <id>')
    .description('revoke a token: API servers refuse it within 5 seconds (revoking it again changes nothing)')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const [db, { revokeToken }] = await Promise.all([ctx.db(), import('../catalog/tokens')]);
      const row = await revokeToken(db, id);
      out(o.json ? JSON.stringify(row) : `token ${row.id} revoked (at ${row.revokedAt?.toISOString()})`);
    });

  return token;
}
