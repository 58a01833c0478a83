/**
 * The drift processor's work for one job: look at the backend, compare with the catalog, mark
 * what drifted INCONSISTENT and record each detection in drift_events.
 *
 * Filestore's own writes are never drift: a path held by a PENDING journal entry is deferred
 * (re-checked after its commit), and every mismatch is confirmed against a second catalog read
 * taken after the backend was looked at, so a mutation that began after the first read — and
 * committed, rolled back or is still running by the second — is deferred too: what the backend
 * showed may have been that mutation's work in progress (e.g. parent directories a write created
 * and its rollback removed again). Filestore's cross-device scratch names are never looked at.
 *
 * One unreadable entry never fails a job: a scan lists past it and a check looks at each path on
 * its own; the entry is recorded as one `unreadable` detection, nothing below it is compared (its
 * catalogued descendants are unknown, not removed), and a transient failure defers the path.
 */
import { and, eq, gte, inArray, isNull, ne, or, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { driftEvents, journal, nodes } from '../../db/schema';
import { belowPattern } from '../catalog/subtree';
import { FilestoreError } from '../errors';
import { isInFilestoreScratch } from '../executors/scratch-names';
import type { Executor, NodeMeta } from '../executors/executor';
import type { ExecutorRegistry } from '../executors/registry';
import type { Logger } from '../logger';
import { driftDetected, driftDetectionLatency } from '../metrics';
import { STAGING_DIR, isMountMarkerName, pathsOverlap } from '../paths';
import { compareNode, observedOf, sameDetection, unreadableObserved, type CatalogNode, type DriftKind, type DriftObserved } from './drift-compare';
import { coveredByAny } from './drift-plan';
import type { DriftJobSpec } from './event-aggregator';

export interface DriftProcessorDeps {
  db: Db;
  executors: ExecutorRegistry;
  log?: Logger;
}

export interface DriftCheckResult {
  /** Detections recorded by this run. */
  detected: number;
  /** Paths held by a mutation in flight: check them again later. */
  deferred: string[];
}

interface CatalogView {
  rows: Map<string, CatalogNode>;
  pending: string[];
  /** The database's clock when the view was taken. */
  takenAt: Date;
  /** Journal entries begun lately (see {@link BEGIN_SLACK_MS}) that are no longer PENDING: id → path and target. */
  ended: Map<string, string[]>;
}

const CHUNK = 1000;
/**
 * How far before the first catalog read a mutation may have begun and still count as "began in
 * between": a begin transaction that started just before that read commits just after it, so the
 * read neither saw it PENDING nor its effects. Seconds are generous; entries the first read
 * already saw ended are told apart by id, so the slack costs no needless deferral.
 */
const BEGIN_SLACK_MS = 5000;

function scopeFilter(mountId: string, scopes: string[]): SQL {
  if (scopes.includes('')) return eq(nodes.mountId, mountId);
  return and(
    eq(nodes.mountId, mountId),
    // ARRAY[...] by hand: drizzle expands a JS array into a parenthesised list, not one array parameter.
    or(inArray(nodes.path, scopes), sql`${nodes.path} LIKE ANY(ARRAY[${sql.join(scopes.map((p) => sql`${belowPattern(p)}`), sql`, `)}])`),
  )!;
}

/**
 * Catalog rows at and below `scopes`, the paths PENDING mutations hold, and the mutations begun
 * since `since` (default: this view's own clock) that already ended — one consistent snapshot.
 */
async function catalogView(db: Db, mountId: string, scopes: string[], since?: Date): Promise<CatalogView> {
  return db.transaction(
    async (tx) => {
      const [{ now }] = (await tx.execute(sql`SELECT now() AS now`)).rows as Array<{ now: string | Date }>;
      const pendingRows = await tx
        .select({ path: journal.path, targetPath: journal.targetPath })
        .from(journal)
        .where(and(eq(journal.status, 'PENDING'), or(eq(journal.mountId, mountId), eq(journal.targetMountId, mountId))));
      const rows = new Map<string, CatalogNode>();
      for (let i = 0; i < scopes.length; i += CHUNK) {
        const found = await tx
          .select({
            path: nodes.path,
            kind: nodes.kind,
            size: nodes.size,
            sha256: nodes.sha256,
            mode: nodes.mode,
            mtime: nodes.mtime,
            state: nodes.state,
            version: nodes.version,
            updatedAt: nodes.updatedAt,
            lastJournalId: nodes.lastJournalId,
          })
          .from(nodes)
          .where(scopeFilter(mountId, scopes.slice(i, i + CHUNK)));
        for (const r of found) rows.set(r.path, r);
      }
      const pending = pendingRows.flatMap((p) => [p.path, ...(p.targetPath !== null ? [p.targetPath] : [])]);
      const takenAt = new Date(now);
      // Served by journal_created_at_idx: only entries of the last few seconds are read.
      const endedRows = await tx
        .select({ id: journal.id, path: journal.path, targetPath: journal.targetPath })
        .from(journal)
        .where(
          and(
            gte(journal.createdAt, new Date((since ?? takenAt).getTime() - BEGIN_SLACK_MS)),
            ne(journal.status, 'PENDING'),
            or(eq(journal.mountId, mountId), eq(journal.targetMountId, mountId)),
          ),
        );
      const ended = new Map(endedRows.map((e) => [e.id, [e.path, ...(e.targetPath !== null ? [e.targetPath] : [])]]));
      return { rows, pending, takenAt, ended };
    },
    { isolationLevel: 'repeatable read', accessMode: 'read only' },
  );
}

/** What the backend shows for a job's scope. */
interface Observation {
  /** path → metadata, or null for a path that is gone. */
  live: Map<string, NodeMeta | null>;
  /** Paths that are there but cannot be read (nothing below them was seen), with why. */
  unreadable: Map<string, string>;
  /** Paths whose look failed transiently: check them again later. */
  retry: Set<string>;
}

/** Filestore's own entries in the user's namespace: cross-device scratch anywhere, the staging folder and identity marker at the root. */
function isFilestoreOwn(path: string): boolean {
  const top = path.split('/', 1)[0];
  return top === STAGING_DIR || isMountMarkerName(top) || isInFilestoreScratch(path);
}

const codeOf = (err: unknown): string | undefined => (err as { code?: unknown })?.code as string | undefined;

/**
 * Why a path could not be read, as recorded in the detection: the typed error's code
 * (ACCESS_DENIED, INVALID_PATH, …). The code, not the errno: a scan and a check of the same path
 * reach it through different calls, and must describe it alike so the repeat is recognised.
 */
function reasonOf(err: FilestoreError): string {
  return err.code;
}

/**
 * Sorts one path's failed look: a link out of the mount is not part of it (absent, as listings
 * treat it); a transient typed error is retried later; any other typed error makes the path
 * unreadable. An untyped error is a bug, not a property of the path, and fails the job.
 */
function classifyFailure(obs: Observation, path: string, err: unknown): void {
  const code = codeOf(err);
  if (code === 'SYMLINK_ESCAPE') {
    obs.live.set(path, null);
  } else if ((err as { retryable?: unknown }).retryable === true) {
    obs.retry.add(path);
  } else if (err instanceof FilestoreError) {
    obs.unreadable.set(path, reasonOf(err));
  } else {
    throw err;
  }
}

async function observe(executor: Executor, spec: DriftJobSpec): Promise<Observation> {
  const obs: Observation = { live: new Map(), unreadable: new Map(), retry: new Set() };
  if (spec.kind === 'check') {
    for (const p of spec.paths) {
      try {
        obs.live.set(p, await executor.stat(p));
      } catch (err) {
        classifyFailure(obs, p, err);
      }
    }
    return obs;
  }
  let root: NodeMeta | null = null;
  if (spec.dir !== '') {
    try {
      root = await executor.stat(spec.dir);
    } catch (err) {
      classifyFailure(obs, spec.dir, err);
      return obs;
    }
    obs.live.set(spec.dir, root);
  }
  if (spec.dir === '' || root?.kind === 'directory') {
    try {
      const entries = await executor.list(spec.dir, { recursive: true, onUnreadable: (p, err) => classifyFailure(obs, p, err) });
      for (const m of entries) obs.live.set(m.path, m);
    } catch (err) {
      // The mount root itself unreadable is an unusable mount, not one entry: the job fails and is retried.
      if (spec.dir === '') throw err;
      classifyFailure(obs, spec.dir, err);
    }
  }
  return obs;
}

interface Mismatch {
  path: string;
  kind: DriftKind;
  observed: DriftObserved;
  row: CatalogNode | null;
}

export async function runDriftJob(deps: DriftProcessorDeps, spec: DriftJobSpec, jobId: string | undefined): Promise<DriftCheckResult> {
  const { db } = deps;
  let executor: Executor;
  try {
    executor = await deps.executors.get(spec.mountId);
  } catch (err) {
    if ((err as { code?: string }).code === 'UNKNOWN_MOUNT') return { detected: 0, deferred: [] };
    throw err;
  }
  const scopes = spec.kind === 'check' ? spec.paths : [spec.dir];
  const before = await catalogView(db, spec.mountId, scopes);
  const { live, unreadable, retry } = await observe(executor, spec);
  // Paths whose subtree was not seen: what the catalog holds below them is unknown, not removed.
  const blind = new Set<string>([...unreadable.keys(), ...retry]);

  // Every path either side knows about in the scope. A scan lists whole subtrees, so a catalogued
  // path it did not see is gone; a check looks below a path only when that path is no longer a
  // directory (children of a live directory report their own events).
  const candidates = new Set<string>([...live.keys(), ...blind]);
  for (const p of before.rows.keys()) {
    if (live.has(p) || blind.has(p) || coveredByAny(p, blind)) continue;
    if (spec.kind === 'scan' || spec.paths.some((q) => p.startsWith(`${q}/`) && !blind.has(q) && live.get(q)?.kind !== 'directory')) {
      candidates.add(p);
      live.set(p, null);
    }
  }

  const deferred: string[] = [];
  const mismatches: Mismatch[] = [];
  for (const path of [...candidates].sort()) {
    // Filestore's own files (move scratch in flight or left by a crash, the identity marker) are never drift.
    if (isFilestoreOwn(path)) continue;
    if (retry.has(path) || before.pending.some((held) => pathsOverlap(path, held))) {
      deferred.push(path);
      continue;
    }
    const row = before.rows.get(path) ?? null;
    const meta = live.get(path) ?? null;
    const reason = unreadable.get(path);
    if (reason !== undefined) {
      mismatches.push({ path, kind: 'unreadable', observed: unreadableObserved(meta, reason), row });
      continue;
    }
    let verdict = compareNode(row, meta);
    let hash: string | undefined;
    if ('needsHash' in verdict && meta) {
      hash = await executor.checksum(path).catch(() => undefined);
      if (hash !== undefined) verdict = compareNode(row, meta, hash);
    }
    if (verdict.drift) mismatches.push({ path, kind: verdict.drift, observed: observedOf(meta, hash), row });
  }
  if (mismatches.length === 0) return { detected: 0, deferred };

  // Confirm: a mutation that began after the first snapshot explains the difference — whether it
  // is still running, committed or already rolled back (its undo may have removed what we saw, or
  // not yet). A commit always sets last_journal_id; drift marking (another job, maybe right now)
  // never does, and the recording step below already skips a detection that job made.
  const after = await catalogView(db, spec.mountId, mismatches.map((m) => m.path), before.takenAt);
  const confirmed = mismatches.filter((m) => {
    const committed = (after.rows.get(m.path)?.lastJournalId ?? null) !== (m.row?.lastJournalId ?? null);
    // Entries the first read already saw ended had finished with the disk before it was looked at.
    const endedBetween = [...after.ended].filter(([id]) => !before.ended.has(id)).flatMap(([, paths]) => paths);
    const held = [...after.pending, ...endedBetween];
    if (committed || held.some((h) => pathsOverlap(m.path, h))) {
      deferred.push(m.path);
      return false;
    }
    return true;
  });
  const detected = await record(db, spec, confirmed, jobId);
  return { detected, deferred };
}

/** Marks the nodes INCONSISTENT and appends drift events, in one transaction; skips repeats of an open detection. */
async function record(db: Db, spec: DriftJobSpec, found: Mismatch[], jobId: string | undefined): Promise<number> {
  if (found.length === 0) return 0;
  const recorded = await db.transaction(async (tx) => {
    // Jobs run concurrently and may overlap (a scan and a check of the same path): recording per
    // mount is serialised so the "already recorded?" test below cannot race.
    await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${`filestore:drift:${spec.mountId}`}))`);
    const out: Mismatch[] = [];
    for (let i = 0; i < found.length; i += CHUNK) {
      const chunk = found.slice(i, i + CHUNK);
      const open = await tx
        .select({ path: driftEvents.path, kind: driftEvents.kind, observed: sql<DriftObserved>`${driftEvents.observed}` })
        .from(driftEvents)
        .where(and(eq(driftEvents.mountId, spec.mountId), isNull(driftEvents.resolvedAt), inArray(driftEvents.path, chunk.map((m) => m.path))))
        .orderBy(driftEvents.detectedAt);
      const last = new Map(open.map((e) => [e.path, e]));
      const states = new Map(
        (
          await tx
            .select({ path: nodes.path, state: nodes.state })
            .from(nodes)
            .where(and(eq(nodes.mountId, spec.mountId), inArray(nodes.path, chunk.map((m) => m.path))))
        ).map((r) => [r.path, r.state]),
      );
      // A repeat of the open detection adds nothing — once its node is marked, or when there is no
      // node to mark (an unreadable entry whose kind could not even be seen).
      const settled = (m: Mismatch) => states.get(m.path) === 'INCONSISTENT' || (!states.has(m.path) && !m.observed.kind);
      const fresh = chunk.filter((m) => !(settled(m) && sameDetection(last.get(m.path), m.kind, m.observed)));
      if (fresh.length === 0) continue;

      const known = fresh.filter((m) => m.row).map((m) => m.path);
      if (known.length > 0) {
        await tx
          .update(nodes)
          .set({ state: 'INCONSISTENT', updatedAt: new Date() })
          .where(and(eq(nodes.mountId, spec.mountId), inArray(nodes.path, known), ne(nodes.state, 'INCONSISTENT')));
      }
      const unknown = fresh.filter((m) => !m.row && m.observed.kind);
      if (unknown.length > 0) {
        await tx
          .insert(nodes)
          .values(
            unknown.map((m) => ({
              mountId: spec.mountId,
              path: m.path,
              kind: m.observed.kind!,
              size: m.observed.size ?? 0,
              sha256: m.observed.sha256 ?? null,
              mode: m.observed.mode,
              mtime: m.observed.mtime,
              state: 'INCONSISTENT' as const,
            })),
          )
          .onConflictDoUpdate({ target: [nodes.mountId, nodes.path], set: { state: 'INCONSISTENT', updatedAt: new Date() } });
      }
      await tx.insert(driftEvents).values(
        fresh.map((m) => ({
          mountId: spec.mountId,
          path: m.path,
          kind: m.kind,
          observed: m.observed,
          catalog: m.row ? { ...m.row, updatedAt: m.row.updatedAt.toISOString() } : null,
          jobId: jobId ?? null,
        })),
      );
      out.push(...fresh);
    }
    return out;
  });
  const seconds = Math.max(0, (Date.now() - spec.firstEventAt) / 1000);
  for (const m of recorded) {
    driftDetected.inc({ mount: spec.mountId, kind: m.kind });
    driftDetectionLatency.observe({ mount: spec.mountId }, seconds);
  }
  return recorded.length;
}
