/**
 * Builds the executor of a mount. Callers hold an {@link Executor} and ask its capabilities;
 * only this factory knows which class serves which backend.
 */
import { type Config, loadConfig, s3PathStyle } from '../config';
import { UnsupportedError } from '../errors';
import type { Executor, MountSpec } from './executor';
import { LocalExecutor, type LocalExecutorHooks } from './local/local-executor';
import type { Plan } from './local/local-staging';
import type { PlanStore } from './plan-store';
import { S3Executor, type S3ExecutorOptions } from './s3/s3-executor';
import type { S3Plan } from './s3/s3-plan';

export type * from './executor';
export { LocalExecutor } from './local/local-executor';
export { S3Executor } from './s3/s3-executor';

/** What an S3 executor takes from the configuration: FILESTORE_S3_ENDPOINT and its addressing, multipart threshold, part size, concurrency. */
export function s3OptionsOf(config: Config): Pick<S3ExecutorOptions, 'transfer' | 'client'> {
  return {
    transfer: { multipartThreshold: config.s3MultipartThreshold, partSize: config.s3PartSize, concurrency: config.s3Concurrency },
    client: {
      ...(config.s3Endpoint ? { endpoint: config.s3Endpoint } : {}),
      forcePathStyle: s3PathStyle(config),
      // Sockets for every part in flight of a few transfers at once.
      maxSockets: Math.max(64, config.s3Concurrency * 8),
    },
  };
}

/**
 * Opens the executor for `spec`; `deps.planStore` is where its undo plans live (the catalog's, in a
 * worker).
 *
 * `deps.s3` sets an S3 mount's transfer and client settings; without it they come from the
 * environment's configuration (see {@link s3OptionsOf}).
 *
 * @throws MountUnavailableError when a local root is missing or not a directory, or an S3 mount names no bucket.
 */
export async function createExecutor(
  spec: MountSpec,
  deps: { planStore?: PlanStore<{ txId: string }>; hooks?: LocalExecutorHooks; s3?: Omit<S3ExecutorOptions, 'planStore'> } = {},
): Promise<Executor> {
  switch (spec.kind) {
    case 'local':
      // Plans are JSON in the store; each backend reads back the shape it saved.
      return LocalExecutor.open(spec, { ...deps.hooks, planStore: deps.planStore as PlanStore<Plan> | undefined });
    case 's3':
      return S3Executor.open(spec, { ...(deps.s3 ?? s3OptionsOf(loadConfig())), planStore: deps.planStore as PlanStore<S3Plan> | undefined });
    default:
      throw new UnsupportedError(`unknown backend kind ${JSON.stringify((spec as { kind: unknown }).kind)}`, { mountId: (spec as MountSpec).id });
  }
}
