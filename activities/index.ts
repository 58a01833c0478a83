/**
 * Activity factory: dependencies come in (catalog, executors, Redis, limits), activities come out.
 * Tests build their own set the same way — e.g. replacing commitMutation to inject a failure — so
 * nothing is ever module-mocked. The worker wraps whatever it registers with `withTypedFailures`.
 */
import type { Redis } from 'ioredis';
import type { Db } from '../db/client';
import { uploadDirOf, type Config } from '../src/config';
import type { ExecutorRegistry } from '../src/executor-registry';
import type { UploadObjects } from '../src/executors/s3/s3-upload-objects';
import { createCommitActivities } from './commit';
import { createCrossMountCommitActivities } from './commit-cross-mount';
import { createExecuteActivities } from './execute';
import { createJournalActivities } from './journal';
import { createNotifyActivities } from './notify';
import { createResolveActivities } from './resolve';
import { createReconcileActivities } from './reconcile';
import { createTransferActivities } from './transfer';
import { createVerifyActivities } from './verify';
import type { FencePool } from './tx-fence';

export interface ActivityDeps {
  db: Db;
  executors: ExecutorRegistry;
  /** Where change events are published (ioredis; the worker owns and closes it). */
  redis: Redis;
  /** Dedicated Postgres sessions holding each transaction's fence (one live attempt). */
  fences: FencePool;
  /** The S3 upload area (FILESTORE_UPLOAD_S3) `upload` write sources are read from; absent refuses them. */
  uploadObjects?: UploadObjects | null;
  /** `taskQueue`: beginJournal resolves each mount's activity queue from the catalog with it. */
  config: Pick<Config, 'inlineMaxBytes' | 'maxFileBytes' | 'maxTreeEntries' | 'taskQueue' | 'sourceRoots' | 'uploadDir' | 'stateDir'>;
}

export function createActivities(deps: ActivityDeps) {
  const { db, executors, redis, config, fences } = deps;
  return {
    ...createJournalActivities({ db, inlineMaxBytes: config.inlineMaxBytes, taskQueue: config.taskQueue }),
    ...createCommitActivities({ db }),
    ...createResolveActivities({ db }),
    ...createExecuteActivities({ db, executors, fences, maxFileBytes: config.maxFileBytes, maxTreeEntries: config.maxTreeEntries, sourceRoots: [...config.sourceRoots, uploadDirOf(config)], uploadObjects: deps.uploadObjects }),
    ...createVerifyActivities({ db, executors }),
    ...createTransferActivities({ db, executors, fences, maxFileBytes: config.maxFileBytes }),
    ...createCrossMountCommitActivities({ db }),
    ...createNotifyActivities({ redis }),
    ...createReconcileActivities({ db, executors, fences, maxTreeEntries: config.maxTreeEntries }),
  };
}

export { withTypedFailures } from './typed-failure';
