/**
 * The @parcel/watcher backend (the native watcher of VS Code and Parcel) for large mounts: on
 * Linux one inotify watch per *directory* and an in-memory tree of (path, mtime) per entry — about
 * 300 bytes per file against chokidar's ~6 KiB and inotify watch per file. Its snapshots
 * (`writeSnapshot` / `getEventsSince`) report what changed while no watcher ran, which replaces
 * the startup scan of the mount (parcel-snapshot.ts keeps them; see {@link WatchSnapshotOptions}).
 *
 * Same contract as chokidar-watcher.ts: the staging folder is left out with parcel's `ignore`
 * (never crawled, never watched), the cross-device scratch names are filtered here, symlinks are
 * never followed (parcel crawls with FTS_PHYSICAL and lstat, and watches with IN_DONT_FOLLOW),
 * and an error is counted, logged and answered with a rescan of the mount.
 *
 * ## What parcel's inotify backend misses, and how it is made up for
 * parcel 2.6 adds a watch for a new directory when its IN_CREATE arrives, without looking inside
 * (parcel-bundler/watcher#97, #243), and keeps the old paths of the watches below a renamed
 * directory. So, left alone, it would miss:
 *  1. files created in a new directory before its watch was added (`mkdir d && echo > d/f`);
 *  2. everything below a directory that was created with its subdirectories (`mkdir -p a/b/c`,
 *     a tree moved in from outside the mount) — those subdirectories are never watched;
 *  3. the right paths below a directory renamed inside the mount (events come with the old ones).
 * As chokidar does for `addDir`, every new directory is read once its events have settled: what
 * it holds that no event reported is reported now (1). A subdirectory found that way was not
 * watched (2), or is the inside of a renamed tree (3): the new directory then gets a subscription
 * of its own — a crawl of that subtree only, every directory in it watched at its current path
 * (inotify shares a watch between subscriptions) — and, once it is live, every path in it is
 * reported (the drift processor looks at each as it is now, so nothing changed during that crawl
 * is lost). Events seen under the old paths of a renamed tree are checked too: harmless. Such a
 * subscription ends when its directory goes. Past {@link MAX_SUBTREE_WATCHES} of them (or when
 * the watcher lost track of what was created), it *repairs* instead: writes a snapshot of the
 * live tree, subscribes to the whole mount afresh, reports the difference between the two trees,
 * and drops the subtree subscriptions. A repair costs a crawl of the mount, so repairs are spaced
 * (at least {@link REPAIR_MIN_GAP_MS}, and 20× the last crawl's duration); what a file gets while
 * its directory is crawled and not yet watched is then left to the periodic scan.
 *
 * parcel's crawl stops at the first entry it cannot read (a directory without permission, a path
 * over PATH_MAX) and does not say which: the watcher then finds such entries itself, leaves them
 * out of the watch and subscribes again, and reports the error as chokidar does (counted, and a
 * rescan, which records them as `unreadable`). A subscription that still fails is an error too
 * (rescan), retried with backoff while scans cover the mount.
 */
import type { Dirent } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { getSystemErrorMap } from 'node:util';
import type { AsyncSubscription, Event as ParcelEvent, Options as ParcelOptions } from '@parcel/watcher';
import { SnapshotStore } from './parcel-snapshot';
import { mountPathOf, reportError, reportEvent, stagingPathOf, type MountWatcher, type MountWatcherOptions } from './watch-backend-common';

type Parcel = typeof import('@parcel/watcher');

/** parcel's native debounce hands a batch over at most 500 ms after the change (Debounce.hh MAX_WAIT_TIME); this leaves a margin. */
const SETTLE_MS = 700;
/** How long a created path is remembered, to tell what a new directory's events already reported. */
const RECENT_MS = 30_000;
/** Bound on remembered created paths; past it they are dropped and the next new directory triggers a repair. */
const MAX_RECENT = 200_000;
/** Subtree subscriptions (see the module comment) before the watcher repairs instead. */
export const MAX_SUBTREE_WATCHES = 256;
/** Least time between two repairs (ms). */
export const REPAIR_MIN_GAP_MS = 10_000;
/** And at least this many times the last crawl's duration: repairs cost at most ~5% of a core. */
const REPAIR_CRAWL_FACTOR = 20;
/** More entries than this that cannot be crawled: give up watching (scans only) rather than ignore-list them all. */
const MAX_UNWATCHABLE = 1000;
const RETRY_FIRST_MS = 30_000;
const RETRY_MAX_MS = 600_000;
/** lstat calls in flight per batch of created paths. */
const LSTAT_CHUNK = 256;
/** PATH_MAX on Linux, terminating NUL included: a longer path cannot be stat'ed. */
const PATH_MAX = 4096;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The errno name of a parcel error: its messages carry strerror's text only ("inotify_add_watch
 * on '…' failed: No space left on device"), so it is matched against libuv's table of messages.
 */
export function parcelErrorCode(err: unknown): string {
  const own = (err as NodeJS.ErrnoException | null)?.code;
  if (typeof own === 'string') return own;
  const msg = String((err as Error | null)?.message ?? err).toLowerCase();
  let best = 'UNKNOWN';
  let bestLength = 0;
  for (const [name, text] of getSystemErrorMap().values()) {
    if (text.length > bestLength && msg.includes(text.toLowerCase())) {
      best = name;
      bestLength = text.length;
    }
  }
  return best;
}

/**
 * Entries parcel's crawl cannot get through, as paths to leave out: directories that cannot be
 * listed, and the directory holding an entry whose path is too long to stat (parcel's crawl fails
 * on such an entry before looking at its ignore list, so its parent must be left out).
 */
async function findUnwatchable(root: string, ignore: readonly string[], limit: number): Promise<string[]> {
  const bad = new Set<string>();
  const ignored = (p: string) => ignore.some((i) => p === i || p.startsWith(i + path.sep));
  const stack = [root];
  while (stack.length > 0 && bad.size < limit) {
    const dir = stack.pop()!;
    if (ignored(dir)) continue;
    let entries: Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && dir !== root) bad.add(dir);
      continue;
    }
    for (const entry of entries) {
      const p = path.join(dir, entry.name);
      if (Buffer.byteLength(p) >= PATH_MAX) {
        if (dir !== root) bad.add(dir);
        break;
      }
      if (entry.isDirectory()) stack.push(p);
    }
  }
  return [...bad];
}

class ParcelMountWatcher {
  private sub: AsyncSubscription | null = null;
  /** Subscriptions of subtrees whose directories the main subscription does not watch, by absolute path. */
  private readonly subtrees = new Map<string, AsyncSubscription>();
  /** A snapshot of nothing: the difference against it is every path of a tree. */
  private readonly emptySnapshot: string;
  /** Absolute paths parcel leaves out: the staging folder, our scratch folder if inside the mount, unreadable entries. */
  private readonly ignore: string[];
  /** close() began: no new repairs, commits or retries. */
  private stopping = false;
  /** Events are no longer passed on. */
  private closed = false;
  /** Created paths (mount-relative) with when they were reported; insertion-ordered, oldest first. */
  private readonly recentCreates = new Map<string, number>();
  private recentOverflow = false;
  /** New directories waiting to be read once their events settled. */
  private readonly newDirs = new Map<string, number>();
  private followTimer: NodeJS.Timeout | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  /** Repairs, snapshot commits and re-subscriptions, one at a time. */
  private serial: Promise<void> = Promise.resolve();
  private repairWanted = false;
  private repairTimer: NodeJS.Timeout | null = null;
  private lastRepairAt = 0;
  private crawlMs = 0;
  private snapshotTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryMs = RETRY_FIRST_MS;
  caughtUp = false;

  constructor(
    private readonly parcel: Parcel,
    private readonly opts: MountWatcherOptions,
    private readonly store: SnapshotStore | null,
    /** Our own folder for repair snapshots. */
    private readonly scratchDir: string,
  ) {
    this.ignore = [stagingPathOf(opts.rootReal)];
    this.emptySnapshot = path.join(scratchDir, 'empty.snapshot');
    const rel = path.relative(opts.rootReal, scratchDir);
    if (rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel)) this.ignore.push(scratchDir);
  }

  private get root(): string {
    return this.opts.rootReal;
  }

  /** Options for every parcel call: the same ones, so calls share the live subscription's tree instead of crawling again. */
  private parcelOptions(): ParcelOptions {
    return { ignore: [...this.ignore] };
  }

  async start(): Promise<void> {
    await fs.writeFile(this.emptySnapshot, '0\n', { mode: 0o600 });
    try {
      await this.subscribe();
    } catch (err) {
      this.subscribeFailed(err);
      return;
    }
    if (!this.store || !this.opts.snapshot) return;
    const previous = await this.store.committed();
    if ('path' in previous) {
      try {
        const events = await this.parcel.getEventsSince(this.root, previous.path, this.parcelOptions());
        this.handle(events, false);
        this.caughtUp = true;
        this.opts.log?.info({ mount: this.opts.mountId, events: events.length }, 'replayed what changed since the last watch snapshot');
      } catch (err) {
        this.opts.log?.warn({ mount: this.opts.mountId, err: (err as Error).message }, 'the watch snapshot could not be replayed; scanning the mount instead');
      }
    } else {
      this.opts.log?.info({ mount: this.opts.mountId, reason: previous.unusable }, 'no usable watch snapshot; scanning the mount instead');
    }
    this.snapshotTimer = setInterval(() => void this.enqueue(() => this.commitSnapshot()), this.opts.snapshot.everyMs);
    this.snapshotTimer.unref();
  }

  async close(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const t of [this.snapshotTimer, this.repairTimer, this.retryTimer]) if (t) clearTimeout(t);
    if (this.followTimer) {
      clearTimeout(this.followTimer);
      this.followTimer = null;
      this.track(this.followUp(true));
    }
    await this.serial;
    await this.commitSnapshot();
    this.closed = true;
    await this.sub?.unsubscribe().catch(() => undefined);
    this.sub = null;
    await this.dropSubtrees();
    await fs.rm(this.scratchDir, { recursive: true, force: true }).catch(() => undefined);
  }

  // --- subscription ---

  private readonly onBatch = (err: Error | null, events: ParcelEvent[]): void => {
    if (this.closed) return;
    if (err) reportError(this.opts, parcelErrorCode(err), err.message);
    if (events?.length) this.handle(events, true);
  };

  private async subscribe(): Promise<void> {
    const started = Date.now();
    try {
      this.sub = await this.parcel.subscribe(this.root, this.onBatch, this.parcelOptions());
    } catch (err) {
      const bad = await findUnwatchable(this.root, this.ignore, MAX_UNWATCHABLE + 1);
      if (bad.length === 0 || bad.length > MAX_UNWATCHABLE) throw err;
      this.ignore.push(...bad);
      this.sub = await this.parcel.subscribe(this.root, this.onBatch, this.parcelOptions());
      // As chokidar reports the entries it cannot read: an error, and a rescan that reports them as unreadable.
      reportError(this.opts, parcelErrorCode(err), `${(err as Error).message}: left ${bad.length} entries out of the watch, first ${path.relative(this.root, bad[0])}`);
    }
    this.crawlMs = Date.now() - started;
  }

  /** No live watch: count and rescan, then try again later while scans cover the mount. */
  private subscribeFailed(err: unknown): void {
    this.sub = null;
    reportError(this.opts, parcelErrorCode(err), `could not watch the mount (${(err as Error).message}); retrying in ${Math.round(this.retryMs / 1000)} s`);
    if (this.stopping) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.enqueue(async () => {
        if (this.stopping || this.sub) return;
        try {
          await this.subscribe();
          this.retryMs = RETRY_FIRST_MS;
          this.opts.log?.info({ mount: this.opts.mountId }, 'watching the mount again; rescanning it');
          // Nothing was watched meanwhile.
          this.opts.onScan?.('');
        } catch (e) {
          this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
          this.subscribeFailed(e);
        }
      });
    }, this.retryMs);
    this.retryTimer.unref();
  }

  // --- events ---

  /** Passes a batch on. `live`: from the subscription (new directories get read); else from a snapshot difference (already crawled). */
  private handle(events: ParcelEvent[], live: boolean): void {
    const now = Date.now();
    const created: Array<[string, string]> = [];
    for (const e of events) {
      const rel = mountPathOf(this.root, e.path);
      if (rel === null) continue;
      if (e.type === 'update') reportEvent(this.opts, rel, 'change');
      else if (e.type === 'delete') {
        reportEvent(this.opts, rel, 'unlink');
        // A subtree subscription's own directory went (removed, or renamed: see the module comment).
        const subtree = this.subtrees.get(e.path);
        if (subtree) {
          this.subtrees.delete(e.path);
          void this.enqueue(() => subtree.unsubscribe());
        }
      } else {
        // Only live creations matter to the reading of new directories (a difference was crawled).
        if (live) this.noteCreated(rel, now);
        created.push([e.path, rel]);
      }
    }
    if (created.length > 0) this.track(this.reportCreated(created, live));
  }

  private noteCreated(rel: string, now: number): void {
    if (this.recentCreates.size >= MAX_RECENT) {
      this.recentCreates.clear();
      this.recentOverflow = true;
    }
    this.recentCreates.delete(rel);
    this.recentCreates.set(rel, now);
  }

  /** Reports created paths as `add` or `addDir` (lstat: a link is never a directory here), queueing live new directories to be read. */
  private async reportCreated(created: Array<[string, string]>, live: boolean): Promise<void> {
    for (let i = 0; i < created.length; i += LSTAT_CHUNK) {
      const chunk = created.slice(i, i + LSTAT_CHUNK);
      const stats = await Promise.all(chunk.map(([abs]) => fs.lstat(abs).catch(() => null)));
      chunk.forEach(([, rel], j) => {
        const isDir = stats[j]?.isDirectory() ?? false;
        if (this.closed) return;
        reportEvent(this.opts, rel, isDir ? 'addDir' : 'add');
        if (isDir && live && !this.stopping) this.newDirs.set(rel, Date.now());
      });
    }
    if (this.newDirs.size > 0) this.armFollowUp();
  }

  private armFollowUp(): void {
    if (this.followTimer || this.stopping) return;
    this.followTimer = setTimeout(() => {
      this.followTimer = null;
      this.track(this.followUp(false));
    }, SETTLE_MS);
  }

  /** Reads the new directories whose events settled (all of them when `all`); see the module comment. */
  private async followUp(all: boolean): Promise<void> {
    const now = Date.now();
    const due: string[] = [];
    for (const [rel, seenAt] of this.newDirs) {
      if (!all && now - seenAt < SETTLE_MS) continue;
      due.push(rel);
      this.newDirs.delete(rel);
    }
    if (this.newDirs.size > 0) this.armFollowUp();
    const lostTrack = this.recentOverflow;
    this.recentOverflow = false;
    const unwatched = new Set<string>();
    for (const rel of due) {
      let entries: Dirent[];
      try {
        entries = await fs.readdir(path.join(this.root, rel), { withFileTypes: true });
      } catch {
        continue; // gone again, or unreadable: the check of `rel` itself reports that
      }
      for (const entry of entries) {
        const child = mountPathOf(this.root, path.join(this.root, rel, entry.name));
        if (child === null || this.recentCreates.has(child) || this.closed) continue;
        const isDir = entry.isDirectory();
        reportEvent(this.opts, child, isDir ? 'addDir' : 'add');
        if (isDir) unwatched.add(rel);
      }
    }
    for (const [rel, at] of this.recentCreates) {
      if (now - at <= RECENT_MS) break;
      this.recentCreates.delete(rel);
    }
    if (lostTrack) this.requestRepair();
    else for (const rel of unwatched) void this.enqueue(() => this.watchSubtree(rel));
  }

  // --- subtree subscriptions ---

  /** Watches a new directory's whole subtree with a subscription of its own and reports every path in it. */
  private async watchSubtree(rel: string): Promise<void> {
    if (this.stopping || !this.sub) return;
    const abs = path.join(this.root, rel);
    if (this.subtrees.has(abs)) return;
    if (this.subtrees.size >= MAX_SUBTREE_WATCHES) return this.requestRepair();
    let sub: AsyncSubscription;
    try {
      sub = await this.parcel.subscribe(abs, this.onBatch, this.parcelOptions());
    } catch (err) {
      // Gone again (its removal was reported), or not crawlable: the whole mount then.
      if (!(await fs.lstat(abs).then((st) => st.isDirectory()).catch(() => false))) return;
      this.opts.log?.warn({ mount: this.opts.mountId, err: (err as Error).message }, 'could not watch a new subtree; repairing the watch');
      return this.requestRepair();
    }
    this.subtrees.set(abs, sub);
    const events = await this.parcel.getEventsSince(abs, this.emptySnapshot, this.parcelOptions());
    this.handle(events, false);
    this.opts.log?.debug({ mount: this.opts.mountId, entries: events.length, subtrees: this.subtrees.size }, 'watching a subtree that arrived with its subdirectories');
  }

  private async dropSubtrees(): Promise<void> {
    const subs = [...this.subtrees.values()];
    this.subtrees.clear();
    await Promise.all(subs.map((s) => s.unsubscribe().catch(() => undefined)));
  }

  // --- repairs ---

  private requestRepair(): void {
    if (this.stopping) return;
    this.repairWanted = true;
    if (this.repairTimer) return;
    const gap = Math.max(REPAIR_MIN_GAP_MS, REPAIR_CRAWL_FACTOR * this.crawlMs);
    this.repairTimer = setTimeout(
      () => {
        this.repairTimer = null;
        void this.enqueue(() => this.repair());
      },
      Math.max(0, this.lastRepairAt + gap - Date.now()),
    );
    this.repairTimer.unref();
  }

  /** Subscribes afresh and reports what the old subscription missed (see the module comment). */
  private async repair(): Promise<void> {
    if (this.stopping || !this.sub || !this.repairWanted) return;
    this.repairWanted = false;
    this.lastRepairAt = Date.now();
    const gap = path.join(this.scratchDir, `repair-${Date.now()}`);
    try {
      await this.parcel.writeSnapshot(this.root, gap, this.parcelOptions());
      await this.sub.unsubscribe();
      this.sub = null;
      // The fresh crawl watches every directory: the subtree subscriptions are no longer needed.
      await this.dropSubtrees();
      try {
        await this.subscribe();
      } catch (err) {
        this.subscribeFailed(err);
        return;
      }
      const events = await this.parcel.getEventsSince(this.root, gap, this.parcelOptions());
      this.handle(events, false);
      this.opts.log?.info({ mount: this.opts.mountId, events: events.length, crawlMs: this.crawlMs }, 'watch of the whole mount renewed');
    } catch (err) {
      reportError(this.opts, parcelErrorCode(err), `repairing the watch failed: ${(err as Error).message}`);
    } finally {
      await fs.rm(gap, { force: true }).catch(() => undefined);
    }
  }

  // --- snapshots ---

  /**
   * Commits a snapshot of the live tree once every event it reflects has reached the drift
   * queue: parcel's batches and this watcher's own lstat and directory reads are waited for,
   * then `handedOver()` must succeed. Otherwise the previous snapshot stays, and its (larger)
   * difference is replayed at the next start.
   */
  private async commitSnapshot(): Promise<void> {
    const { store } = this;
    const snapshot = this.opts.snapshot;
    if (!store || !snapshot || !this.sub) return;
    const tmp = store.tempPath();
    try {
      await this.parcel.writeSnapshot(this.root, tmp, this.parcelOptions());
      await sleep(SETTLE_MS);
      await this.idle();
      if (!(await snapshot.handedOver())) {
        this.opts.log?.warn({ mount: this.opts.mountId }, 'changes not handed to the drift queue yet; keeping the previous watch snapshot');
        await store.discard(tmp);
        return;
      }
      await store.commit(tmp);
    } catch (err) {
      this.opts.log?.warn({ mount: this.opts.mountId, err: (err as Error).message }, 'could not write the watch snapshot; keeping the previous one');
      await store.discard(tmp);
    }
  }

  // --- bookkeeping ---

  private track(p: Promise<void>): void {
    const tracked = p
      .catch((err: unknown) => this.opts.log?.warn({ mount: this.opts.mountId, err: (err as Error).message }, 'watcher event handling failed'))
      .finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  private async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  private enqueue(fn: () => Promise<void>): Promise<void> {
    this.serial = this.serial.then(fn).catch((err: unknown) => this.opts.log?.warn({ mount: this.opts.mountId, err: (err as Error).message }, 'watcher maintenance failed'));
    return this.serial;
  }
}

/**
 * Starts watching with @parcel/watcher; resolves once the crawl is done and, with snapshots, the
 * changes since the last snapshot were reported (then `caughtUp` is true).
 */
export async function watchMountWithParcel(opts: MountWatcherOptions): Promise<MountWatcher> {
  // Loaded on first use: hosts that only run chokidar never load the native module.
  const parcel = (await import('@parcel/watcher')) as unknown as Parcel;
  let store: SnapshotStore | null = null;
  if (opts.snapshot) {
    try {
      store = await SnapshotStore.open(opts.snapshot.dir, { mountId: opts.mountId, instanceId: opts.snapshot.instanceId, rootReal: opts.rootReal });
    } catch (err) {
      opts.log?.error({ mount: opts.mountId, err: (err as Error).message }, 'watch snapshots off for this mount; every start scans it');
    }
  }
  await store?.sweep();
  const scratchDir = await fs.mkdtemp(store ? `${store.snapshotPath}.repair-` : path.join(os.tmpdir(), `filestore-${opts.mountId}.repair-`));
  const watcher = new ParcelMountWatcher(parcel, opts, store, scratchDir);
  await watcher.start();
  return {
    mountId: opts.mountId,
    backend: 'parcel',
    get caughtUp() {
      return watcher.caughtUp;
    },
    close: () => watcher.close(),
  };
}
