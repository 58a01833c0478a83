'use strict';
/**
 * V8 code cache for the CLI's bundles on Node < 22.1, which lacks `module.enableCompileCache()`.
 *
 * Compiling the bundles' functions is a good part of a short command's CPU (for `filestore mount ls`
 * about a fifth on this project's 2-core machines). V8 can serialise what it compiled and take it
 * back on the next start; this does that for the given files only, everything else loads as usual:
 *
 *   - the cache is made at the END of a run (`script.createCachedData()` after the code ran), so it
 *     holds the lazily compiled functions that the verb used, not just the top level — which is why
 *     the v8-compile-cache package (it caches at compile time, and cannot load ESM-only packages such
 *     as chokidar) gained only ~4% here;
 *   - one cache per file and `key` (the CLI passes the verb, so `ls` and `put` each keep theirs);
 *   - the cache file's name carries the source's size and mtime and the Node version: V8's own check
 *     compares the source's length, not its content, so a rebuilt bundle must never meet an old cache;
 *   - V8 rejects a cache made under other flags or another V8; then a new one is written;
 *   - any failure of the cache itself (a read-only folder, a corrupt file) falls back to a plain load;
 *     errors thrown by the module's own code are the module's, and are not retried.
 */
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');

const mainModule = require.main;

/**
 * Loads `files` (absolute paths) through a code cache kept in `cacheDir`.
 * @param {string[]} files
 * @param {string} cacheDir
 * @param {string} key one word that tells runs with different hot paths apart (the CLI's verb)
 */
function useCodeCache(files, cacheDir, key) {
  const wanted = new Set(files);
  const loadJs = Module._extensions['.js'];
  /** @type {Array<{ script: vm.Script, file: string, stale: string[] }>} */
  const toWrite = [];

  Module._extensions['.js'] = function (module, filename) {
    if (!wanted.has(filename)) return loadJs(module, filename);
    let fn;
    try {
      const source = fs.readFileSync(filename, 'utf8');
      const st = fs.statSync(filename);
      const prefix = `${path.basename(filename)}.${key}.`;
      const name = `${prefix}${st.size}-${Math.trunc(st.mtimeMs)}-${process.version}.v8cache`;
      const file = path.join(cacheDir, name);
      let cachedData;
      try {
        cachedData = fs.readFileSync(file);
      } catch {
        // none yet
      }
      const script = new vm.Script(Module.wrap(source), { filename, cachedData });
      if (cachedData === undefined || script.cachedDataRejected) {
        let stale = [];
        try {
          stale = fs.readdirSync(cacheDir).filter((f) => f.startsWith(prefix) && f !== name);
        } catch {
          // no folder yet
        }
        toWrite.push({ script, file, stale });
      }
      fn = script.runInThisContext({ displayErrors: true });
    } catch {
      return loadJs(module, filename);
    }
    // What Node's loader hands a CommonJS module, built from public pieces.
    const require = (id) => module.require(id);
    require.resolve = (request, options) => Module._resolveFilename(request, module, false, options);
    require.resolve.paths = (request) => Module._resolveLookupPaths(request, module);
    require.main = mainModule;
    require.cache = Module._cache;
    require.extensions = Module._extensions;
    fn.call(module.exports, module.exports, require, module, filename, path.dirname(filename));
  };

  process.once('exit', () => {
    for (const { script, file, stale } of toWrite) {
      try {
        fs.mkdirSync(cacheDir, { recursive: true });
        // A private name then a rename: two runs writing at once never leave half a cache.
        const tmp = `${file}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, script.createCachedData());
        fs.renameSync(tmp, file);
        for (const old of stale) fs.rmSync(path.join(cacheDir, old), { force: true });
      } catch {
        // Only a cache: the next run compiles again.
      }
    }
  });
}

module.exports = { useCodeCache };
