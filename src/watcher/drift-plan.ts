/**
 * The pure collapse step of drift detection: {@link planDriftJobs} turns one window of one mount
 * (changed paths plus requested scans) into a bounded list of drift jobs, and {@link driftJobId}
 * names each job deterministically for the queue's deduplication. The `EventAggregator`
 * (event-aggregator.ts) collects the windows and calls {@link planDriftJobs} when it flushes one.
 *
 * ## Collapse rules (applied by {@link planDriftJobs} at flush time)
 * With N changed paths, K requested scans, T = `dirRescanThreshold`, M = `mountRescanThreshold`,
 * B = `batchSize`:
 * 1. Paths and scans covered by a requested scan (equal to its directory or below it) are dropped
 *    as they arrive; a requested scan of `''` covers the whole mount.
 * 2. If N + K·(T+1) > M — a requested scan weighs as much as the smallest directory that earns a
 *    scan by the threshold rule — the window becomes ONE `scan` of `''` and nothing else.
 * 3. Otherwise every directory other than the root whose subtree holds more than T changed paths
 *    (directly or indirectly; requested scans below it count as one each) is rescanned, keeping
 *    only the shallowest such directories; paths and requested scans covered by them are dropped.
 * 4. The remaining paths, sorted, go into `check` jobs of at most B paths each. Scans come first
 *    in the job list, sorted by directory.
 *
 * ## The bound
 * Per flush per mount, with S the number of `scan` jobs:
 *
 *     jobs ≤ ceil(min(N, M) / B) + S,  and  S ≤ floor(M / (T+1)),
 *
 * so jobs ≤ ceil(M / B) + floor(M / (T+1)) whatever the event rate (44 with the defaults
 * T = 200, M = 5000, B = 250), and exactly 1 when the mount is rescanned. The scan bound holds
 * because every threshold scan replaces more than T paths and every requested scan weighs T+1,
 * while their total weight is at most M.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { parentPath } from '../paths';

/** One drift job for the queue. `firstEventAt` is the clock time of the window's first event (for latency metrics). */
export type DriftJobSpec =
  /** Stat these paths and compare each with the catalog. */
  | { kind: 'check'; mountId: string; paths: string[]; firstEventAt: number }
  /** Walk this directory (`''` = the whole mount) and compare it with the catalog. */
  | { kind: 'scan'; mountId: string; dir: string; firstEventAt: number };

/** The limits used by {@link planDriftJobs}. */
export interface CollapseLimits {
  /** More than this many changed paths under one directory in one window → one `scan` of that directory instead. */
  dirRescanThreshold: number;
  /** More than this many changed paths in one mount in one window → one `scan` of the whole mount (`''`). */
  mountRescanThreshold: number;
  /** Most paths per `check` job. */
  batchSize: number;
}

/**
 * Deterministic id of a drift job, to pass to BullMQ as
 * `deduplication: { id: driftJobId(spec), keepLastIfActive: true }` so that an identical job still
 * waiting in the queue absorbs the new one, while one already running gets a fresh run after it.
 * (As a plain `jobId` it would also swallow jobs identical to a completed job that is still kept.)
 *
 * Scans: `scan-` + hash of (mount, dir); checks: `check-` + hash of (mount, sorted distinct paths).
 * `firstEventAt` is not part of the id. The id never contains `:` (BullMQ refuses most custom ids
 * with one, and mount ids and paths may contain it) and is never an integer.
 */
export function driftJobId(spec: DriftJobSpec): string {
  const parts = spec.kind === 'scan' ? [spec.mountId, spec.dir] : [spec.mountId, ...[...new Set(spec.paths)].sort()];
  return `${spec.kind}-${createHash('sha1').update(JSON.stringify(parts)).digest('hex').slice(0, 24)}`;
}

/** True when `p` or one of its ancestors is in `dirs` (O(depth)). */
export function coveredByAny(p: string, dirs: ReadonlySet<string>): boolean {
  if (dirs.size === 0) return false;
  if (dirs.has('')) return true;
  for (let d = p; d !== ''; d = parentPath(d)) if (dirs.has(d)) return true;
  return false;
}

/**
 * The jobs for one window of one mount, by the collapse rules in the module comment. Pure; accepts
 * any input (duplicates, covered paths, `''`) and is O((N + K) · depth + N log N).
 */
export function planDriftJobs(
  mountId: string,
  window: { paths: Iterable<string>; scans?: Iterable<string>; mountScan?: boolean; firstEventAt: number },
  limits: CollapseLimits,
): DriftJobSpec[] {
  const { dirRescanThreshold: T, mountRescanThreshold: M, batchSize: B } = limits;
  const firstEventAt = window.firstEventAt;
  const mountScan: DriftJobSpec[] = [{ kind: 'scan', mountId, dir: '', firstEventAt }];
  if (window.mountScan) return mountScan;

  // Requested scans, minus those inside another one.
  const requested = new Set(window.scans ?? []);
  if (requested.has('')) return mountScan;
  const scans = [...requested].filter((s) => !hasProperAncestorIn(s, requested));
  const scanSet = new Set(scans);

  const paths: string[] = [];
  for (const p of new Set(window.paths)) {
    if (p === '') return mountScan;
    if (!coveredByAny(p, scanSet)) paths.push(p);
  }
  if (paths.length + scans.length * (T + 1) > M) return mountScan;

  // Changed entries strictly under each directory (the root excluded: that is the mount rule's job).
  const counts = new Map<string, number>();
  for (const item of [...paths, ...scans]) {
    for (let d = parentPath(item); d !== ''; d = parentPath(d)) counts.set(d, (counts.get(d) ?? 0) + 1);
  }
  // Counts never decrease going up, so the shallowest directories over T are those whose parent is not.
  const rescanned = new Set<string>();
  for (const [dir, n] of counts) {
    const parent = parentPath(dir);
    if (n > T && (parent === '' || (counts.get(parent) ?? 0) <= T)) rescanned.add(dir);
  }

  const finalScans = [...rescanned, ...scans.filter((s) => !coveredByAny(s, rescanned))].sort();
  const checks = paths.filter((p) => !coveredByAny(p, rescanned)).sort();
  const jobs: DriftJobSpec[] = finalScans.map((dir) => ({ kind: 'scan', mountId, dir, firstEventAt }));
  for (let i = 0; i < checks.length; i += B) jobs.push({ kind: 'check', mountId, paths: checks.slice(i, i + B), firstEventAt });
  return jobs;
}

/** True when a proper ancestor of `p` (the root excluded) is in `dirs`. */
function hasProperAncestorIn(p: string, dirs: ReadonlySet<string>): boolean {
  for (let d = parentPath(p); d !== ''; d = parentPath(d)) if (dirs.has(d)) return true;
  return false;
}
