#!/usr/bin/env node
'use strict';
/**
 * Builds @filestore/client into dist/ so the published package stands alone:
 *
 *   dist/index.js      one CommonJS bundle (esbuild) of src/ and the server modules it shares
 *                      (src/errors.ts, src/mutations.ts, src/paths.ts); only @temporalio/client
 *                      stays external — the package's one dependency
 *   dist/types/…       tsc's declarations of the same files, in the repository's layout (so the
 *                      shared server types resolve inside dist/), and dist/index.d.ts pointing at them
 *
 * Fails when the bundle holds anything from node_modules, or a declaration imports a path that
 * leaves dist/ or a package that is not a dependency — a published package must not need either.
 * esbuild and typescript come from the repository's devDependencies.
 */
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const esbuild = require('esbuild');

const pkgDir = path.join(__dirname, '..');
const DIST = path.join(pkgDir, 'dist');
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
const dependencies = Object.keys(pkg.dependencies ?? {});

async function main() {
  // Built beside dist/ and swapped in at the end, so a reader (a test, npm pack) never sees half a build.
  const out = path.join(pkgDir, `.dist-${process.pid}`);
  try {
    await buildInto(out);
    fs.rmSync(DIST, { recursive: true, force: true });
    fs.renameSync(out, DIST);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

async function buildInto(out) {
  fs.rmSync(out, { recursive: true, force: true });
  const result = await esbuild.build({
    entryPoints: [path.join(pkgDir, 'src', 'index.ts')],
    outfile: path.join(out, 'index.js'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: dependencies,
    sourcemap: true,
    sourcesContent: false,
    metafile: true,
    logLevel: 'warning',
    // The repository's tsconfig is for the server; the shared files need nothing from it.
    tsconfigRaw: { compilerOptions: { target: 'ES2022', useDefineForClassFields: true } },
  });
  const bundled = Object.keys(result.metafile.inputs).filter((i) => i.includes('node_modules/'));
  if (bundled.length > 0) throw new Error(`the client bundle must not contain third-party code:\n  ${bundled.join('\n  ')}`);

  const tsc = require.resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', path.join(pkgDir, 'tsconfig.json'), '--outDir', path.join(out, 'types')], { stdio: 'inherit' });
  fs.writeFileSync(path.join(out, 'index.d.ts'), "export * from './types/packages/client/src/index';\n");
  checkDeclarations(out);
}

/** Every import of every emitted .d.ts resolves inside dist/ or names a dependency or a Node builtin. */
function checkDeclarations(dist) {
  const problems = [];
  for (const file of walk(dist).filter((f) => f.endsWith('.d.ts'))) {
    // Comments (TSDoc examples import the package by name) are not imports.
    const text = fs.readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
    for (const m of text.matchAll(/(?:from\s+|import\(|require\()\s*['"]([^'"]+)['"]|\/\/\/\s*<reference\s+path=['"]([^'"]+)['"]/g)) {
      const spec = m[1] ?? m[2];
      if (spec.startsWith('.')) {
        const target = path.resolve(path.dirname(file), spec);
        const inside = target.startsWith(dist + path.sep);
        const exists = ['.d.ts', '/index.d.ts', ''].some((ext) => fs.existsSync(target + ext));
        if (!inside || !exists) problems.push(`${path.relative(pkgDir, file)}: ${spec} (${inside ? 'missing' : 'leaves dist/'})`);
      } else if (!spec.startsWith('node:') && !dependencies.some((d) => spec === d || spec.startsWith(`${d}/`)) && !require('node:module').isBuiltin(spec)) {
        problems.push(`${path.relative(pkgDir, file)}: ${spec} (not a dependency)`);
      }
    }
  }
  if (problems.length > 0) throw new Error(`declarations that would not resolve in the published package:\n  ${problems.join('\n  ')}`);
}

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
