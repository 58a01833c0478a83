/**
 * What every route of the HTTP API shares: its dependencies, the server's type and the caller's
 * principal. Its own module so route files and the server import it, never each other.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import type { Db } from '../../db/client';
import type { FilestoreClient } from '../client/filestore-client';
import type { Config } from '../config';
import type { ExecutorRegistry } from '../executor-registry';
import type { Logger } from '../logger';
import type { UploadStore } from '../operations/upload-area';
import type { Principal } from './auth';

/** What the routes use. */
export interface ApiDeps {
  config: Config;
  db: Db;
  /** Starts and awaits mutations (Temporal) and reads the catalog. */
  client: FilestoreClient;
  executors: ExecutorRegistry;
  uploads: UploadStore;
  /** For /readyz; absent → Redis is not checked. */
  redis?: Redis;
  logger?: Logger;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller, once the auth hook ran (routes under /v1 only). */
    principal: Principal | null;
  }
}

/** The principal of a request under /v1 (the auth hook set it). */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new Error('route reached without authentication');
  return req.principal;
}

/** The server, typed with the zod type provider. */
export type ApiApp = FastifyInstance<any, any, any, any, ZodTypeProvider>; // eslint-disable-line @typescript-eslint/no-explicit-any
