/** Executors for the mounts in the catalog, opened on first use and re-opened when the mount changes. */
import type { Db } from '../db/client';
import { checkMountMarker } from './catalog/mount-marker';
import { getMount, mountSpecOf } from './catalog/mounts';
import { catalogPlanStore } from './catalog/plans';
import { MountUnavailableError } from './errors';
import type { Executor } from './executors/executor';
import { createExecutor, s3OptionsOf } from './executors/index';
import type { LocalExecutorHooks } from './executors/local/local-executor';

/**
 * How long a local mount's identity marker counts as verified. Short, so a disk that goes away
 * (leaving an empty mount point) is noticed within seconds; long enough that the hot path does
 * not read the marker for every activity.
 */
export const MARKER_RECHECK_MS = 3_000;

export class ExecutorRegistry {
  private readonly cache = new Map<string, { executor: Executor; version: string; verifiedAt: number }>();

  /**
   * @param hooks - test seams for local executors (fault injection in child-process workers).
   * @param s3 - S3 transfer and client settings (the process's Config via `s3OptionsOf`); without
   *   them S3 executors read the environment's configuration.
   */
  constructor(
    private readonly db: Db,
    private readonly hooks: LocalExecutorHooks = {},
    private readonly s3?: ReturnType<typeof s3OptionsOf>,
  ) {}

  /**
   * Executor of `mountId`. A local mount's root must carry its identity marker (checked at most
   * every {@link MARKER_RECHECK_MS}): an empty mount point is never written to.
   *
   * @throws UnknownMountError when the catalog has no such mount.
   * @throws MountUnavailableError (retryable: the disk may come back) when the marker is missing or foreign.
   */
  async get(mountId: string): Promise<Executor> {
    const row = await getMount(this.db, mountId);
    // The row's updated_at is the version: a changed mount (read-only toggled, root moved) gets a fresh executor.
    const version = `${row.updatedAt.getTime()}:${row.instanceId}`;
    const hit = this.cache.get(mountId);
    const now = Date.now();
    if (hit && hit.version === version && (row.kind !== 'local' || now - hit.verifiedAt < MARKER_RECHECK_MS)) return hit.executor;
    if (row.kind === 'local') {
      const check = await checkMountMarker(row);
      if (!check.ok) throw new MountUnavailableError(mountId, `${check.reason}; if this host's disk is that mount, run \`filestore mount mark ${mountId}\``);
    }
    if (hit && hit.version === version) {
      hit.verifiedAt = now;
      return hit.executor;
    }
    // Plans live in the catalog, out of reach of the mount's users.
    const executor = await createExecutor(mountSpecOf(row), { planStore: catalogPlanStore(this.db, mountId), hooks: this.hooks, ...(this.s3 ? { s3: this.s3 } : {}) });
    this.cache.set(mountId, { executor, version, verifiedAt: now });
    return executor;
  }
}
