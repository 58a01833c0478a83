#!/usr/bin/env node
'use strict';
/**
 * Bundles the CLI's start-up path (run by `npm run build`, after tsc) so `filestore ls` starts in a
 * blink: Node spends most of a short command's life finding, reading and compiling module files —
 * ~270 of them (zod, drizzle, pg, commander) for a catalog read and ~540 (plus the Temporal client)
 * for a put — and one file per path is far cheaper. The CLI bundle is built from the TypeScript
 * sources (tsc has type-checked them; esbuild reads tsconfig.json), so ESM packages are tree-shaken:
 * config.ts's zod comes to ~0.2 MB instead of 1 MB of every locale.
 *
 *   dist/src/cli/filestore.bundle.js         commander, config, the command groups, the catalog
 *                                            (drizzle, pg) and FilestoreClient; what every verb needs
 *   dist/src/cli/temporal-client.bundle.js   @temporalio/client, common and proto: loaded only when a
 *                                            verb that starts a mutation connects (a read never does)
 *
 * What long-running verbs load (worker, dev stack, watcher, logger, S3 probe, progress bar, and the
 * backends `get`/`cat` read through — src/cli/download.ts) stays out: their actions `require` tsc's compiled files (dist/src/...) when they run.
 * The build fails if anything of the worker side ends up inside a bundle, and writes each bundle's
 * metafile (*.meta.json) for test/unit/cli-module-graph.test.ts. bin/filestore.js runs the bundle
 * when it is at least as new as dist/src/cli/main.js, and main.js otherwise.
 */
const fs = require('node:fs');
const path = require('node:path');
const esbuild = require('esbuild');

const root = path.join(__dirname, '..');
const cliDir = path.join(root, 'dist', 'src', 'cli');
const TEMPORAL_BUNDLE = 'temporal-client.bundle.js';

/** Project modules the CLI loads only inside the action of a long-running or rare verb (source paths). */
const LAZY_PROJECT_MODULES = [/^src\/worker\.ts$/, /^src\/logger\.ts$/, /^src\/dev\//, /^src\/watcher\//, /^src\/executors\/s3\//, /^src\/cli\/progress\.ts$/, /^src\/cli\/download\.ts$/,
  // The backends (AWS SDK) behind FilestoreClient's reads, its S3 upload area and `get`/`cat`; the HTTP API process.
  /^src\/executor-registry\.ts$/, /^src\/executors\/index\.ts$/, /^src\/api\//, /^src\/operations\/(upload-store|object-upload-area)\.ts$/];

/** Never inside a CLI bundle: the worker side, the watcher, the AWS SDK. */
const FORBIDDEN_INPUTS = [
  /node_modules\/@temporalio\/(worker|core-bridge|workflow|activity|testing)\//,
  /node_modules\/(bullmq|ioredis|chokidar|pino|prom-client)\//,
  /node_modules\/@parcel\/watcher\//,
  /node_modules\/@(aws-sdk|smithy)\//,
  /^(dist\/)?(activities|workflows)\//,
  /^(dist\/)?src\/(worker|dev\/|watcher\/|executors\/s3\/|executors\/local\/local-executor)/,
];

const TEMPORAL_PACKAGES = ['@temporalio/client', '@temporalio/common', '@temporalio/proto'];

/** Keeps the lazy project modules and the Temporal client out of the main bundle. */
const layering = {
  name: 'filestore-cli-layering',
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, async (args) => {
      if (args.namespace !== 'file' || args.pluginData === 'resolved') return undefined;
      const resolved = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: 'resolved' });
      if (resolved.errors.length > 0) return undefined;
      const rel = path.relative(root, resolved.path).split(path.sep).join('/');
      if (!LAZY_PROJECT_MODULES.some((re) => re.test(rel))) return undefined;
      // A runtime require of tsc's compiled file, relative to the bundle (which lives in dist/src/cli/).
      const compiled = path.join(root, 'dist', rel.replace(/\.ts$/, '.js'));
      let fromBundle = path.relative(cliDir, compiled).split(path.sep).join('/');
      if (!fromBundle.startsWith('.')) fromBundle = `./${fromBundle}`;
      return { path: fromBundle, external: true };
    });
    // The three Temporal packages come from the second bundle, through a one-line shim each, so
    // they are read (and @temporalio/common is loaded once) only when a mutation connects.
    build.onResolve({ filter: /^@temporalio\/(client|common|proto)$/ }, (args) => ({ path: args.path, namespace: 'temporal-shim' }));
    build.onLoad({ filter: /.*/, namespace: 'temporal-shim' }, (args) => ({
      contents: `module.exports = require('./${TEMPORAL_BUNDLE}')[${JSON.stringify(args.path)}];`,
      loader: 'js',
    }));
    build.onResolve({ filter: new RegExp(`^\\./${TEMPORAL_BUNDLE.replace(/\./g, '\\.')}$`) }, (args) => ({ path: args.path, external: true }));
  },
};

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  absWorkingDir: root,
  metafile: true,
  logLevel: 'warning',
  // pg's optional native binding; never installed here, and pg only tries it on request.
  external: ['pg-native'],
  legalComments: 'none',
};

function checkInputs(name, metafile) {
  const bad = Object.keys(metafile.inputs).filter((input) => FORBIDDEN_INPUTS.some((re) => re.test(input)));
  if (bad.length > 0) {
    throw new Error(`${name} must not contain the worker side, the watcher or the AWS SDK, but bundles:\n  ${bad.slice(0, 20).join('\n  ')}\n(import it inside the verb's action instead)`);
  }
}

async function main() {
  // The lazy verbs' modules come from tsc's output: it has to be there.
  if (!fs.existsSync(path.join(cliDir, 'main.js'))) throw new Error('dist/src/cli/main.js is missing: run tsc first (npm run build does both)');

  const cli = await esbuild.build({
    ...common,
    entryPoints: [path.join(root, 'src', 'cli', 'main.ts')],
    outfile: path.join(cliDir, 'filestore.bundle.js'),
    tsconfig: path.join(root, 'tsconfig.build.json'),
    // `await import('../worker')` becomes a require() call, as tsc makes it: CommonJS all the way.
    supported: { 'dynamic-import': false },
    plugins: [layering],
  });
  checkInputs('filestore.bundle.js', cli.metafile);
  fs.writeFileSync(path.join(cliDir, 'filestore.bundle.meta.json'), JSON.stringify(cli.metafile));

  // One object keyed by package name; the shims above pick their package out of it.
  const temporal = await esbuild.build({
    ...common,
    stdin: {
      contents: `module.exports = { ${TEMPORAL_PACKAGES.map((p) => `${JSON.stringify(p)}: require(${JSON.stringify(p)})`).join(', ')} };`,
      resolveDir: root,
      sourcefile: 'temporal-client-bundle-entry.js',
      loader: 'js',
    },
    outfile: path.join(cliDir, TEMPORAL_BUNDLE),
  });
  checkInputs(TEMPORAL_BUNDLE, temporal.metafile);
  fs.writeFileSync(path.join(cliDir, 'temporal-client.bundle.meta.json'), JSON.stringify(temporal.metafile));
}

main().catch((err) => {
  process.stderr.write(`bundle-cli: ${err.message}\n`);
  process.exit(1);
});
