/** Redis clean-up shared by the watcher suites. */
import { Redis } from 'ioredis';

/** Deletes every key BullMQ keeps for `queue` (`bull:<queue>:*`): what a suite's drift queue left behind. */
export async function dropQueueKeys(redisUrl: string, queue: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    const keys = await redis.keys(`bull:${queue}:*`);
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}
