/**
 * Request metrics of the HTTP API: one in-flight count and one duration observation per request,
 * labelled by method, matched route pattern and status (src/metrics.ts). Ended on the response's
 * `finish` or the connection's `close`, whichever comes first, so an upload cut mid-body is counted.
 */
import type { FastifyInstance } from 'fastify';
import { startHttpRequest } from '../metrics';

export function observeRequests(app: FastifyInstance<any, any, any, any, any>): void { // eslint-disable-line @typescript-eslint/no-explicit-any
  app.addHook('onRequest', async (req, reply) => {
    const end = startHttpRequest();
    const done = () => end({ method: req.method, route: req.routeOptions.url, status: reply.raw.statusCode });
    reply.raw.once('finish', done);
    reply.raw.once('close', done);
  });
}
