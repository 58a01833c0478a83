/**
 * The big mounts of bench/drift-bench.ts: generated on the fly, removed afterwards, and (for the
 * restart case) catalogued in one SQL statement as Filestore would have left them.
 *
 * Files are empty and all carry one fixed mtime: `touch -d @T` through xargs, one directory of
 * 1,000 files per process, a few directories at a time — one creat(2) per file and no round trip
 * through node per file, so a million files take tens of seconds, not minutes. Equal mtimes are
 * what lets the catalog be seeded without a stat per file.
 */
import { execFile } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Client as PgClient } from 'pg';
import type { Db } from '../db/client';
import { ExecutorRegistry } from '../src/executor-registry';
import { SCAN_DEFAULTS } from '../src/watcher/ordered-scan';
import { pad } from './drift-bench-context';
import { now } from './drift-bench-helpers';

const run = promisify(execFile);

/** Files per generated directory. */
export const FILES_PER_DIR = 1000;
/** The files' mtime, seconds since the epoch (2023-11-14T22:13:20Z). */
const MTIME_S = 1_700_000_000;
/** Directories generated at a time. */
const GENERATE_CONCURRENCY = 4;

export interface Tree {
  root: string;
  files: number;
  directories: number;
  /** Seconds it took to create. */
  generateSeconds: number;
}

const dirName = (d: number) => `d-${pad(d, 4)}`;
const fileName = (i: number) => `f-${pad(i, 7)}.txt`;

/** Creates `files` empty files in directories of {@link FILES_PER_DIR} under `root` (which must exist and be empty). */
export async function generateTree(root: string, files: number): Promise<Tree> {
  const t0 = now();
  const directories = Math.ceil(files / FILES_PER_DIR);
  let next = 0;
  const worker = async () => {
    for (let d = next++; d < directories; d = next++) {
      const dir = path.join(root, dirName(d));
      await fsp.mkdir(dir);
      const first = d * FILES_PER_DIR;
      const last = Math.min(files, first + FILES_PER_DIR) - 1;
      // seq prints the names; xargs hands touch as many as fit on one command line.
      await run('bash', ['-c', `cd "$1" && seq -f 'f-%07.0f.txt' ${first} ${last} | xargs touch -d @${MTIME_S}`, 'generate', dir]);
    }
  };
  await Promise.all(Array.from({ length: GENERATE_CONCURRENCY }, worker));
  return { root, files, directories, generateSeconds: (now() - t0) / 1000 };
}

/** Removes a generated tree (rm -rf: far faster than fs.rm on a million files); returns seconds. */
export async function removeTree(root: string): Promise<number> {
  const t0 = now();
  await run('rm', ['-rf', '--', root]);
  return (now() - t0) / 1000;
}

/**
 * Catalogues `tree` in mount `mountId` as Filestore's own writes would have (ACTIVE nodes whose
 * kind, size, mode and mtime match the disk), after clearing the mount's nodes and drift events.
 * Returns seconds.
 */
export async function seedCatalog(pg: PgClient, mountId: string, tree: Tree): Promise<number> {
  const t0 = now();
  const fileMode = (await fsp.lstat(path.join(tree.root, dirName(0), fileName(0)))).mode & 0o7777;
  const dirMode = (await fsp.lstat(path.join(tree.root, dirName(0)))).mode & 0o7777;
  await clearCatalog(pg, mountId);
  await pg.query(
    `INSERT INTO nodes (mount_id, path, kind, size, mode, state)
     SELECT $1, 'd-' || lpad(d::text, 4, '0'), 'directory', 0, $2, 'ACTIVE' FROM generate_series(0, $3::int - 1) AS d`,
    [mountId, dirMode, tree.directories],
  );
  await pg.query(
    `INSERT INTO nodes (mount_id, path, kind, size, mode, mtime, state)
     SELECT $1, 'd-' || lpad((i / $5::int)::text, 4, '0') || '/f-' || lpad(i::text, 7, '0') || '.txt', 'file', 0, $2, to_timestamp($3), 'ACTIVE'
     FROM generate_series(0, $4::int - 1) AS i`,
    [mountId, fileMode, MTIME_S, tree.files, FILES_PER_DIR],
  );
  await pg.query('ANALYZE nodes');
  return (now() - t0) / 1000;
}

/** Removes the mount's nodes and drift events: the next startup scan finds every file new. */
export async function clearCatalog(pg: PgClient, mountId: string): Promise<void> {
  await pg.query('DELETE FROM drift_events WHERE mount_id = $1', [mountId]);
  await pg.query('DELETE FROM nodes WHERE mount_id = $1', [mountId]);
}

/**
 * The disk side of a scan alone: the executor's sorted walk of the whole mount with the scan's
 * stats in flight, in this process, nothing compared or recorded. Returns seconds and entries.
 */
export async function timeWalk(db: Db, mountId: string): Promise<{ seconds: number; entries: number }> {
  const executor = await new ExecutorRegistry(db).get(mountId);
  const t0 = now();
  let entries = 0;
  for await (const _ of executor.list('', { recursive: true, sorted: true, concurrency: SCAN_DEFAULTS.concurrency })) entries++;
  return { seconds: (now() - t0) / 1000, entries };
}

/**
 * The other half of the database floor of a scan that finds every file new: writing one drift
 * event per file in one INSERT … SELECT (then removed). Returns seconds for the insert.
 */
export async function timeEventsInsert(pg: PgClient, mountId: string, files: number): Promise<number> {
  const t0 = now();
  await pg.query(
    `INSERT INTO drift_events (mount_id, path, kind, observed, job_id)
     SELECT $1, 'floor/f-' || lpad(i::text, 7, '0') || '.txt', 'added',
            jsonb_build_object('kind', 'file', 'size', 0, 'mtime', '2023-11-14T22:13:20.000Z', 'mode', 420), 'bench-floor'
     FROM generate_series(0, $2::int - 1) AS i`,
    [mountId, files],
  );
  const seconds = (now() - t0) / 1000;
  await pg.query(`DELETE FROM drift_events WHERE mount_id = $1 AND job_id = 'bench-floor'`, [mountId]);
  return seconds;
}
