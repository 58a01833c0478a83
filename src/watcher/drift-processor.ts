/**
 * The drift processor's work for one job: look at the backend, compare with the catalog, mark
 * what drifted INCONSISTENT and record each detection in drift_events.
 *
 * Filestore's own writes are never drift: a path held by a PENDING journal entry is deferred
 * (re-checked after its commit), and every mismatch is confirmed against a second catalog read
 * taken after the backend was looked at, so a mutation that committed in between is deferred too.
 */
import { and, eq, inArray, isNull, ne, or, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { driftEvents, journal, nodes, type ObservedMeta } from '../../db/schema';
import { belowPattern } from '../catalog/subtree';
import type { Executor, NodeMeta } from '../executors/executor';
import type { ExecutorRegistry } from '../executors/registry';
import type { Logger } from '../logger';
import { driftDetected, driftDetectionLatency } from '../metrics';
import { pathsOverlap } from '../paths';
import { compareNode, observedOf, sameDetection, type CatalogNode, type DriftKind } from './drift-compare';
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
}

const CHUNK = 1000;

function scopeFilter(mountId: string, scopes: string[]): SQL {
  if (scopes.includes('')) return eq(nodes.mountId, mountId);
  return and(
    eq(nodes.mountId, mountId),
    // ARRAY[...] by hand: drizzle expands a JS array into a parenthesised list, not one array parameter.
    or(inArray(nodes.path, scopes), sql`${nodes.path} LIKE ANY(ARRAY[${sql.join(scopes.map((p) => sql`${belowPattern(p)}`), sql`, `)}])`),
  )!;
}

/** Catalog rows at and below `scopes`, and the paths PENDING mutations hold — one consistent snapshot. */
async function catalogView(db: Db, mountId: string, scopes: string[]): Promise<CatalogView> {
  return db.transaction(
    async (tx) => {
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
      return { rows, pending };
    },
    { isolationLevel: 'repeatable read', accessMode: 'read only' },
  );
}

/** What the backend shows for the job's scope: path → metadata, or null for a path that is gone. */
async function observe(executor: Executor, spec: DriftJobSpec): Promise<Map<string, NodeMeta | null>> {
  const live = new Map<string, NodeMeta | null>();
  if (spec.kind === 'check') {
    for (const p of spec.paths) live.set(p, await executor.stat(p));
    return live;
  }
  const root = spec.dir === '' ? null : await executor.stat(spec.dir);
  if (spec.dir !== '') live.set(spec.dir, root);
  if (spec.dir === '' || root?.kind === 'directory') {
    for (const m of await executor.list(spec.dir, { recursive: true })) live.set(m.path, m);
  }
  return live;
}

interface Mismatch {
  path: string;
  kind: DriftKind;
  observed: ObservedMeta;
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
  const live = await observe(executor, spec);

  // Every path either side knows about in the scope. A scan lists whole subtrees, so a catalogued
  // path it did not see is gone; a check looks below a path only when that path is no longer a
  // directory (children of a live directory report their own events).
  const candidates = new Set<string>([...live.keys()]);
  for (const p of before.rows.keys()) {
    if (live.has(p)) continue;
    if (spec.kind === 'scan' || spec.paths.some((q) => p.startsWith(`${q}/`) && live.get(q)?.kind !== 'directory')) {
      candidates.add(p);
      live.set(p, null);
    }
  }

  const deferred: string[] = [];
  const mismatches: Mismatch[] = [];
  for (const path of [...candidates].sort()) {
    if (before.pending.some((held) => pathsOverlap(path, held))) {
      deferred.push(path);
      continue;
    }
    const row = before.rows.get(path) ?? null;
    const meta = live.get(path) ?? null;
    let verdict = compareNode(row, meta);
    let hash: string | undefined;
    if ('needsHash' in verdict && meta) {
      hash = await executor.checksum(path).catch(() => undefined);
      if (hash !== undefined) verdict = compareNode(row, meta, hash);
    }
    if (verdict.drift) mismatches.push({ path, kind: verdict.drift, observed: observedOf(meta, hash), row });
  }
  if (mismatches.length === 0) return { detected: 0, deferred };

  // Confirm: a mutation that began or committed after the first snapshot explains the difference.
  // A commit always sets last_journal_id; drift marking (another job, maybe right now) never does,
  // and the recording step below already skips a detection that job made.
  const after = await catalogView(db, spec.mountId, mismatches.map((m) => m.path));
  const confirmed = mismatches.filter((m) => {
    const committed = (after.rows.get(m.path)?.lastJournalId ?? null) !== (m.row?.lastJournalId ?? null);
    if (committed || after.pending.some((held) => pathsOverlap(m.path, held))) {
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
        .select({ path: driftEvents.path, kind: driftEvents.kind, observed: driftEvents.observed })
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
      const fresh = chunk.filter((m) => !(states.get(m.path) === 'INCONSISTENT' && sameDetection(last.get(m.path), m.kind, m.observed)));
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
