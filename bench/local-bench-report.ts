/**
 * The report of bench/local-bench.ts: the human tables, then ONE JSON line with every figure (the
 * last line of the output).
 */
import os from 'node:os';
import type { LargeFigures } from './local-bench-large';
import type { SmallFigures } from './local-bench-small';
import { renderCliTable, type CliFigures } from './local-bench-cli';
import { table } from './bench-util';
import { largeRows } from './local-bench-large-report';
import { smallBreakdownTable, smallRows } from './local-bench-small-report';

/** Figures of the parts that ran (BENCH_PARTS). */
export interface LocalParts {
  large: LargeFigures | null;
  small: SmallFigures | null;
  cli: CliFigures | null;
}

/** The whole output: the tables of the parts that ran, a blank line, the JSON line. */
export function renderReport(parts: LocalParts): string {
  const { large, small, cli } = parts;
  const json = {
    bench: 'local',
    ...(large ? { large } : {}),
    ...(small ? { small } : {}),
    ...(cli ? { cli } : {}),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, memBytes: os.totalmem(), node: process.version, platform: `${os.platform()} ${os.release()}`, tmpdir: os.tmpdir(), loadAverage1m: os.loadavg()[0] },
  };
  const sections: string[] = [];
  const rows = [...(large ? largeRows(large) : []), ...(small ? smallRows(small) : [])];
  if (rows.length) sections.push(table([['metric', 'value', 'baseline', 'ratio', 'target', 'met?'], ...rows]));
  if (small) sections.push(smallBreakdownTable(small));
  if (cli) sections.push(renderCliTable(cli));
  return `${sections.join('\n\n')}\n\n${JSON.stringify(json)}\n`;
}
