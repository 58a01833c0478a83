/**
 * Local benchmark (`npm run bench:local`): what a durable mutation costs on one machine, each
 * figure next to a baseline measured in the same run on the same disk and Temporal server.
 *
 *   1. Large write: `put` of a BENCH_LARGE_BYTES random file from a host path, end to end
 *      (start → result) vs the floors read + sha256 alone and `cp src dst && sync`. Target:
 *      workflow ≤ 1.15 × max(floors). Also the peak RSS of this process (the worker runs in it)
 *      during the write, to show constant memory (see local-bench-large.ts).
 *   2. Small writes: BENCH_SMALL_COUNT writes of 4 KiB inline content to distinct paths, at
 *      BENCH_CONCURRENCY in flight, vs the same number of bare workflows (six no-op activities
 *      on two task queues, see bench/bare-workflows.ts). Target: mutations/s ÷ bare/s ≥ 1.0 and p50 ≤ bare p50.
 *      Also where the time goes: per-step queue wait and run time from a sample of histories.
 *   3. CLI start-up: spawned `filestore` processes (mount ls, ls, stat, journal ls, a 4 KiB put)
 *      next to `node -e 1` and a process that only loads the Temporal client (local-bench-cli.ts).
 *      Targets: reads ≤ 0.25 s, put ≤ 0.5 s wall.
 *
 * Environment:
 *   BENCH_LARGE_BYTES   size of the large file        @defaultValue 1073741824 (1 GiB)
 *   BENCH_SMALL_COUNT   number of small writes         @defaultValue 1000
 *   BENCH_CONCURRENCY   small writes in flight         @defaultValue 32
 *   BENCH_LARGE_ROUNDS  rounds of the large write (best kept) @defaultValue 3
 *   BENCH_PARTS         which parts run, comma-separated: `large`, `small`, `cli` (e.g. `small` alone before/after a change) @defaultValue large,small,cli
 *   BENCH_HUGE_BYTES    one more put of this size for its peak RSS (needs 2× free disk) @defaultValue 0 (skipped)
 *   plus the usual DATABASE_URL / TEMPORAL_CLI_PATH (the Temporal dev server is started here).
 *
 * Output: a table on stdout, then ONE JSON line with every figure as the last line of stdout.
 * Progress goes to stderr. A missed target is reported (`met: false`), never an exit code.
 * With BENCH_REPORT_FILE set (scripts/bench.sh does) the report goes to that file instead, so the
 * dev server's banner, which it prints on the stdout it inherits, stays out of it.
 */
import { emitReport, runMain } from './bench-util';
import { createBenchStack, log } from './bench-stack';
import { benchCli } from './local-bench-cli';
import { benchLarge, LARGE_BYTES } from './local-bench-large';
import { renderReport } from './local-bench-report';
import { benchSmall, CONCURRENCY, SMALL_BYTES, SMALL_COUNT } from './local-bench-small';

const PARTS = new Set((process.env.BENCH_PARTS ?? 'large,small,cli').split(',').map((p) => p.trim()));

// Setup, the two parts in turn, and teardown. The parts live in local-bench-large.ts and
// local-bench-small.ts (history breakdown in local-bench-breakdown.ts), the tables and the JSON
// line in local-bench-report.ts.
async function main(): Promise<void> {
  log(`large ${LARGE_BYTES} bytes, small ${SMALL_COUNT} × ${SMALL_BYTES} bytes at concurrency ${CONCURRENCY}`);
  const stack = await createBenchStack();
  const stop = () => {
    log('interrupted; cleaning up');
    void stack.teardown().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let out: string;
  try {
    const large = PARTS.has('large') ? await benchLarge(stack) : null;
    const small = PARTS.has('small') ? await benchSmall(stack) : null;
    const cli = PARTS.has('cli') ? await benchCli(stack) : null;
    out = renderReport({ large, small, cli });
  } finally {
    log('cleaning up');
    await stack.teardown();
  }
  await emitReport(out);
}

runMain(main);
