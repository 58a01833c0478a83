/**
 * Guards of the publishable client (packages/client, `@filestore/client`): it is publishable (not
 * private, its only dependency the Temporal client), what it loads at run time is nothing of the
 * server (no catalog driver, no worker, no watcher, no AWS SDK — checked on the built bundle in a
 * child process, as cli-module-graph.test.ts does for the CLI), its declarations stand alone in
 * dist/, and errors come back typed with the server's own classes and codes.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { errorFromResponse, errorFromWorkflowFailure } from '../../packages/client/src/errors';
import { encodePath } from '../../packages/client/src/http';
import { ERROR_STATUS } from '../../src/errors';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');
const PKG_DIR = path.join(ROOT, 'packages', 'client');
const DIST = path.join(PKG_DIR, 'dist');
const pkg = JSON.parse(fs.readFileSync(path.join(PKG_DIR, 'package.json'), 'utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const rootPkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Never loaded by the client, whatever it does. */
const NEVER: Array<[string, RegExp]> = [
  ['drizzle-orm', /\/node_modules\/drizzle-orm\//],
  ['pg', /\/node_modules\/pg[^/]*\//],
  ['chokidar', /\/node_modules\/chokidar\//],
  ['@parcel/watcher', /\/node_modules\/@parcel\/watcher\//],
  ['bullmq / ioredis', /\/node_modules\/(bullmq|ioredis)\//],
  ['the Temporal worker SDK', /\/node_modules\/@temporalio\/(worker|core-bridge|workflow|activity|testing)\//],
  ['the AWS SDK', /\/node_modules\/@(aws-sdk|smithy)\//],
  ['fastify', /\/node_modules\/fastify\//],
  ['the server', new RegExp(`^${ROOT}/(dist/|src/|db/|activities/|workflows/)`)],
];

describe('packages/client/package.json', () => {
  test('is publishable: named, versioned, not private, Apache-2.0, only dist/ shipped, engines as the root', () => {
    expect(pkg.name).toBe('@filestore/client');
    expect(pkg.version).toBe('0.1.0');
    expect(pkg.private).toBeUndefined();
    expect(pkg.license).toBe('Apache-2.0');
    expect(pkg.files).toEqual(['dist']);
    expect(pkg.engines).toEqual(rootPkg.engines);
    for (const entry of [pkg.main, pkg.types, pkg.exports['.'].types, pkg.exports['.'].default]) expect(entry).toMatch(/^(\.\/)?dist\//);
  });

  test('depends on @temporalio/* only, at the versions the server uses', () => {
    const deps = Object.entries(pkg.dependencies as Record<string, string>);
    expect(deps.length).toBeGreaterThan(0);
    for (const [name, version] of deps) {
      expect(name).toMatch(/^@temporalio\/(client|common)$/);
      expect(version).toBe(rootPkg.dependencies[name]);
    }
    expect(pkg.peerDependencies).toBeUndefined();
  });
});

describe('the built package (dist/)', () => {
  let tmp: string;
  beforeAll(async () => {
    // Built here when missing or older than a source, so the test checks what the sources make.
    const newest = Math.max(...walk(path.join(PKG_DIR, 'src')).map((f) => fs.statSync(f).mtimeMs));
    const built = path.join(DIST, 'index.js');
    if (!fs.existsSync(built) || fs.statSync(built).mtimeMs < newest) await run(process.execPath, [path.join(PKG_DIR, 'scripts', 'build.js')], { cwd: PKG_DIR });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'filestore-client-graph-'));
  }, 120_000);
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  /** Runs `body` (CommonJS, `client` = the built package) with every module load recorded; returns the files loaded and what it printed. */
  async function loadedBy(body: string): Promise<{ modules: string[]; stdout: string }> {
    const out = path.join(tmp, `modules-${Math.random().toString(36).slice(2)}.json`);
    const script = path.join(tmp, `run-${Math.random().toString(36).slice(2)}.js`);
    fs.writeFileSync(
      script,
      `const Module = require('node:module');
const loaded = new Set();
const load = Module._load;
Module._load = function (request, parent, isMain) {
  try { loaded.add(Module._resolveFilename(request, parent, isMain)); } catch { loaded.add(request); }
  return load.apply(this, arguments);
};
process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify([...loaded])));
const client = require(${JSON.stringify(DIST)});
(async () => { ${body} })().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
`,
    );
    const { stdout } = await run(process.execPath, [script], { env: { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1' } });
    return { modules: JSON.parse(fs.readFileSync(out, 'utf8')) as string[], stdout };
  }

  const offenders = (modules: string[]) => NEVER.flatMap(([what, re]) => (modules.some((m) => re.test(m)) ? [`${what}: ${modules.find((m) => re.test(m))}`] : []));

  test('loading it and making requests (reads, an upload) loads Node built-ins only — not even the Temporal client', async () => {
    const { modules, stdout } = await loadedBy(`
      const fs = new client.Filestore({ url: 'http://127.0.0.1:1', token: 't' });
      const codes = [];
      for (const call of [() => fs.list('docs', ''), () => fs.get('docs', 'a.txt'), () => fs.put('docs', 'a.txt', Buffer.from('x')), () => fs.mkdir('docs', 'd')]) {
        try { await call(); codes.push('none'); } catch (err) { codes.push(err.code + ':' + err.retryable); }
      }
      console.log(JSON.stringify(codes));
    `);
    // The API is not there: each call got as far as its request, and failed typed and retryable.
    expect(JSON.parse(stdout.trim())).toEqual(Array(4).fill('SERVICE_UNAVAILABLE:true'));
    expect(offenders(modules)).toEqual([]);
    const nonBuiltin = modules.filter((m) => path.isAbsolute(m) && m !== path.join(DIST, 'index.js'));
    expect(nonBuiltin).toEqual([]);
  }, 60_000);

  test('awaiting through Temporal loads @temporalio/client and nothing of the worker side', async () => {
    const { modules, stdout } = await loadedBy(`
      const fs = new client.Filestore({ url: 'http://127.0.0.1:1', temporal: { address: '127.0.0.1:1', connection: { connectTimeout: 300 } } });
      try { await fs.handle('filestore:docs:write:k1').result(); console.log('none'); } catch (err) { console.log(err.name); }
      await fs.close();
    `);
    expect(stdout.trim()).not.toBe('none');
    expect(modules.some((m) => /\/node_modules\/@temporalio\/client\//.test(m))).toBe(true);
    expect(offenders(modules)).toEqual([]);
  }, 60_000);

  test('every declaration import resolves inside dist/ or names a dependency or a Node built-in', () => {
    const deps = Object.keys(pkg.dependencies as Record<string, string>);
    const problems: string[] = [];
    const declarations = walk(DIST).filter((f) => f.endsWith('.d.ts'));
    expect(declarations).toContain(path.join(DIST, 'index.d.ts'));
    // The server's own types are in the package, not copies.
    expect(declarations).toEqual(expect.arrayContaining([path.join(DIST, 'types', 'src', 'mutations.d.ts'), path.join(DIST, 'types', 'src', 'errors.d.ts')]));
    for (const file of declarations) {
      const text = fs.readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
      for (const m of text.matchAll(/(?:from\s+|import\()\s*['"]([^'"]+)['"]/g)) {
        const spec = m[1]!;
        if (spec.startsWith('.')) {
          const target = path.resolve(path.dirname(file), spec);
          if (!target.startsWith(DIST + path.sep) || !['.d.ts', '/index.d.ts'].some((ext) => fs.existsSync(target + ext))) problems.push(`${file}: ${spec}`);
        } else if (!spec.startsWith('node:') && !deps.some((d) => spec === d || spec.startsWith(`${d}/`))) {
          problems.push(`${file}: ${spec}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  test('npm pack ships dist/ (and the manifest and README) only', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: PKG_DIR });
    const [packed] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>;
    const files = packed!.files.map((f) => f.path);
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files.filter((f) => !f.startsWith('dist/') && !['package.json', 'README.md', 'LICENSE'].includes(f))).toEqual([]);
  }, 60_000);
});

describe('typed errors', () => {
  test('a problem+json body becomes the server\'s error class with its code, status and retryable flag — for every code', () => {
    for (const [code, { http }] of Object.entries(ERROR_STATUS)) {
      const err = errorFromResponse(http, { type: 'x', title: code, status: http, detail: `it is ${code}`, code, retryable: code === 'PATH_LOCKED', details: { mountId: 'docs' } }, 'GET', '/v1/x');
      expect({ code: err.code, status: err.status, message: err.message }).toEqual({ code, status: http, message: `it is ${code}` });
      expect(err.name).not.toBe('FilestoreError');
      expect(err.retryable).toBe(code === 'PATH_LOCKED');
      expect(err.details).toEqual({ mountId: 'docs' });
    }
    expect(errorFromResponse(404, { code: 'UNKNOWN_MOUNT', detail: 'no mount named "x"' }, 'GET', '/v1/mounts/x').name).toBe('UnknownMountError');
  });

  test('an answer without a problem body is typed by its status', () => {
    expect(errorFromResponse(404, null, 'HEAD', '/v1/x')).toMatchObject({ code: 'NOT_FOUND', status: 404, retryable: false });
    expect(errorFromResponse(503, '<html>bad gateway</html>', 'GET', '/v1/x')).toMatchObject({ code: 'SERVICE_UNAVAILABLE', status: 503, retryable: true });
  });

  test('a Temporal failure chain yields the ApplicationFailure\'s typed error', () => {
    const appFailure = Object.assign(new Error('boom'), { name: 'ApplicationFailure', details: [{ name: 'ConflictError', code: 'CONFLICT', message: 'locked', retryable: false, details: { path: 'a' } }] });
    const workflowFailed = Object.assign(new Error('workflow failed'), { name: 'WorkflowFailedError', cause: Object.assign(new Error('activity'), { name: 'ActivityFailure', cause: appFailure }) });
    expect(errorFromWorkflowFailure(workflowFailed)).toMatchObject({ name: 'ConflictError', code: 'CONFLICT', message: 'locked', details: { path: 'a' } });
    const other = new Error('not a failure');
    expect(errorFromWorkflowFailure(other)).toBe(other);
  });

  test('paths are checked with the server\'s rules before a request: `..` cannot travel in a URL, so it is refused here as the server would', () => {
    expect(() => encodePath('a/../../etc/passwd')).toThrow(expect.objectContaining({ code: 'PATH_TRAVERSAL' }));
    expect(() => encodePath('/abs')).toThrow(expect.objectContaining({ code: 'ABSOLUTE_PATH' }));
    expect(() => encodePath('')).toThrow(expect.objectContaining({ code: 'INVALID_PATH' }));
    expect(encodePath('', { allowRoot: true })).toBe('');
    expect(encodePath('a b/%/ü?#.txt')).toBe('a%20b/%25/%C3%BC%3F%23.txt');
  });
});

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}
