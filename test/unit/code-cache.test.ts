/**
 * bin/code-cache.js: the V8 code cache the CLI uses for its bundles on Node < 22.1. Each run is a
 * new Node process, as with the CLI. What must hold: the module behaves the same with and without
 * a cache, a cache is written once and then taken, and a changed file never runs an old cache —
 * V8 itself only compares the source's length, so the test changes the file keeping its length.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CODE_CACHE = path.join(__dirname, '..', '..', 'bin', 'code-cache.js');

let tmp: string;
let cacheDir: string;
let mod: string;
let runner: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'filestore-code-cache-'));
  cacheDir = path.join(tmp, 'cache');
  mod = path.join(tmp, 'mod.js');
  runner = path.join(tmp, 'runner.js');
  fs.writeFileSync(
    runner,
    `require(${JSON.stringify(CODE_CACHE)}).useCodeCache([${JSON.stringify(mod)}], ${JSON.stringify(cacheDir)}, 'ls');\n` +
      `const m = require(${JSON.stringify(mod)});\n` +
      `process.stdout.write(JSON.stringify({ value: m.value(), dirname: m.dirname, resolved: m.resolved, isCached: require.cache[${JSON.stringify(mod)}] !== undefined }));\n`,
  );
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A module using what the loader hands it: exports, require (and resolve), module, __dirname. */
const source = (word: string) =>
  `const path = require('node:path');\n` +
  `exports.value = () => ${JSON.stringify(word)};\n` +
  `exports.dirname = __dirname;\n` +
  `exports.resolved = require.resolve('node:path') === 'node:path' && module.exports === exports;\n`;

async function runOnce(): Promise<{ value: string; dirname: string; resolved: boolean; isCached: boolean }> {
  const { stdout } = await run(process.execPath, [runner]);
  return JSON.parse(stdout) as { value: string; dirname: string; resolved: boolean; isCached: boolean };
}
const caches = () => (fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir).filter((f) => f.endsWith('.v8cache')) : []);

test('the module works as a plain require does; the first run writes the cache, the next ones take it', async () => {
  fs.writeFileSync(mod, source('alpha'));
  expect(await runOnce()).toEqual({ value: 'alpha', dirname: tmp, resolved: true, isCached: true });
  const written = caches();
  expect(written).toHaveLength(1);
  expect(written[0]).toMatch(/^mod\.js\.ls\.\d+-\d+-v[\d.]+\.v8cache$/);
  const { mtimeMs } = fs.statSync(path.join(cacheDir, written[0]));

  expect(await runOnce()).toEqual({ value: 'alpha', dirname: tmp, resolved: true, isCached: true });
  // Taken, not rewritten.
  expect(caches()).toEqual(written);
  expect(fs.statSync(path.join(cacheDir, written[0])).mtimeMs).toBe(mtimeMs);
});

test('a rebuilt file of the same length runs its new code and replaces the old cache', async () => {
  fs.writeFileSync(mod, source('alpha'));
  await runOnce();
  const [old] = caches();
  fs.writeFileSync(mod, source('omega'));
  // A later mtime, as a rebuild gives (set explicitly: two writes may share a clock tick).
  const later = new Date(Date.now() + 5000);
  fs.utimesSync(mod, later, later);
  expect(fs.statSync(mod).size).toBe(source('alpha').length);

  expect((await runOnce()).value).toBe('omega');
  const now = caches();
  expect(now).toHaveLength(1);
  expect(now[0]).not.toBe(old);
});

test('a corrupt cache is dropped for a new one, and the module still loads', async () => {
  fs.writeFileSync(mod, source('alpha'));
  await runOnce();
  const [name] = caches();
  fs.writeFileSync(path.join(cacheDir, name), Buffer.from('not a V8 code cache'));
  expect((await runOnce()).value).toBe('alpha');
  expect(fs.readFileSync(path.join(cacheDir, name)).toString()).not.toBe('not a V8 code cache');
  expect((await runOnce()).value).toBe('alpha');
});

test('an unwritable cache folder only costs the cache', async () => {
  fs.writeFileSync(mod, source('alpha'));
  fs.writeFileSync(cacheDir, 'a file where the folder should be');
  expect((await runOnce()).value).toBe('alpha');
});
