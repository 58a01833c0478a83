/**
 * Guard for the CLI's start-up (issue 8): which modules each verb loads. A catalog read must not
 * load the Temporal SDK, the worker, the dev stack, the watcher (chokidar, BullMQ), the backends or
 * the AWS SDK; a mutation loads @temporalio/client but nothing of the worker side. One static
 * import in the wrong file would silently cost every `filestore ls` a second, so this test runs the
 * compiled CLI (`npm run build` first) with a preload that records every module file Node loaded,
 * and checks the list — twice: as a person runs it (bin/filestore.js, which runs the bundle that
 * scripts/bundle-cli.js makes) and from the compiled modules (dist/src/cli/main.js, what bin falls
 * back to). What the bundle holds inside is checked on its metafile.
 *
 * No services needed: the database and Temporal addresses point at a closed port, so each verb
 * loads what it needs, tries to connect and fails — the expected connection error is the proof that
 * the verb got as far as its first round trip, i.e. that its whole module graph was loaded.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ENV_NAMES } from '../../src/config';
import { FILESTORE_BIN } from '../helpers/cli';

const run = promisify(execFile);
const CLI_DIR = path.join(path.dirname(FILESTORE_BIN), '..', 'dist', 'src', 'cli');
const DIST_MAIN = path.join(CLI_DIR, 'main.js');
const BUNDLE = path.join(CLI_DIR, 'filestore.bundle.js');
const TEMPORAL_BUNDLE = path.join(CLI_DIR, 'temporal-client.bundle.js');

/** What no catalog read may load (paths as Node resolves them). */
const NEVER_FOR_READS: Array<[string, RegExp]> = [
  ['the Temporal SDK', /\/node_modules\/@temporalio\/|\/temporal-client\.bundle\.js$/],
  ['BullMQ', /\/node_modules\/bullmq\//],
  ['ioredis', /\/node_modules\/ioredis\//],
  ['chokidar', /\/node_modules\/chokidar\//],
  ['@parcel/watcher', /\/node_modules\/@parcel\/watcher\//],
  ['the AWS SDK', /\/node_modules\/@(aws-sdk|smithy)\//],
  ['pino', /\/node_modules\/pino\//],
  ['prom-client', /\/node_modules\/prom-client\//],
  ['the dev stack', /\/dist\/src\/dev\//],
  ['the worker', /\/dist\/src\/worker\.js$/],
  ['the watcher', /\/dist\/src\/watcher\//],
  ['the backends', /\/dist\/src\/executors\/(s3|local\/local-executor)/],
  ['the activities', /\/dist\/activities\//],
  ['the workflows', /\/dist\/workflows\//],
];

/** What a mutation may load on top of a read: the Temporal client and what it needs. */
const NEVER_FOR_MUTATIONS = NEVER_FOR_READS.filter(([what]) => what !== 'the Temporal SDK').concat([
  ['the Temporal worker SDK', /\/node_modules\/@temporalio\/(worker|core-bridge|workflow|activity|testing)\//],
]);

/** How the CLI is started: bin/filestore.js (the bundle), or the compiled modules it falls back to. */
type Entry = 'bin' | 'modules';

let tmp: string;
let preload: string;
let modulesRunner: string;

beforeAll(() => {
  for (const file of [DIST_MAIN, BUNDLE]) {
    if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` before this test (it checks the compiled CLI)`);
  }
  if (fs.statSync(BUNDLE).mtimeMs < fs.statSync(DIST_MAIN).mtimeMs) throw new Error(`${BUNDLE} is older than ${DIST_MAIN}: run \`npm run build\` (tsc alone does not rebuild the bundle)`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'filestore-cli-graph-'));
  preload = path.join(tmp, 'record-modules.js');
  // Every CommonJS module Node loaded, written when the process exits (success or failure).
  fs.writeFileSync(
    preload,
    `process.on('exit', () => require('node:fs').writeFileSync(process.env.MODULES_OUT, JSON.stringify(Object.keys(require.cache))));\n`,
  );
  // bin/filestore.js's own lines, on the compiled modules instead of the bundle.
  modulesRunner = path.join(tmp, 'run-modules.js');
  fs.writeFileSync(
    modulesRunner,
    `const cli = require(${JSON.stringify(DIST_MAIN)});\n` +
      `cli.main(process.argv).then(() => process.exit(process.exitCode ?? 0), (err) => { process.stderr.write('filestore: ' + cli.errorLine(err) + '\\n'); process.exit(1); });\n`,
  );
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Runs `filestore <args>` against nothing; returns the modules it loaded and its stderr. */
async function modulesOf(entry: Entry, ...args: string[]): Promise<{ modules: string[]; stderr: string; code: number }> {
  return modulesWith({}, entry, ...args);
}

async function modulesWith(extraEnv: Record<string, string>, entry: Entry, ...args: string[]): Promise<{ modules: string[]; stderr: string; code: number }> {
  const out = path.join(tmp, `modules-${entry}-${Object.keys(extraEnv).join('-')}-${args.join('-').replace(/[^a-z0-9-]/gi, '_')}.json`);
  const env = {
    ...process.env,
    // A closed port: the connection is refused at once.
    [ENV_NAMES.databaseUrl]: 'postgres://postgres@127.0.0.1:1/filestore_nowhere',
    [ENV_NAMES.temporalAddress]: '127.0.0.1:1',
    [ENV_NAMES.redisUrl]: 'redis://127.0.0.1:1',
    // The same modules load with or without it; these failing runs must not leave code caches behind.
    NODE_DISABLE_COMPILE_CACHE: '1',
    MODULES_OUT: out,
    ...extraEnv,
  };
  let code = 0;
  let stderr = '';
  try {
    ({ stderr } = await run(process.execPath, ['-r', preload, entry === 'bin' ? FILESTORE_BIN : modulesRunner, ...args], { env }));
  } catch (err) {
    const e = err as { code: number; stderr: string };
    code = e.code;
    stderr = e.stderr;
  }
  const modules = JSON.parse(fs.readFileSync(out, 'utf8')) as string[];
  // Each variant really ran what it claims to.
  expect(modules.includes(BUNDLE)).toBe(entry === 'bin');
  return { modules, stderr, code };
}

function offenders(modules: string[], rules: Array<[string, RegExp]>): string[] {
  return rules.flatMap(([what, re]) => {
    const hit = modules.find((m) => re.test(m));
    return hit ? [`${what} (${hit})`] : [];
  });
}

const READS: Array<[string, string[]]> = [
  ['mount ls', ['mount', 'ls']],
  ['ls', ['ls', 'docs:reports']],
  ['stat', ['stat', 'docs:reports/q3.pdf']],
  ['journal ls', ['journal', 'ls']],
  ['drift ls', ['drift', 'ls']],
];

describe.each<Entry>(['bin', 'modules'])('started as %s', (entry) => {
  test.each(READS)('filestore %s (a catalog read) reaches the catalog without loading Temporal, the worker, the dev stack, the watcher or the AWS SDK', async (_name, args) => {
    const { modules, stderr, code } = await modulesOf(entry, ...args);
    // The verb ran up to its first query: Postgres refused, nothing else failed first.
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/ECONNREFUSED|connect/);
    expect(offenders(modules, NEVER_FOR_READS)).toEqual([]);
  });

  test('filestore put (a mutation) loads the Temporal client and nothing of the worker side', async () => {
    const src = path.join(tmp, 'four-k.bin');
    fs.writeFileSync(src, Buffer.alloc(4096));
    const { modules, stderr, code } = await modulesOf(entry, 'put', src, 'docs:q3.bin');
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/ECONNREFUSED|connect|UNAVAILABLE/i);
    const temporalClient = entry === 'bin' ? (m: string) => m === TEMPORAL_BUNDLE : (m: string) => /\/node_modules\/@temporalio\/client\//.test(m);
    expect(modules.some(temporalClient)).toBe(true);
    expect(offenders(modules, NEVER_FOR_MUTATIONS)).toEqual([]);
  }, 60_000);

  test('filestore put over Temporal\'s HTTP API (FILESTORE_TEMPORAL_HTTP_URL) reaches the catalog without loading the Temporal SDK at all', async () => {
    const src = path.join(tmp, 'four-k-http.bin');
    fs.writeFileSync(src, Buffer.alloc(4096));
    const { modules, stderr, code } = await modulesWith({ [ENV_NAMES.temporalHttpUrl]: 'http://127.0.0.1:1' }, entry, 'put', src, 'docs:q3.bin');
    // Its first round trip is the mount lookup in Postgres (refused); nothing failed before it.
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/ECONNREFUSED|connect/);
    expect(modules.some((m) => /\/client\/temporal-http\.js$/.test(m)) || entry === 'bin').toBe(true);
    expect(offenders(modules, NEVER_FOR_READS)).toEqual([]);
  }, 60_000);

  test.each([['get', ['get', 'docs:q3.pdf', path.join(os.tmpdir(), 'filestore-graph-never-written.pdf')]], ['cat', ['cat', 'docs:q3.pdf']]])(
    'filestore %s (a read through the backends) loads the backends but not Temporal, the worker, the dev stack or the watcher',
    async (_name, args) => {
      const { modules, stderr, code } = await modulesOf(entry, ...args);
      expect(code).not.toBe(0);
      expect(stderr).toMatch(/ECONNREFUSED|connect/);
      // The backends are what it reads through: they load, inside the action.
      expect(modules.some((m) => /\/dist\/src\/executor-registry\.js$/.test(m))).toBe(true);
      expect(offenders(modules, NEVER_FOR_READS.filter(([what]) => !['the AWS SDK', 'the backends', 'prom-client'].includes(what)))).toEqual([]);
    },
    60_000,
  );

  test('filestore --help loads neither the catalog nor Temporal', async () => {
    const { modules, code } = await modulesOf(entry, '--help');
    expect(code).toBe(0);
    expect(offenders(modules, [...NEVER_FOR_READS, ['the catalog (pg, drizzle)', /\/node_modules\/(pg|drizzle-orm)\//]])).toEqual([]);
  });
});

describe('the bundles (scripts/bundle-cli.js)', () => {
  const inputsOf = (bundle: string) => Object.keys((JSON.parse(fs.readFileSync(bundle.replace(/\.js$/, '.meta.json'), 'utf8')) as { inputs: Record<string, unknown> }).inputs);
  /** Metafile inputs are relative to the project (`node_modules/…`, `src/….ts`): as the paths Node would load. */
  const asLoaded = (inputs: string[]) => inputs.map((i) => (/^(src|db|activities|workflows)\//.test(i) ? `/dist/${i.replace(/\.ts$/, '.js')}` : `/${i}`));

  test('the CLI bundle holds the catalog but not the Temporal SDK, the worker side, the watcher or the AWS SDK', () => {
    const inputs = inputsOf(BUNDLE);
    expect(inputs.some((i) => /node_modules\/drizzle-orm\//.test(i))).toBe(true);
    expect(inputs).toContain('src/cli/read-commands.ts');
    expect(offenders(asLoaded(inputs), NEVER_FOR_READS)).toEqual([]);
  });

  test('the Temporal client bundle holds the client and nothing of the worker side', () => {
    const inputs = inputsOf(TEMPORAL_BUNDLE);
    expect(inputs.some((i) => /node_modules\/@temporalio\/client\//.test(i))).toBe(true);
    expect(offenders(asLoaded(inputs), NEVER_FOR_MUTATIONS)).toEqual([]);
  });
});
