/**
 * HTTP API benchmark (`npm run bench:api`): BENCH_API_OPS mixed operations — puts of small (4 KiB)
 * and medium (1 MiB) files, gets with and without Range, stats, HEADs, lists, mkdir, copy, move,
 * delete (bench/api-bench-ops.ts) — from BENCH_API_CONCURRENCY concurrent HTTP clients (node's
 * fetch, keep-alive) against a real `filestore api` server in its own child process
 * (bench/api-bench-server.ts, so its RSS is its own) and a real worker (in this process), on a
 * local mount. Mutations wait for their result (no respond-async): a call's latency is the
 * mutation's, end to end.
 *
 * Figures: throughput, p50/p99 per op kind and overall, errors other than expected conflicts
 * (target: 0; two copies of one source meeting on its lock are the expected conflicts, printed
 * apart), the API server's RSS before and after, and a baseline: the run's read ops replayed at
 * the same concurrency against the API and against a bare node:http static file server over the
 * same files (bench/api-bench-static.ts, also a child), so the API's read overhead prints as a ratio.
 *
 * Environment:
 *   BENCH_API_OPS          operations in the mixed run  @defaultValue 2000
 *   BENCH_API_CONCURRENCY  HTTP clients at once          @defaultValue 64
 *   plus the usual DATABASE_URL / TEMPORAL_CLI_PATH (the Temporal dev server is started here).
 *
 * Output: tables on stdout, then ONE JSON line with every figure as the last line. Progress goes
 * to stderr. A missed target is reported (`met: false`), never an exit code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createToken } from '../src/catalog/tokens';
import { ENV_NAMES, uploadDirOf } from '../src/config';
import { stopChild } from '../src/dev/child-process';
import { stackEnv } from '../test/helpers/cli';
import { createBenchStack, type BenchStack } from './bench-stack';
import { emitReport, intEnv, log, now, pool, runMain } from './bench-util';
import { MEDIUM_BYTES, PUT_DIRS, READ_KINDS, READ_MEDIUM, READ_SMALL, SMALL_BYTES, planOps, readFile, runApiOp, runStaticOp, type ApiTarget, type Op, type OpResult } from './api-bench-ops';
import { byKind, errorSamples, renderReport, runFigures, type ApiBenchFigures } from './api-bench-report';

const OPS = intEnv('BENCH_API_OPS', 2000);
const CONCURRENCY = intEnv('BENCH_API_CONCURRENCY', 64);

/** Starts a bench child (`node --import tsx <file>`) and waits for its `{ url }` line. */
async function startChild(file: string, env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, file)], { cwd: path.join(__dirname, '..'), env, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (l) => {
      rl.close();
      resolve(l);
    });
    child.once('exit', (code, signal) => reject(new Error(`${file} exited with ${code ?? signal} before it listened`)));
  });
  child.stdout!.resume();
  return { child, url: (JSON.parse(line) as { url: string }).url };
}

/** VmRSS and VmHWM of a process, in bytes. */
function memOf(pid: number): { rss: number; hwm: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Seeds what the mix reads and consumes, through the API itself; throws if any of it fails. */
async function seed(t: ApiTarget, victims: string[]): Promise<{ files: number; bytes: number; wallMs: number }> {
  const t0 = now();
  const must = async (what: string, results: OpResult[]) => {
    const bad = results.filter((r) => r.outcome !== 'ok');
    if (bad.length) throw new Error(`seeding ${what}: ${bad.length} failed, e.g. ${bad[0].status} ${bad[0].code ?? ''}`);
  };
  // Parents first, one at a time: concurrent mkdirs of one parent would meet on its lock.
  for (const dir of ['r', 'w', 'c', 'd', 'm', 'v']) await must(dir, [await runApiOp(t, { i: -1, kind: 'mkdir', path: dir })]);
  const dirs = Array.from({ length: PUT_DIRS }, (_, k) => `w/${String(k).padStart(2, '0')}`);
  await must('put dirs', (await pool(dirs.length, CONCURRENCY, (k) => runApiOp(t, { i: -1, kind: 'mkdir', path: dirs[k] }))).results);
  const files: Op[] = [
    ...Array.from({ length: READ_SMALL + READ_MEDIUM }, (_, k): Op => ({ i: 1_000_000 + k, kind: k < READ_SMALL ? 'put-small' : 'put-medium', path: readFile(k) })),
    ...victims.map((p, k): Op => ({ i: 2_000_000 + k, kind: 'put-small', path: p })),
  ];
  await must('files', (await pool(files.length, CONCURRENCY, (k) => runApiOp(t, files[k]))).results);
  const bytes = files.reduce((a, f) => a + (f.kind === 'put-medium' ? MEDIUM_BYTES : SMALL_BYTES), 0);
  return { files: files.length, bytes, wallMs: now() - t0 };
}

async function measure(stack: BenchStack): Promise<ApiBenchFigures> {
  const { token } = await createToken(stack.client.db, { admin: true, name: 'api-bench' });
  log('starting the API server (child process)');
  const api = await startChild(
    'api-bench-server.ts',
    stackEnv(stack.config, {
      [ENV_NAMES.apiHost]: '127.0.0.1',
      [ENV_NAMES.apiPort]: '0',
      [ENV_NAMES.stateDir]: stack.config.stateDir,
      // The worker (in this process) reads uploads from the same area.
      [ENV_NAMES.uploadDir]: uploadDirOf(stack.config),
      // A server starts mutations over gRPC, as `filestore api` does.
      [ENV_NAMES.temporalHttpUrl]: 'off',
    }),
  );
  log('starting the static baseline server (child process)');
  const statik = await startChild('api-bench-static.ts', { ...process.env, BENCH_STATIC_ROOT: stack.mountRoot });
  try {
    const pid = api.child.pid!;
    const target: ApiTarget = { url: api.url, mount: stack.mountId, token };
    const startRss = memOf(pid).rss;
    const { ops, victims } = planOps(OPS);

    log(`seeding ${READ_SMALL + READ_MEDIUM} read files and ${victims.length} files to move or delete`);
    const seeded = await seed(target, victims);
    const beforeRss = memOf(pid).rss;

    log(`mixed run: ${OPS} ops, ${CONCURRENCY} clients`);
    const mixed = await pool(ops.length, CONCURRENCY, (k) => runApiOp(target, ops[k]));
    const afterRss = memOf(pid).rss;
    const m = runFigures(mixed.results, mixed.wallMs);
    log(`mixed: ${m.opsPerSec} ops/s, ${m.errors} errors, ${m.conflicts} conflicts`);

    const reads = ops.filter((o) => READ_KINDS.has(o.kind));
    log(`reads only: ${reads.length} ops against the API, then the static server`);
    // Warm both (connections, caches) with one round of the same reads first.
    await pool(CONCURRENCY, CONCURRENCY, (k) => runApiOp(target, reads[k % reads.length]));
    const apiReads = await pool(reads.length, CONCURRENCY, (k) => runApiOp(target, reads[k]));
    await pool(CONCURRENCY, CONCURRENCY, (k) => runStaticOp(statik.url, reads[k % reads.length]));
    const staticReads = await pool(reads.length, CONCURRENCY, (k) => runStaticOp(statik.url, reads[k]));
    const end = memOf(pid);
    const a = runFigures(apiReads.results, apiReads.wallMs);
    const s = runFigures(staticReads.results, staticReads.wallMs);

    return {
      ops: OPS,
      concurrency: CONCURRENCY,
      seed: { files: seeded.files, bytes: seeded.bytes, wallMs: Math.round(seeded.wallMs) },
      mixed: { ...m, byKind: byKind(mixed.results), errorSamples: errorSamples(mixed.results) },
      reads: {
        count: reads.length,
        api: a,
        static: s,
        ratio: { p50: a.p50Ms / s.p50Ms, p99: a.p99Ms / s.p99Ms, throughput: s.opsPerSec / a.opsPerSec },
      },
      rss: { startBytes: startRss, beforeBytes: beforeRss, afterBytes: afterRss, endBytes: end.rss, peakBytes: end.hwm },
    };
  } finally {
    await stopChild(statik.child, 5000);
    await stopChild(api.child, 10_000);
  }
}

async function main(): Promise<void> {
  log(`api: ${OPS} mixed ops from ${CONCURRENCY} clients`);
  const stack = await createBenchStack();
  const stop = () => {
    log('interrupted; cleaning up');
    void stack.teardown().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let out: string;
  try {
    out = renderReport(await measure(stack));
  } finally {
    log('cleaning up');
    await stack.teardown();
  }
  await emitReport(out);
}

runMain(main);
