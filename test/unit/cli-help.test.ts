/** `filestore --help` groups the verbs by task; exit codes follow ERROR_STATUS; when a progress bar is drawn. */
import { buildProgram, exitCodeOf, HELP_GROUPS } from '../../src/cli/main';
import type { CommandContext } from '../../src/cli/context';
import { wantsProgress, PROGRESS_MIN_BYTES } from '../../src/cli/progress-mode';
import { FilestoreError, NotFoundError, statusOf } from '../../src/errors';

const program = () => buildProgram({} as CommandContext);

test('every top-level verb belongs to a help group, listed in HELP_GROUPS order', () => {
  const p = program();
  const ungrouped = p.commands.filter((c) => !c.helpGroup()).map((c) => c.name());
  expect(ungrouped).toEqual([]);
  const help = p.helpInformation();
  const headings = HELP_GROUPS.map(([h]) => h).filter((h) => p.commands.some((c) => c.helpGroup() === h));
  const at = headings.map((h) => help.indexOf(`\n${h}\n`));
  expect(at.every((i) => i > 0)).toBe(true);
  expect([...at].sort((a, b) => a - b)).toEqual(at);
  for (const heading of ['Files:', 'Catalog and journal:', 'Mounts:', 'Drift:', 'Stack:']) expect(help).toContain(`\n${heading}\n`);
  // A verb under its group's heading: `get` under Files, `status` under Catalog and journal.
  expect(help.indexOf('\n  get ')).toBeGreaterThan(help.indexOf('\nFiles:\n'));
  expect(help.indexOf('\n  status ')).toBeGreaterThan(help.indexOf('\nCatalog and journal:\n'));
});

test('every verb has --json where it prints a result', () => {
  // Long-running processes log instead, and `cat` prints the file itself.
  const exempt = new Set(['dev', 'api', 'worker', 'watcher', 'cat', 'help']);
  const missing: string[] = [];
  const walk = (cmd: ReturnType<typeof program>, prefix: string) => {
    for (const c of cmd.commands) {
      const name = `${prefix}${c.name()}`;
      if (c.commands.length > 0) walk(c, `${name} `);
      else if (!exempt.has(c.name()) && !c.options.some((o) => o.long === '--json')) missing.push(name);
    }
  };
  walk(program(), '');
  expect(missing).toEqual([]);
});

test('every list pages with --limit and --cursor', () => {
  const p = program();
  const sub = (path: string[]) => path.reduce((c, n) => c.commands.find((x) => x.name() === n)!, p);
  for (const path of [['ls'], ['journal', 'ls'], ['drift', 'ls'], ['mount', 'ls']]) {
    const longs = sub(path).options.map((o) => o.long);
    expect(longs).toEqual(expect.arrayContaining(['--limit', '--cursor', '--json']));
  }
});

test('the exit code of an error is its class\'s row in ERROR_STATUS; anything else exits 1', () => {
  expect(exitCodeOf(new NotFoundError('x'))).toBe(4);
  expect(exitCodeOf(new FilestoreError('READ_ONLY_MOUNT', 'ro'))).toBe(statusOf('READ_ONLY_MOUNT').exit);
  // Errors rebuilt from a workflow failure carry the code without the class.
  expect(exitCodeOf(Object.assign(new Error('gone'), { code: 'NOT_FOUND' }))).toBe(4);
  expect(exitCodeOf(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe(1);
  expect(exitCodeOf(new Error('boom'))).toBe(1);
  expect(exitCodeOf('a string')).toBe(1);
});

test('a progress bar: large files on a terminal, never with --json or --no-progress, always with --progress', () => {
  const tty = { stdout: true, stderr: true };
  expect(wantsProgress({}, PROGRESS_MIN_BYTES, tty)).toBe(true);
  expect(wantsProgress({}, PROGRESS_MIN_BYTES - 1, tty)).toBe(false);
  expect(wantsProgress({}, PROGRESS_MIN_BYTES, { stdout: false, stderr: true })).toBe(false);
  expect(wantsProgress({}, PROGRESS_MIN_BYTES, { stdout: true, stderr: false })).toBe(false);
  expect(wantsProgress({ json: true }, PROGRESS_MIN_BYTES, tty)).toBe(false);
  expect(wantsProgress({ progress: false }, PROGRESS_MIN_BYTES, tty)).toBe(false);
  expect(wantsProgress({ progress: true }, 10, { stdout: false, stderr: false })).toBe(true);
  expect(wantsProgress({ progress: true }, undefined, tty)).toBe(false);
});
