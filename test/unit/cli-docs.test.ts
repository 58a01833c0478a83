/**
 * docs/cli.md must stay true to the code: every error code with the exit code (and HTTP status)
 * ERROR_STATUS gives it, and every verb of the command tree with an example.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/main';
import type { CommandContext } from '../../src/cli/context';
import { ERROR_STATUS } from '../../src/errors';

const doc = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'cli.md'), 'utf8');
const lines = doc.split('\n');

test.each(Object.entries(ERROR_STATUS))('%s has a row in the exit-code table with its exit code and HTTP status', (code, status) => {
  const row = lines.find((line) => new RegExp(`^\\| \\d+ \\| \`${code}\` \\|`).test(line));
  expect(row).toBeDefined();
  const cells = row!.split('|').map((c) => c.trim());
  expect(cells[1]).toBe(String(status.exit));
  expect(cells[4]).toBe(String(status.http));
});

test('the exit-code table lists no code that ERROR_STATUS lacks', () => {
  const documented = lines.map((line) => /^\| \d+ \| `([A-Z_]+)` \|/.exec(line)?.[1]).filter((c): c is string => !!c);
  expect(documented.filter((c) => !(c in ERROR_STATUS))).toEqual([]);
});

/** Every runnable verb: `put`, `journal ls`, `services up`, … (the `help` commands aside). */
function verbsOf(cmd: Command, prefix = ''): string[] {
  return cmd.commands.flatMap((c) => {
    const name = `${prefix}${c.name()}`;
    if (c.name() === 'help') return [];
    return c.commands.length > 0 ? verbsOf(c, `${name} `) : [name];
  });
}

test.each(verbsOf(buildProgram({} as CommandContext)))('`filestore %s` has an example line in docs/cli.md', (verb) => {
  expect(lines.some((line) => line.startsWith(`| \`${verb}\` | \`filestore ${verb}`))).toBe(true);
});
