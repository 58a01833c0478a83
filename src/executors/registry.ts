/** Executors for the mounts in the catalog, opened on first use and re-opened when the mount changes. */
import type { Db } from '../../db/client';
import { getMount, mountSpecOf } from '../catalog/mounts';
import { catalogPlanStore } from '../catalog/plans';
import type { Executor } from './executor';
import { createExecutor } from './index';

export class ExecutorRegistry {
  private readonly cache = new Map<string, { executor: Executor; version: string }>();

  constructor(private readonly db: Db) {}

  /** Executor of `mountId` (UnknownMountError when the catalog has no such mount). */
  async get(mountId: string): Promise<Executor> {
    const row = await getMount(this.db, mountId);
    // The row's updated_at is the version: a changed mount (read-only toggled, root moved) gets a fresh executor.
    const version = `${row.updatedAt.getTime()}`;
    const hit = this.cache.get(mountId);
    if (hit && hit.version === version) return hit.executor;
    const executor = await createExecutor(mountSpecOf(row), { planStore: catalogPlanStore(this.db, mountId) });
    this.cache.set(mountId, { executor, version });
    return executor;
  }
}
