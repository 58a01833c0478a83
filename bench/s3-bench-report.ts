/**
 * The report of bench/s3-bench.ts: the human table, then ONE JSON line with every figure (the
 * last line of the output).
 */
import os from 'node:os';
import { MiB, table } from './bench-util';
import type { Contender, LargeFigures } from './s3-bench-large';
import type { CutFigures, ResumeFigures } from './s3-bench-resume';
import type { SmallFigures } from './s3-bench-small';

export interface RunInfo {
  s3Server: string;
  s3Endpoint: string;
  totalSeconds: number;
  /** 1-minute load average when the run started and when it ended: other work on the machine shows here. */
  loadAverage1m: { atStart: number; atEnd: number };
}

/** The whole output: the table, a blank line, the JSON line. */
export function renderReport(run: RunInfo, large: LargeFigures, resume: ResumeFigures, small: SmallFigures): string {
  const json = {
    bench: 's3',
    run,
    large,
    resume,
    small,
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, memBytes: os.totalmem(), node: process.version, platform: `${os.platform()} ${os.release()}`, tmpdir: os.tmpdir() },
  };
  return `${report(large, resume, small)}\n\nload average (1 min): ${run.loadAverage1m.atStart} at start, ${run.loadAverage1m.atEnd} at end, on ${os.cpus().length} CPUs; ${run.totalSeconds} s in all\n\n${JSON.stringify(json)}\n`;
}

const yes = (ok: boolean) => (ok ? 'yes' : 'NO');
const pct = (share: number) => `${(share * 100).toFixed(2)} %`;
const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;

function report(large: LargeFigures, resume: ResumeFigures, small: SmallFigures): string {
  const tput = (c: Contender | null) => (c ? `${c.seconds.toFixed(2)} s  ${c.MBps.toFixed(1)} MB/s` : '-');
  const rows: string[][] = [['metric', 'value', 'baseline', 'ratio', 'target', 'met?']];
  rows.push([`upload ${mib(large.bytes)}: workflow vs lib-storage, best of ${large.rounds}`, tput(large.workflow), tput(large.libStorage), large.ratio.toFixed(3), `>= ${large.target}`, yes(large.met)]);
  rows.push(['  both in this process (in-process worker)', tput(large.inProcess.workflow), tput(large.inProcess.libStorage), large.inProcess.ratio.toFixed(3), '', '']);
  if (large.rclone.version) {
    rows.push(['  rclone copyto, its defaults', tput(large.rclone.defaults), '', '', '', '']);
    rows.push(['  rclone copyto, matched part size / concurrency / cutoff', tput(large.rclone.matched), '', '', '', '']);
  } else {
    rows.push([`  rclone: not available (${large.rclone.unavailable})`, '-', '', '', '', '']);
  }
  const f = resume.filestore;
  rows.push([`kill -9 at ${resume.killAtShare * 100} %, new worker resumes: re-sent / file`, pct(f.resentShareOfFile), '', '', `<= ${pct(f.target)}`, yes(f.met)]);
  rows.push(['  sent before the kill / after the restart', `${mib(f.sentBeforeKillBytes)} / ${mib(f.sentAfterRestartBytes)}`, '', '', '', '']);
  rows.push(['  re-sent / what was sent before the kill', pct(f.resentShareOfSentBeforeKill), '', '', '', '']);
  rows.push(['  kill → result; sha256 matches the source', `${f.killToResultSeconds.toFixed(1)} s; ${f.sha256Matches ? 'yes' : 'NO'}`, '', '', '', '']);
  const m = f.newWorker;
  const n = (v: number | null, fmt: (x: number) => string = String) => (v === null ? 'n/a' : fmt(v));
  rows.push(['  new worker /metrics: bytes uploaded; parts sent / reused', `${n(m.uploadedBytes, mib)}; ${n(m.partsUploaded)} / ${n(m.partsReused)}`, '', '', '', '']);
  const toolRow = (name: string, c: CutFigures) => [`  ${name}, same cut, run again: re-sent / file (/ sent before)`, `${pct(c.resentShareOfFile)} (${pct(c.resentShareOfSentBeforeKill)})`, '', '', '', ''];
  rows.push(toolRow('lib-storage', resume.libStorage));
  if ('unavailable' in resume.rclone) rows.push([`  rclone: not available (${resume.rclone.unavailable})`, '-', '', '', '', '']);
  else rows.push(toolRow('rclone', resume.rclone));
  rows.push(['  s5cmd: not installed, not measured', '-', '', '', '', '']);
  rows.push([`small objects ×${small.count} (4 KiB) @${small.concurrency}: S3 vs local mount, per s`, small.s3.mutationsPerSecond.toFixed(1), small.local.mutationsPerSecond.toFixed(1), small.ratio.toFixed(3), '', '']);
  rows.push(['  p50 / p99 latency ms', `${small.s3.p50Ms.toFixed(1)} / ${small.s3.p99Ms.toFixed(1)}`, `${small.local.p50Ms.toFixed(1)} / ${small.local.p99Ms.toFixed(1)}`, '', '', '']);
  const notes = [
    `Uploads: ${mib(large.partSize)} parts, ${large.concurrency} in flight, multipart from ${mib(large.multipartThreshold)} (FILESTORE_S3_*), the same for every contender.`,
    'Upload rows: the workflow (put → result) run by a worker in a process of its own vs lib-storage Upload in a process of its own (the target); then both in the bench process.',
    'The workflow (put → result) hashes the file first (sha256, stored in metadata) and sends a SHA256 checksum with each part; lib-storage Upload sends the SDK default CRC32 per part.',
    large.rclone.version ? `rclone: ${large.rclone.version}; matched: ${large.rclone.matchedFlags.join(' ')}.` : null,
    'Resume: bytes counted on the wire by a proxy in front of the S3 server (headers and small requests count as re-sent). lib-storage, rclone and s5cmd have no resume: a re-run sends the whole file again.',
    `Parts in flight at the kill are lost: at most ${large.concurrency} × ${mib(large.partSize)} = ${pct((large.concurrency * large.partSize) / large.bytes)} of this file.`,
  ].filter((l): l is string => l !== null);
  return `${table(rows)}\n\n${notes.join('\n')}`;
}
