/**
 * Builds the executor of a mount. Callers hold an {@link Executor} and ask its capabilities;
 * only this factory knows which class serves which backend.
 */
import { UnsupportedError } from '../errors';
import type { Executor, MountSpec } from './executor';
import { LocalExecutor, type LocalExecutorHooks } from './local-executor';
import type { Plan } from './local-staging';
import type { PlanStore } from './plan-store';

export type * from './executor';
export { LocalExecutor } from './local-executor';

/**
 * Opens the executor for `spec`; `deps.planStore` is where its undo plans live (the catalog's, in a
 * worker).
 *
 * @throws MountUnavailableError when a local root is missing or not a directory.
 * @throws UnsupportedError for S3 mounts (not in this release).
 */
export async function createExecutor(spec: MountSpec, deps: { planStore?: PlanStore<Plan>; hooks?: LocalExecutorHooks } = {}): Promise<Executor> {
  switch (spec.kind) {
    case 'local':
      return LocalExecutor.open(spec, { ...deps.hooks, planStore: deps.planStore });
    case 's3':
      throw new UnsupportedError('S3 mounts arrive in a later release', { mountId: spec.id });
    default:
      throw new UnsupportedError(`unknown backend kind ${JSON.stringify((spec as { kind: unknown }).kind)}`, { mountId: (spec as MountSpec).id });
  }
}
