/**
 * Activity factory: dependencies come in (catalog, executors, limits), activities come out. Tests
 * build their own set the same way — e.g. replacing commitMutation to inject a failure — so nothing
 * is ever module-mocked. The worker wraps whatever it registers with `withTypedFailures`.
 */
import type { Db } from '../db/client';
import type { Config } from '../src/config';
import type { ExecutorRegistry } from '../src/executors/registry';
import { createCommitActivities } from './commit';
import { createExecuteActivities } from './execute';
import { createJournalActivities } from './journal';

export interface ActivityDeps {
  db: Db;
  executors: ExecutorRegistry;
  config: Pick<Config, 'inlineMaxBytes' | 'maxFileBytes' | 'maxTreeEntries'>;
}

export function createActivities(deps: ActivityDeps) {
  const { db, executors, config } = deps;
  return {
    ...createJournalActivities({ db, inlineMaxBytes: config.inlineMaxBytes }),
    ...createCommitActivities({ db }),
    ...createExecuteActivities({ db, executors, maxFileBytes: config.maxFileBytes, maxTreeEntries: config.maxTreeEntries }),
  };
}

export { withTypedFailures } from './typed-failure';
