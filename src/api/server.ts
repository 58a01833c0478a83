/**
 * `filestore api`: the HTTP face of Filestore (fastify). Every route is a thin adapter over the
 * same use cases the CLI and the SDK call — mutations start the one mutation workflow, reads go to
 * the catalog, downloads stream through the executor's `openRead`, uploads stream into the upload
 * area — so a service in any language can do what the CLI does.
 *
 * Request schemas are zod (src/operations/schemas.ts): fastify validates with them and
 * @fastify/swagger turns the same objects into `/openapi.json`. Every route but /healthz, /readyz,
 * /metrics and /openapi.json needs a bearer token (src/api/auth.ts). Errors are RFC 9457 problems
 * (src/api/problem.ts). Graceful shutdown: `close()` stops accepting, lets in-flight requests —
 * uploads included — finish for up to FILESTORE_API_SHUTDOWN_GRACE_MS, then cuts the rest.
 */
import fastifySwagger from '@fastify/swagger';
import Fastify, { type FastifyRequest } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { ApiApp, ApiDeps } from './api-context';
import { authenticate } from './auth';
import { observeRequests } from './observe';
import { clientErrorHandler, notFound, sendProblem } from './problem';
import { registerCatalogRoutes } from './routes/catalog';
import { registerFileRoutes } from './routes/files';
import { registerHealthRoutes } from './routes/health';
import { registerMountRoutes } from './routes/mounts';
import { registerMutationRoutes } from './routes/mutations';

/** Routes that answer without a token. */
const PUBLIC_ROUTES = new Set(['/healthz', '/readyz', '/metrics', '/openapi.json']);

/** Longest encoded path segment fastify will route (a 4 KiB path, every byte %-encoded). */
const MAX_PARAM_LENGTH = 3 * 4096 + 16;


/** Builds the server (not listening): tests inject or listen on a port of their choice. */
export async function buildApiServer(deps: ApiDeps): Promise<ApiApp> {
  const app = Fastify({
    loggerInstance: deps.logger?.child({ component: 'api' }),
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    bodyLimit: 1024 * 1024,
    // Uploads may take hours: no request timeout; stalled connections end at the socket's idle timeout.
    requestTimeout: 0,
    connectionTimeout: 0,
    keepAliveTimeout: 10_000,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    clientErrorHandler,
    // A URL fastify cannot decode (`%zz`, a lone UTF-8 byte) is a problem like any other refusal.
    frameworkErrors: (err, req, reply) => void sendProblem(err, req, reply),
    // The Authorization header never reaches a log line: request logging records method, url, ids only.
    genReqId: () => crypto.randomUUID(),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler((err, req, reply) => sendProblem(err, req, reply));
  app.setNotFoundHandler((req, reply) => notFound(req, reply));
  app.decorateRequest('principal', null);
  // JSON routes take application/json only: fastify's built-in text/plain parser would turn a
  // text body into a string that then fails validation as 400 instead of the documented 415.
  app.removeContentTypeParser('text/plain');

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Filestore API',
        version: '1.0.0',
        description: 'Durable, verified, journaled file mutations across local disks and S3. Errors are RFC 9457 problems carrying a stable `code`.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A token from `filestore token create`' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: (documentObject) => namedWildcards((documentObject as { openapiObject: OpenApiDoc }).openapiObject) as never,
  });

  observeRequests(app);
  app.addHook('onRequest', async (req: FastifyRequest) => {
    const route = req.routeOptions.url;
    if (route === undefined || PUBLIC_ROUTES.has(route)) return;
    req.principal = await authenticate(deps.db, req.headers.authorization);
  });

  registerHealthRoutes(app, deps);
  registerCatalogRoutes(app, deps);
  registerMutationRoutes(app, deps);
  registerMountRoutes(app, deps);
  await app.register(async (scope) => registerFileRoutes(scope.withTypeProvider<ZodTypeProvider>(), deps));

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}

type OpenApiDoc = { paths?: Record<string, Record<string, { parameters?: Array<{ name?: string; in?: string }> }>> } & Record<string, unknown>;

/**
 * Fastify's wildcard (`/files/*`) becomes `{*}` in the document; name it `{path}` (a mount-relative
 * path, slashes allowed) so generated clients get a usable parameter name.
 */
function namedWildcards(doc: OpenApiDoc): OpenApiDoc {
  if (!doc.paths) return doc;
  const paths: NonNullable<OpenApiDoc['paths']> = {};
  for (const [route, item] of Object.entries(doc.paths)) {
    for (const op of Object.values(item)) {
      for (const p of op.parameters ?? []) if (p.in === 'path' && p.name === '*') p.name = 'path';
    }
    paths[route.replace('{*}', '{path}')] = item;
  }
  return { ...doc, paths };
}


export type { ApiApp, ApiDeps } from './api-context';
