/** Human output of the CLI (tables); --json prints the rows instead — and its option parsing helpers. */
import type { DriftEventRow, JournalRow, MountRow, NodeRow } from '../catalog/types';
import { InvalidRequestError } from '../errors';
import type { MutationResult } from '../mutations';
import type { RunStatus } from './run-status';

/** commander option parser for a positive whole number; anything else is a typed INVALID_REQUEST. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidRequestError(`expected a positive whole number, got ${JSON.stringify(value)}`);
  return n;
}

function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
}

export function formatMounts(rows: MountRow[]): string {
  if (rows.length === 0) return '(no mounts; add one with `filestore mount add <id> --local <dir>` or `--s3 s3://bucket[/prefix]`)';
  return table([
    ['ID', 'KIND', 'ROOT', 'OPTIONS'],
    ...rows.map((m) => [
      m.id,
      m.kind,
      m.rootPath ?? `s3://${m.bucket}${m.prefix ? `/${m.prefix}` : ''}`,
      [
        // S3: where (endpoint, region), then the write settings as key=value; flags by name.
        ...(m.endpoint ? [`endpoint=${m.endpoint}`] : []),
        ...(m.region ? [`region=${m.region}`] : []),
        // Sorted: jsonb keeps keys in its own order (by length), not the order they were set.
        ...Object.entries(m.options)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .filter(([, v]) => v)
          .map(([k, v]) => (v === true ? k : `${k}=${String(v)}`)),
      ].join(',') || '-',
    ]),
  ]);
}

export function formatNodes(rows: NodeRow[], opts: { long?: boolean } = {}): string {
  if (rows.length === 0) return '(empty)';
  if (opts.long) {
    return rows
      .map((n) =>
        [
          `path     ${n.mountId}:${n.path}`,
          `kind     ${n.kind}`,
          `state    ${n.state}`,
          `size     ${n.size}`,
          `sha256   ${n.sha256 ?? '-'}`,
          `mode     ${n.mode === null ? '-' : (n.mode & 0o7777).toString(8)}`,
          `owner    ${n.uid ?? '-'}:${n.gid ?? '-'}`,
          `mtime    ${n.mtime ?? '-'}`,
          `version  ${n.version}`,
          `journal  ${n.lastJournalId ?? '-'}`,
        ].join('\n'),
      )
      .join('\n\n');
  }
  return table([
    ['KIND', 'SIZE', 'STATE', 'VERSION', 'PATH'],
    ...rows.map((n) => [n.kind === 'directory' ? 'dir' : 'file', String(n.size), n.state, String(n.version), n.kind === 'directory' ? `${n.path}/` : n.path]),
  ]);
}

export function formatJournal(rows: JournalRow[]): string {
  if (rows.length === 0) return '(no journal entries)';
  return table([
    ['CREATED', 'STATUS', 'OP', 'TARGET', 'WORKFLOW'],
    ...rows.map((j) => [
      j.createdAt.toISOString(),
      j.status,
      j.op,
      `${j.mountId}:${j.path}${j.targetPath !== null ? ` → ${j.targetPath}` : ''}`,
      j.workflowId,
    ]),
  ]);
}

/** One journal entry in full: where, what, when, and its request, result or error. */
export function formatJournalEntry(j: JournalRow): string {
  const target = j.targetPath !== null ? ` → ${j.targetMountId ?? j.mountId}:${j.targetPath}` : '';
  const lines = [
    `id        ${j.id}`,
    `key       ${j.idempotencyKey}`,
    `workflow  ${j.workflowId}${j.runId ? ` (run ${j.runId})` : ''}`,
    `op        ${j.op} ${j.mountId}:${j.path}${target}`,
    `status    ${j.status}`,
    `created   ${j.createdAt.toISOString()}`,
    `completed ${j.completedAt ? j.completedAt.toISOString() : '-'}`,
    `request   ${JSON.stringify(j.request)}`,
  ];
  if (j.result) lines.push(`result    ${JSON.stringify(j.result)}`);
  if (j.error) lines.push(`error     ${JSON.stringify(j.error)}`);
  return lines.join('\n');
}

/** A run's state: its status line, then the result or the error of a closed run. */
export function formatRunStatus(s: RunStatus): string {
  const lines = [`workflow  ${s.workflowId} (run ${s.runId})`, `status    ${s.status}`, `started   ${s.startedAt}`];
  if (s.closedAt) lines.push(`closed    ${s.closedAt}`);
  if (s.result) lines.push(`result    ${formatResult(s.result)}`);
  if (s.error) lines.push(`error     ${s.error.code}: ${s.error.message}`);
  return lines.join('\n');
}

export function formatResult(r: MutationResult): string {
  const where = r.targetPath ? `${r.mountId}:${r.path} → ${r.targetMountId ?? r.mountId}:${r.targetPath}` : `${r.mountId}:${r.path}`;
  const node = r.node ? ` ${r.node.kind} ${r.node.size} bytes${r.node.sha256 ? ` sha256 ${r.node.sha256}` : ''} v${r.node.version}` : '';
  return `${r.status.toLowerCase()} ${r.op} ${where}${node} (journal ${r.journalId})`;
}

export function formatDrift(rows: DriftEventRow[]): string {
  if (rows.length === 0) return '(no open drift events)';
  return table([
    ['DETECTED', 'KIND', 'TARGET', 'OBSERVED'],
    ...rows.map((d) => [
      d.detectedAt.toISOString(),
      d.kind,
      `${d.mountId}:${d.path}`,
      d.observed.kind ? `${d.observed.kind} ${d.observed.size ?? 0} bytes mtime ${d.observed.mtime ?? '-'}` : 'gone',
    ]),
  ]);
}
