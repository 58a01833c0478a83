/**
 * A real HTTP API over a test stack: the stack's worker and FilestoreClient, the API listening on
 * a free port of 127.0.0.1, an admin token, and a small fetch wrapper. Requests go over real
 * sockets (node's fetch / node:http), never fastify's inject.
 */
import { createToken } from '../../src/catalog/tokens';
import { startApi, type RunningApi } from '../../src/api/api-process';
import type { Config } from '../../src/config';
import { createTestStack, type TestStack } from './stack';

export interface ApiTestStack {
  stack: TestStack;
  api: RunningApi;
  /** `http://127.0.0.1:<port>` */
  url: string;
  adminToken: string;
  /** A token for one mount (`readOnly` for a read-only one). */
  mountToken(mountId: string, readOnly?: boolean): Promise<string>;
  /** fetch against the API with `token` (default: the admin token; null: none). */
  call(path: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
  teardown(): Promise<void>;
}

export async function createApiTestStack(opts: { config?: Partial<Config> } = {}): Promise<ApiTestStack> {
  const stack = await createTestStack({ config: { apiPort: 0, apiHost: '127.0.0.1', ...opts.config } });
  const api = await startApi(stack.config, { client: stack.client });
  const { token: adminToken } = await createToken(stack.client.db, { admin: true, name: 'test-admin' });
  const t: ApiTestStack = {
    stack,
    api,
    url: api.url,
    adminToken,
    async mountToken(mountId, readOnly = false) {
      return (await createToken(stack.client.db, { mountId, readOnly, name: `test-${mountId}` })).token;
    },
    call(path, init = {}) {
      const { token = adminToken, headers, ...rest } = init;
      const h = new Headers(headers);
      if (token !== null) h.set('authorization', `Bearer ${token}`);
      return fetch(`${api.url}${path}`, { ...rest, headers: h, ...(rest.body && typeof rest.body === 'object' && 'pipe' in rest.body ? { duplex: 'half' } : {}) } as RequestInit);
    },
    async teardown() {
      await api.close();
      await stack.teardown();
    },
  };
  return t;
}
