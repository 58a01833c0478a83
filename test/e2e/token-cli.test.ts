/**
 * `filestore token create | ls | revoke` against a real catalog. The verbs run in process on a
 * fresh commander program with registerTokenCommands and a catalog-only context (what main.ts gives
 * them: no Temporal), so this test does not depend on a build of dist/ or on main.ts's wiring.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { dropDatabase, openCatalog, runMigrations, type Catalog } from '../../db/client';
import { authenticate } from '../../src/api/auth';
import { addLocalMount } from '../../src/catalog/mounts';
import { CatalogReader } from '../../src/client/catalog-reader';
import { loadConfig } from '../../src/config';
import type { CommandContext } from '../../src/cli/context';
import { registerTokenCommands } from '../../src/cli/token-commands';
import { testDatabaseUrl } from '../helpers/stack';

const url = testDatabaseUrl(`filestore_token_cli_${process.pid}`);
let catalog: Catalog;
let tmp: string;

beforeAll(async () => {
  await runMigrations(url);
  catalog = openCatalog(url, { max: 2 });
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'filestore-token-cli-'));
  await addLocalMount(catalog.db, { id: 'docs', rootPath: path.join(tmp, 'docs'), createRoot: true });
});
afterAll(async () => {
  await catalog?.close();
  await dropDatabase(url);
  await fs.rm(tmp, { recursive: true, force: true });
});

/** Runs `filestore <args>` with only the token verbs; returns what it printed, or the error's code. */
async function cli(...args: string[]): Promise<{ lines: string[]; code?: string }> {
  const lines: string[] = [];
  const config = loadConfig(process.env, { databaseUrl: url, logLevel: 'silent' });
  const refuse = () => Promise.reject(new Error('token verbs must not connect to Temporal'));
  const ctx: CommandContext = {
    cfg: () => config,
    reader: async () => new CatalogReader(catalog.db),
    db: async () => catalog.db,
    connect: refuse,
    mutations: refuse,
    out: (line) => lines.push(line),
  };
  const program = new Command('filestore').exitOverride();
  registerTokenCommands(program, ctx);
  try {
    await program.parseAsync(args, { from: 'user' });
    return { lines };
  } catch (err) {
    return { lines, code: (err as { code?: string }).code };
  }
}

test('token create --json prints the token once, with its scope; the token authenticates', async () => {
  const { lines, code } = await cli('token', 'create', '--mount', 'docs', '--read-only', '--name', 'ci', '--json');
  expect(code).toBeUndefined();
  expect(lines).toHaveLength(1);
  const created = JSON.parse(lines[0]);
  expect(created).toMatchObject({ token: expect.stringMatching(/^fst_[A-Za-z0-9_-]{43}$/), id: expect.stringMatching(/^tok_[0-9a-f]{12}$/), admin: false, mountId: 'docs', readOnly: true });
  expect(await authenticate(catalog.db, `Bearer ${created.token}`, { cache: null })).toEqual({ tokenId: created.id, admin: false, mountId: 'docs', readOnly: true });

  const ls = await cli('token', 'ls', '--json');
  const rows = (JSON.parse(ls.lines[0]) as { tokens: Array<Record<string, unknown>> }).tokens;
  expect(rows.find((r) => r.id === created.id)).toMatchObject({ admin: false, mountId: 'docs', readOnly: true, name: 'ci', revokedAt: null });
  expect(ls.lines.join('\n')).not.toContain(created.token);
  for (const r of rows) expect(r).not.toHaveProperty('tokenSha256');
});

test('token create (human) prints the token on its own line and warns it is shown once', async () => {
  const { lines, code } = await cli('token', 'create', '--admin');
  expect(code).toBeUndefined();
  expect(lines[0]).toMatch(/^token tok_[0-9a-f]{12} \(admin\):$/);
  expect(lines[1]).toMatch(/^fst_[A-Za-z0-9_-]{43}$/);
  expect(lines[2]).toMatch(/shown only once/);
  const human = (await cli('token', 'ls')).lines.join('\n');
  expect(human).toMatch(/^ID\s+SCOPE\s+NAME\s+CREATED\s+REVOKED/);
  expect(human).toContain(lines[0].slice(6, 22));
  expect(human).not.toContain(lines[1]);
});

test('token revoke: the token stops authenticating; again is a no-op; an unknown id is NOT_FOUND', async () => {
  const created = JSON.parse((await cli('token', 'create', '--admin', '--json')).lines[0]);
  const revoked = await cli('token', 'revoke', created.id, '--json');
  expect(revoked.code).toBeUndefined();
  const row = JSON.parse(revoked.lines[0]);
  expect(row).toMatchObject({ id: created.id, revokedAt: expect.any(String) });
  expect(await authenticate(catalog.db, `Bearer ${created.token}`, { cache: null }).catch((e: { code: string }) => e.code)).toBe('UNAUTHORIZED');

  const again = await cli('token', 'revoke', created.id);
  expect(again.lines).toEqual([`token ${created.id} revoked (at ${row.revokedAt})`]);
  expect((await cli('token', 'revoke', 'tok_000000000000')).code).toBe('NOT_FOUND');
  const ls = (JSON.parse((await cli('token', 'ls', '--json')).lines[0]) as { tokens: Array<{ id: string; revokedAt: string | null }> }).tokens;
  expect(ls.find((r) => r.id === created.id)?.revokedAt).toBe(row.revokedAt);
});

test('scope errors come back as typed codes, and nothing is created', async () => {
  const before = JSON.parse((await cli('token', 'ls', '--json')).lines[0]).tokens.length;
  expect((await cli('token', 'create')).code).toBe('INVALID_REQUEST');
  expect((await cli('token', 'create', '--admin', '--mount', 'docs')).code).toBe('INVALID_REQUEST');
  expect((await cli('token', 'create', '--admin', '--read-only')).code).toBe('INVALID_REQUEST');
  expect((await cli('token', 'create', '--mount', 'nope')).code).toBe('UNKNOWN_MOUNT');
  expect(JSON.parse((await cli('token', 'ls', '--json')).lines[0]).tokens).toHaveLength(before);
});

test('token ls pages with --limit and --cursor, every token once', async () => {
  for (let i = 0; i < 3; i++) await cli('token', 'create', '--admin', '--name', `page-${i}`, '--json');
  const all = (JSON.parse((await cli('token', 'ls', '--json')).lines[0]) as { tokens: Array<{ id: string }> }).tokens.map((t) => t.id);
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const args: string[] = ['token', 'ls', '--json', '--limit', '2', ...(cursor ? ['--cursor', cursor] : [])];
    const page = JSON.parse((await cli(...args)).lines[0]) as { tokens: Array<{ id: string }>; nextCursor: string | null };
    expect(page.tokens.length).toBeLessThanOrEqual(2);
    seen.push(...page.tokens.map((t) => t.id));
    cursor = page.nextCursor;
  } while (cursor);
  expect(seen).toEqual(all);
  const bad = await cli('token', 'ls', '--cursor', 'nonsense');
  expect(bad.code).toBe('INVALID_REQUEST');
});
