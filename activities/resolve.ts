/**
 * Catalog-only activities that end a mutation whose undo could not finish (see
 * src/catalog/abandon.ts), so its path lock never outlives it.
 */
import type { Db } from '../db/client';
import { abandonMutation } from '../src/catalog/abandon';
import type { ErrorInfo } from '../src/errors';

export function createResolveActivities(deps: { db: Db }) {
  /** Journal FAILED with compensationIncomplete, touched nodes INCONSISTENT, lock released, metric counted. */
  async function abandonJournal(input: { journalId: string; error: ErrorInfo; compensationError: ErrorInfo }): Promise<void> {
    await abandonMutation(deps.db, { ...input, by: 'workflow' });
  }
  return { abandonJournal };
}
