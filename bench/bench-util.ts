/** Helpers every benchmark uses: env knobs, timing, percentiles, the report table, stderr logging. */
export const MiB = 1024 * 1024;

/** Progress and diagnostics: stderr, so stdout carries only the report. */
export function log(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

/** A positive whole number from the environment, or `fallback` when unset. */
export function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

export const now = () => performance.now();

/** Nearest-rank percentile of an ascending array (NaN when empty). */
export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Aligned columns: the first left-aligned, the rest right-aligned, a rule under the header. */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((cell, c) => (c === 0 ? (cell ?? '').padEnd(widths[c]) : (cell ?? '').padStart(widths[c]))).join('  ').trimEnd();
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** What {@link pool} measured: the wall time, each job's latency, and what each job returned (in finishing order). */
export interface PoolRun<T> {
  wallMs: number;
  latenciesMs: number[];
  results: T[];
}

/** Runs `count` jobs, `concurrency` of them in flight at once, timing each. */
export async function pool<T>(count: number, concurrency: number, job: (i: number) => Promise<T>): Promise<PoolRun<T>> {
  const latenciesMs: number[] = [];
  const results: T[] = [];
  let next = 0;
  const t0 = now();
  const lane = async () => {
    while (next < count) {
      const i = next++;
      const s = now();
      results.push(await job(i));
      latenciesMs.push(now() - s);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  return { wallMs: now() - t0, latenciesMs, results };
}

/** The report goes to BENCH_REPORT_FILE when set (scripts/bench.sh), else to stdout. */
export async function emitReport(out: string): Promise<void> {
  if (process.env.BENCH_REPORT_FILE) await (await import('node:fs/promises')).writeFile(process.env.BENCH_REPORT_FILE, out);
  else process.stdout.write(out);
}

/** Runs a benchmark's main: a failure prints its stack on stderr and exits 1. */
export function runMain(main: () => Promise<void>): void {
  main().catch((err: Error) => {
    process.stderr.write(`bench: failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
}
