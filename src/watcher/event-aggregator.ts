/**
 * Coalesces the watcher's file-system events into a bounded number of drift jobs.
 *
 * `filestore watcher` runs chokidar on each watched mount and feeds every event (`add`, `change`,
 * `unlink`, `addDir`, `unlinkDir`) on a canonical mount-relative path into an {@link EventAggregator}.
 * The aggregator keeps one window per mount: a set of changed paths (repeated events on a path
 * collapse into one entry) plus the directories whose rescan was requested. A window is flushed
 * when the mount has been quiet for `debounceMs`, and at the latest `maxWaitMs` after its first
 * event, so a continuous stream of events still produces jobs. Each flush hands the mount's jobs to
 * `onFlush` in one call (the watcher adds them with one `addBulk`), so a burst of 10,000 events
 * becomes a handful of Redis jobs, never 10,000 round trips.
 *
 * ## Collapse rules and the bound
 * At flush time a window becomes jobs by the collapse rules of {@link planDriftJobs} (see
 * drift-plan.ts, which also derives the bound): with T = `dirRescanThreshold`,
 * M = `mountRescanThreshold` and B = `batchSize`, per flush per mount
 *
 *     jobs ≤ ceil(M / B) + floor(M / (T+1))
 *
 * whatever the event rate (44 with the defaults T = 200, M = 5000, B = 250), and exactly 1 when
 * the mount is rescanned. The window applies rules 1 and 2 as events arrive, so memory is bounded
 * the same way: a window never holds more than M paths — the moment its weight exceeds M it drops
 * its sets and keeps only "scan the mount".
 *
 * ## Directory events
 * `addDir` and `unlinkDir` are recorded like file events, as the directory's path. An `unlinkDir`
 * of `a` therefore reaches the processor as a `check` of `a` (unless a scan covers it): the drift
 * processor must treat a path that the catalog holds as a directory and that is gone from disk as
 * the removal of its whole catalog subtree. This is cheaper than rescanning the parent, which for a
 * top-level directory would be the whole mount. The children of a new or removed directory arrive
 * as their own events and collapse into a scan of the directory by rule 3 (drift-plan.ts) when
 * there are many. An event on the mount root (`''`) requests a scan of the whole mount.
 *
 * ## Failures
 * If `onFlush` rejects (e.g. Redis is down), the jobs are merged back into the mount's window —
 * checks as paths, scans as requested scans, under the same rules, so memory stays bounded — and
 * retried after a backoff that doubles from `retryBaseMs` up to `retryMaxMs`. New events during the
 * backoff join the window without bringing the retry forward. `add()` and `requestScan()` never throw.
 *
 * @module
 */
import type { Config } from '../config';
import { isInFilestoreScratch } from '../executors/local/scratch-names';
import { isStrictlyInside, normalizeMountPath, pathsOverlap } from '../paths';
import { type CollapseLimits, type DriftJobSpec, coveredByAny, planDriftJobs } from './drift-plan';

export { driftJobId, planDriftJobs } from './drift-plan';
export type { CollapseLimits, DriftJobSpec } from './drift-plan';

/** Settings of an {@link EventAggregator}; see `driftDebounceMs` and its siblings in `src/config.ts`. */
export interface AggregatorOptions extends CollapseLimits {
  /** Quiet time after the last event on a mount before its window is flushed (ms). */
  debounceMs: number;
  /** A continuous stream of events still flushes this long after the window's first event (ms). */
  maxWaitMs: number;
  /** First delay before retrying a flush whose `onFlush` failed; doubles on each further failure (ms). @defaultValue 1000 */
  retryBaseMs?: number;
  /** Longest delay between retries (ms). @defaultValue 30000 */
  retryMaxMs?: number;
  /** Called (and never allowed to throw) when `onFlush` fails, with the number of consecutive failures — for logs and metrics. */
  onFlushError?: (mountId: string, err: unknown, failures: number) => void;
  /** Clock, injectable for tests. @defaultValue Date.now */
  now?: () => number;
  /** Timer, injectable for tests. @defaultValue setTimeout */
  setTimer?: (fn: () => void, ms: number) => unknown;
  /** Cancels a timer made by `setTimer`. @defaultValue clearTimeout */
  clearTimer?: (timer: unknown) => void;
}

/** Receives one flush of one mount; a rejection (or throw) keeps the jobs for a retry. */
export type FlushHandler = (mountId: string, jobs: DriftJobSpec[]) => void | Promise<void>;

/** The aggregator settings from the `drift*` entries of the configuration. */
export function aggregatorOptionsFromConfig(
  config: Pick<Config, 'driftDebounceMs' | 'driftMaxWaitMs' | 'driftDirRescanThreshold' | 'driftMountRescanThreshold' | 'driftBatchSize'>,
): AggregatorOptions {
  return {
    debounceMs: config.driftDebounceMs,
    maxWaitMs: config.driftMaxWaitMs,
    dirRescanThreshold: config.driftDirRescanThreshold,
    mountRescanThreshold: config.driftMountRescanThreshold,
    batchSize: config.driftBatchSize,
  };
}

/** True when `p` is `dir` or lies below it. */
const coveredBy = (p: string, dir: string): boolean => p === dir || isStrictlyInside(p, dir);

/** One mount's window and flush state. */
interface MountWindow {
  readonly mountId: string;
  /** Changed paths not covered by `scans`; empty when `mountScan`. */
  paths: Set<string>;
  /** Requested scans, none inside another; empty when `mountScan`. */
  scans: Set<string>;
  /** The whole mount is to be rescanned. */
  mountScan: boolean;
  /** Clock time of the window's first event; undefined ⇔ the window is empty. */
  firstEventAt: number | undefined;
  lastEventAt: number;
  timer: unknown;
  armed: boolean;
  inFlight: Promise<void> | undefined;
  /** Consecutive failed flushes (0 = healthy). */
  failures: number;
  retryAt: number;
}

const DEFAULT_RETRY_BASE_MS = 1000;
const DEFAULT_RETRY_MAX_MS = 30_000;

/**
 * Per-mount debounce/max-wait windows over file-system events, flushed as a bounded list of
 * {@link DriftJobSpec}s (see the module comment for the rules and the bound).
 *
 * At most one `onFlush` call per mount is in flight at a time; events that arrive meanwhile open
 * the next window.
 */
export class EventAggregator {
  private readonly windows = new Map<string, MountWindow>();
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (timer: unknown) => void;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private closed = false;

  /**
   * @param opts - windows, thresholds and (for tests) clock and timers.
   * @param onFlush - receives each mount's jobs, once per flush; reject to have them kept and retried.
   * @throws RangeError when a time is negative or a threshold or batch size is below 1.
   */
  constructor(
    private readonly opts: AggregatorOptions,
    private readonly onFlush: FlushHandler,
  ) {
    for (const key of ['debounceMs', 'maxWaitMs', 'dirRescanThreshold', 'mountRescanThreshold', 'batchSize'] as const) {
      const v = opts[key];
      const min = key.endsWith('Ms') ? 0 : 1;
      if (typeof v !== 'number' || !(v >= min)) throw new RangeError(`EventAggregator: ${key} must be a number ≥ ${min}, got ${String(v)}`);
    }
    this.now = opts.now ?? Date.now;
    this.setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = opts.clearTimer ?? ((t) => clearTimeout(t as NodeJS.Timeout));
    this.retryBaseMs = opts.retryBaseMs ?? DEFAULT_RETRY_BASE_MS;
    this.retryMaxMs = opts.retryMaxMs ?? DEFAULT_RETRY_MAX_MS;
  }

  /**
   * Records one chokidar event. O(1) amortised (O(depth) while a directory scan is pending); never throws.
   * Every event kind records `path` (see the module comment for `addDir`/`unlinkDir`); `event` does not
   * change the handling. Filestore's own paths (staging, identity marker, move scratch) are
   * ignored; `''` and paths that are not canonical (which chokidar should never report) request a
   * scan of the whole mount.
   * Ignored after {@link close}.
   */
  add(mountId: string, path: string, event?: string): void {
    void event;
    try {
      if (this.closed) return;
      const p = canonical(path);
      if (p === null) return;
      const w = this.window(mountId);
      if (p === '') this.coverMount(w);
      else this.addPath(w, p);
      this.touch(w);
    } catch {
      // add() must never throw into chokidar's emitter; nothing above is expected to.
    }
  }

  /**
   * Schedules a scan of `dir` (`''` = the whole mount) in the mount's next flush, e.g. after a
   * chokidar error on that directory. Pending paths below `dir` are dropped (the scan covers them).
   * Never throws; ignored after {@link close}.
   */
  requestScan(mountId: string, dir: string): void {
    try {
      if (this.closed) return;
      const d = canonical(dir);
      if (d === null) return;
      const w = this.window(mountId);
      this.addScan(w, d);
      this.touch(w);
    } catch {
      // never throws, like add()
    }
  }

  /**
   * Flushes now — one mount, or every mount with anything pending — regardless of debounce and
   * backoff. Waits for a flush already in flight first. Resolves even when `onFlush` fails (the jobs
   * are then kept and retried; see {@link retrying}).
   */
  async flush(mountId?: string): Promise<void> {
    if (mountId !== undefined) return this.flushMount(mountId);
    await Promise.all([...this.windows.keys()].map((id) => this.flushMount(id)));
  }

  /** Distinct changed paths waiting (kept after a failure included), for one mount or all. Pending scans are not paths. */
  pendingPaths(mountId?: string): number {
    if (mountId !== undefined) return this.windows.get(mountId)?.paths.size ?? 0;
    let n = 0;
    for (const w of this.windows.values()) n += w.paths.size;
    return n;
  }

  /** True while the mount's last flush failed and its jobs are kept for a retry. */
  retrying(mountId: string): boolean {
    return (this.windows.get(mountId)?.failures ?? 0) > 0;
  }

  /**
   * Stops timers, ignores further events and flushes everything once.
   * @throws Error when some mount's jobs could not be handed over (they are then lost; the periodic
   * full scan will catch the drift).
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.windows.values()) this.disarm(w);
    await this.flush();
    const left = [...this.windows.values()].filter((w) => w.firstEventAt !== undefined);
    if (left.length > 0) {
      throw new Error(`EventAggregator closed with drift jobs of ${left.length} mount(s) not handed over: ${left.map((w) => w.mountId).join(', ')}`);
    }
  }

  // --- window state ---

  private window(mountId: string): MountWindow {
    let w = this.windows.get(mountId);
    if (!w) {
      w = { mountId, paths: new Set(), scans: new Set(), mountScan: false, firstEventAt: undefined, lastEventAt: 0, timer: undefined, armed: false, inFlight: undefined, failures: 0, retryAt: 0 };
      this.windows.set(mountId, w);
    }
    return w;
  }

  /** Weight of a window against the mount threshold (rule 2). */
  private weight(w: MountWindow): number {
    return w.paths.size + w.scans.size * (this.opts.dirRescanThreshold + 1);
  }

  private coverMount(w: MountWindow): void {
    w.mountScan = true;
    w.paths = new Set();
    w.scans = new Set();
  }

  private addPath(w: MountWindow, p: string): void {
    if (w.mountScan || w.paths.has(p) || coveredByAny(p, w.scans)) return;
    w.paths.add(p);
    if (this.weight(w) > this.opts.mountRescanThreshold) this.coverMount(w);
  }

  private addScan(w: MountWindow, dir: string): void {
    if (dir === '') return this.coverMount(w);
    if (w.mountScan || coveredByAny(dir, w.scans)) return;
    // No pending scan covers `dir`, so any that overlaps it lies below it.
    for (const s of w.scans) if (pathsOverlap(s, dir)) w.scans.delete(s);
    for (const p of w.paths) if (coveredBy(p, dir)) w.paths.delete(p);
    w.scans.add(dir);
    if (this.weight(w) > this.opts.mountRescanThreshold) this.coverMount(w);
  }

  private isEmpty(w: MountWindow): boolean {
    return !w.mountScan && w.paths.size === 0 && w.scans.size === 0;
  }

  /** Notes an event's time and makes sure a timer will flush the window. */
  private touch(w: MountWindow): void {
    const t = this.now();
    if (w.firstEventAt === undefined) w.firstEventAt = t;
    w.lastEventAt = t;
    if (!w.armed && !w.inFlight) this.arm(w);
  }

  // --- timers: one per mount, re-armed lazily so a burst of events costs no timer churn ---

  /** When the window should flush: the retry time after a failure, else debounce capped by max wait. */
  private dueAt(w: MountWindow): number | undefined {
    if (w.firstEventAt === undefined) return undefined;
    if (w.failures > 0) return w.retryAt;
    return Math.min(w.lastEventAt + this.opts.debounceMs, w.firstEventAt + this.opts.maxWaitMs);
  }

  private arm(w: MountWindow): void {
    this.disarm(w);
    if (this.closed) return;
    const due = this.dueAt(w);
    if (due === undefined) return;
    w.armed = true;
    w.timer = this.setTimer(() => this.onTimer(w), Math.max(0, due - this.now()));
  }

  private disarm(w: MountWindow): void {
    if (w.armed) this.clearTimer(w.timer);
    w.armed = false;
    w.timer = undefined;
  }

  private onTimer(w: MountWindow): void {
    w.armed = false;
    w.timer = undefined;
    if (this.closed || w.inFlight) return; // the flush in flight re-arms when it ends
    const due = this.dueAt(w);
    if (due === undefined) return;
    if (this.now() < due) return this.arm(w); // events came in since the timer was set
    void this.flushMount(w.mountId);
  }

  // --- flushing ---

  private async flushMount(mountId: string): Promise<void> {
    const w = this.windows.get(mountId);
    if (!w) return;
    while (w.inFlight) await w.inFlight;
    if (w.firstEventAt === undefined) return;
    this.disarm(w);
    const firstEventAt = w.firstEventAt;
    const jobs = this.isEmpty(w) ? [] : planDriftJobs(mountId, { paths: w.paths, scans: w.scans, mountScan: w.mountScan, firstEventAt }, this.opts);
    w.paths = new Set();
    w.scans = new Set();
    w.mountScan = false;
    w.firstEventAt = undefined;
    if (jobs.length === 0) {
      // Only ignored events (e.g. paths already covered): nothing to hand over.
      if (!this.closed) this.arm(w);
      return;
    }

    let done!: () => void;
    w.inFlight = new Promise<void>((resolve) => (done = resolve));
    try {
      await this.onFlush(mountId, jobs);
      w.failures = 0;
    } catch (err) {
      w.failures += 1;
      this.retain(w, jobs, firstEventAt);
      w.retryAt = this.now() + Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** (w.failures - 1));
      try {
        this.opts.onFlushError?.(mountId, err, w.failures);
      } catch {
        // a reporting hook must not break retention
      }
    } finally {
      w.inFlight = undefined;
      done();
      if (!this.closed) this.arm(w);
    }
  }

  /** Merges jobs that could not be handed over back into the window, under the usual rules. */
  private retain(w: MountWindow, jobs: DriftJobSpec[], firstEventAt: number): void {
    for (const job of jobs) {
      if (job.kind === 'scan') this.addScan(w, job.dir);
      else for (const p of job.paths) this.addPath(w, p);
    }
    w.firstEventAt = Math.min(firstEventAt, w.firstEventAt ?? firstEventAt);
  }
}

/** The canonical form of an event path: null to ignore it (Filestore's staging and scratch names), '' when it is unusable. */
function canonical(path: unknown): string | null {
  try {
    const p = normalizeMountPath(path, { allowRoot: true });
    return isInFilestoreScratch(p) ? null : p;
  } catch (err) {
    if ((err as { code?: string }).code === 'RESERVED_PATH') return null;
    return '';
  }
}
