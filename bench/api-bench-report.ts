/**
 * The report of bench/api-bench.ts: the human tables, then ONE JSON line with every figure (the
 * last line of the output).
 */
import os from 'node:os';
import { MiB, percentile, table } from './bench-util';
import { KINDS, type OpResult } from './api-bench-ops';

/** Latency and outcome figures of a set of calls. */
export interface CallFigures {
  count: number;
  ok: number;
  /** Expected conflicts: 409 CONFLICT / 423 PATH_LOCKED from two mutations meeting on one lock. */
  conflicts: number;
  /** Everything else that was not the expected status (target: 0). */
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

export interface RunFigures extends CallFigures {
  wallMs: number;
  opsPerSec: number;
}

/** Resident set of the API server process (its own child), from /proc. */
export interface RssFigures {
  /** Right after it listened. */
  startBytes: number;
  /** After the seed files, before the mixed run. */
  beforeBytes: number;
  /** After the mixed run. */
  afterBytes: number;
  /** After the read-only comparison too. */
  endBytes: number;
  /** The kernel's peak (VmHWM) over the whole run. */
  peakBytes: number;
}

export interface ApiBenchFigures {
  ops: number;
  concurrency: number;
  seed: { files: number; bytes: number; wallMs: number };
  mixed: RunFigures & { byKind: Record<string, CallFigures>; errorSamples: string[] };
  reads: { count: number; api: RunFigures; static: RunFigures; ratio: { p50: number; p99: number; throughput: number } };
  rss: RssFigures;
}

/** Figures of a set of results. */
export function callFigures(results: OpResult[]): CallFigures {
  const ms = results.map((r) => r.ms).sort((a, b) => a - b);
  return {
    count: results.length,
    ok: results.filter((r) => r.outcome === 'ok').length,
    conflicts: results.filter((r) => r.outcome === 'conflict').length,
    errors: results.filter((r) => r.outcome === 'error').length,
    p50Ms: round(percentile(ms, 50)),
    p99Ms: round(percentile(ms, 99)),
  };
}

export function runFigures(results: OpResult[], wallMs: number): RunFigures {
  return { ...callFigures(results), wallMs: round(wallMs), opsPerSec: round((results.length / wallMs) * 1000) };
}

export function byKind(results: OpResult[]): Record<string, CallFigures> {
  const out: Record<string, CallFigures> = {};
  for (const k of KINDS) {
    const of = results.filter((r) => r.kind === k);
    if (of.length) out[k] = callFigures(of);
  }
  return out;
}

/** A few distinct error answers, for the reader (status, code, kind). */
export function errorSamples(results: OpResult[], max = 10): string[] {
  const seen = new Map<string, number>();
  for (const r of results) {
    if (r.outcome !== 'error') continue;
    const key = `${r.kind} → ${r.status || 'network'} ${r.code ?? ''}`.trim();
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return [...seen].slice(0, max).map(([k, n]) => `${n}× ${k}`);
}

function round(n: number): number {
  return Number.isFinite(n) ? Math.round(n * 100) / 100 : n;
}

const ms = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '–');
const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

/** The whole output: the tables, a blank line, the JSON line. */
export function renderReport(f: ApiBenchFigures): string {
  const m = f.mixed;
  const kindRows = Object.entries(m.byKind).map(([k, c]) => [k, String(c.count), String(c.ok), String(c.conflicts), String(c.errors), ms(c.p50Ms), ms(c.p99Ms)]);
  const mixedTable = table([
    ['op', 'count', 'ok', 'conflicts', 'errors', 'p50 ms', 'p99 ms'],
    ...kindRows,
    ['all', String(m.count), String(m.ok), String(m.conflicts), String(m.errors), ms(m.p50Ms), ms(m.p99Ms)],
  ]);
  const r = f.reads;
  const readsTable = table([
    ['reads only (get, get-range, head)', 'ops/s', 'p50 ms', 'p99 ms', 'errors'],
    ['Filestore API', r.api.opsPerSec.toFixed(0), ms(r.api.p50Ms), ms(r.api.p99Ms), String(r.api.errors)],
    ['bare node:http static server', r.static.opsPerSec.toFixed(0), ms(r.static.p50Ms), ms(r.static.p99Ms), String(r.static.errors)],
    ['API / static', `${(1 / r.ratio.throughput).toFixed(2)}×`, `${r.ratio.p50.toFixed(2)}×`, `${r.ratio.p99.toFixed(2)}×`, ''],
  ]);
  const summary = table([
    ['figure', 'value', 'target', 'met?'],
    ['mixed throughput', `${m.opsPerSec.toFixed(1)} ops/s (${f.ops} ops in ${(m.wallMs / 1000).toFixed(1)} s, ${f.concurrency} clients)`, '', ''],
    ['errors other than expected conflicts', String(m.errors), '0', m.errors === 0 ? 'yes' : 'NO'],
    ['expected conflicts (409 CONFLICT / 423 PATH_LOCKED)', String(m.conflicts), '', ''],
    ['API server RSS start → before → after mixed → end', `${mib(f.rss.startBytes)} → ${mib(f.rss.beforeBytes)} → ${mib(f.rss.afterBytes)} → ${mib(f.rss.endBytes)}`, '', ''],
    ['API server peak RSS (VmHWM)', mib(f.rss.peakBytes), '', ''],
    ['seed (not timed in the mix)', `${f.seed.files} files, ${mib(f.seed.bytes)} in ${(f.seed.wallMs / 1000).toFixed(1)} s`, '', ''],
  ]);
  const samples = m.errorSamples.length ? `\n\nerrors seen:\n${m.errorSamples.map((s) => `  ${s}`).join('\n')}` : '';
  const json = {
    bench: 'api',
    ...f,
    targets: { errors: { target: 0, value: m.errors, met: m.errors === 0 } },
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, memBytes: os.totalmem(), node: process.version, platform: `${os.platform()} ${os.release()}`, loadAverage1m: os.loadavg()[0] },
  };
  return `${summary}\n\n${mixedTable}\n\n${readsTable}${samples}\n\n${JSON.stringify(json)}\n`;
}
