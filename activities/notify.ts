/**
 * Notify: publishes the change event of a committed mutation on Redis. It runs as an activity
 * (not inside commit) so a crash between commit and publish only delays the event: Temporal
 * retries the activity until Redis takes it.
 */
import type { Redis } from 'ioredis';
import { CHANGES_CHANNEL, changeEventOf } from '../src/change-events';
import { ServiceUnavailableError } from '../src/errors';
import type { MutationResult } from '../src/mutations';

export function createNotifyActivities(deps: { redis: Pick<Redis, 'publish'> }) {
  /**
   * PUBLISHes the mutation's ChangeEvent (src/change-events.ts) on `filestore:changes`.
   * At-least-once: an attempt whose PUBLISH reached Redis but whose reply was lost is retried and
   * repeats the event.
   */
  async function publishChange(input: { result: MutationResult }): Promise<void> {
    try {
      await deps.redis.publish(CHANGES_CHANNEL, JSON.stringify(changeEventOf(input.result)));
    } catch (err) {
      // Redis client errors carry no code to classify them by; here every one means "Redis did not
      // take it", which is transient by nature: typed as such, it is retried without bound.
      throw new ServiceUnavailableError('redis', (err as Error).message);
    }
  }

  return { publishChange };
}
