/**
 * Unauthenticated operational routes: liveness, readiness (Postgres, Temporal and Redis each
 * answer within a few seconds) and Prometheus metrics.
 */
import { sql } from 'drizzle-orm';
import { registry } from '../../metrics';
import type { ApiApp, ApiDeps } from '../api-context';

const CHECK_TIMEOUT_MS = 3_000;

/** 'ok', or 'failed' (why goes to the log only: an unauthenticated caller learns no addresses). */
async function within<T>(what: Promise<T>, log: { warn: (o: object, m: string) => void }, name: string): Promise<'ok' | 'failed'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([what, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS)))]);
    return 'ok';
  } catch (err) {
    log.warn({ err, check: name }, 'readiness check failed');
    return 'failed';
  } finally {
    clearTimeout(timer);
  }
}

export function registerHealthRoutes(app: ApiApp, deps: ApiDeps): void {
  const tags = ['operations'];
  app.get('/healthz', { schema: { tags, summary: 'Liveness: the process answers', security: [] } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { tags, summary: 'Readiness: Postgres, Temporal and Redis reachable (503 otherwise)', security: [] } }, async (req, reply) => {
    const checks: Record<string, string> = {
      postgres: await within(deps.db.execute(sql`SELECT 1`), req.log, 'postgres'),
      temporal: await within(deps.client.temporal.workflowService.getSystemInfo({}), req.log, 'temporal'),
      ...(deps.redis ? { redis: await within(deps.redis.ping(), req.log, 'redis') } : {}),
    };
    const ok = Object.values(checks).every((v) => v === 'ok');
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'unavailable', checks });
  });

  app.get('/metrics', { schema: { tags, summary: 'Prometheus metrics', security: [], produces: ['text/plain'] } }, async (_req, reply) => {
    return reply.header('content-type', registry.contentType).send(await registry.metrics());
  });
}
