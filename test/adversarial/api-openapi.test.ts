/**
 * `/openapi.json` is a valid OpenAPI 3.1 document (checked by @seriousme/openapi-schema-validator),
 * and it describes every route the server registers — no route exists that a client generated from
 * the document cannot know about. Routes are collected with fastify's onRoute hook, added to every
 * instance the API builds (a pass-through wrapper of the fastify factory; nothing else changes).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import type { RouteOptions } from 'fastify';
import { createApiTestStack, type ApiTestStack } from '../helpers/api';

jest.mock('fastify', () => {
  const real = jest.requireActual('fastify');
  const wrapped = (opts: unknown) => {
    const app = real(opts);
    app.addHook('onRoute', (r: RouteOptions) => ((globalThis as { __apiRoutes?: RouteOptions[] }).__apiRoutes ??= []).push(r));
    return app;
  };
  return Object.assign(wrapped, real, { default: wrapped, fastify: wrapped });
});

jest.setTimeout(120_000);

/** The validator is ESM only (Jest's loader cannot require it): it runs in a child node process. */
function validateOpenApi(doc: unknown): Promise<{ valid: boolean; version?: string; errors?: unknown }> {
  const script = `
    import { Validator } from '@seriousme/openapi-schema-validator';
    let input = '';
    process.stdin.on('data', (c) => (input += c));
    process.stdin.on('end', async () => {
      const v = new Validator();
      const res = await v.validate(JSON.parse(input));
      process.stdout.write(JSON.stringify({ valid: res.valid, version: v.version, errors: res.errors }));
    });`;
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: path.join(__dirname, '../..') }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as { valid: boolean; version?: string; errors?: unknown }),
    );
    child.stdin!.end(JSON.stringify(doc));
  });
}

/** fastify's `/a/:b/*` → OpenAPI's `/a/{b}/<wildcard>`. */
function openApiPath(url: string, wildcard: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*$/, wildcard);
}

let t: ApiTestStack;
let doc: { openapi: string; paths: Record<string, Record<string, unknown>> };

beforeAll(async () => {
  (globalThis as { __apiRoutes?: RouteOptions[] }).__apiRoutes = [];
  t = await createApiTestStack();
  const r = await t.call('/openapi.json', { token: null });
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toContain('application/json');
  doc = (await r.json()) as typeof doc;
});
afterAll(() => t?.teardown());

it('is an OpenAPI 3.1 document that validates', async () => {
  expect(doc.openapi).toMatch(/^3\.1\./);
  const res = await validateOpenApi(doc);
  expect(res).toEqual({ valid: true, version: expect.stringMatching(/^3\.1/) });
});

it('the validator refuses a broken document (so the check above is not vacuous)', async () => {
  const broken = { ...doc, info: undefined, paths: { ...doc.paths, '/x': { get: { responses: 'nope' } } } };
  expect((await validateOpenApi(broken)).valid).toBe(false);
});

it('describes every route the server registers, and nothing else', () => {
  const routes = (globalThis as { __apiRoutes?: RouteOptions[] }).__apiRoutes ?? [];
  expect(routes.length).toBeGreaterThan(10);
  // @fastify/swagger names fastify's wildcard `{*}`; the server may rename it (`{path}`): take the
  // name the document gives the file routes' trailing parameter.
  const wildcard = /^\/v1\/mounts\/\{mount\}\/files\/(\{[^}]+\})$/.exec(Object.keys(doc.paths).find((p) => p.startsWith('/v1/mounts/{mount}/files/')) ?? '')?.[1] ?? '{*}';
  const registered = new Set<string>();
  for (const r of routes) {
    for (const method of [r.method].flat()) {
      if (method === 'HEAD' || r.url === '/openapi.json') continue;
      registered.add(`${method} ${openApiPath(r.url, wildcard)}`);
    }
  }
  const documented = new Set<string>();
  for (const [p, ops] of Object.entries(doc.paths)) {
    for (const m of Object.keys(ops)) if (['get', 'put', 'post', 'delete', 'patch', 'options', 'trace'].includes(m)) documented.add(`${m.toUpperCase()} ${p}`);
  }
  expect({ missingFromDocument: [...registered].filter((x) => !documented.has(x)).sort() }).toEqual({ missingFromDocument: [] });
  expect({ documentedButNotServed: [...documented].filter((x) => !registered.has(x)).sort() }).toEqual({ documentedButNotServed: [] });
  // The contract's routes, as a floor (so an empty collection cannot pass).
  for (const must of [
    'GET /healthz',
    'GET /readyz',
    'GET /metrics',
    `PUT /v1/mounts/{mount}/files/${wildcard}`,
    `GET /v1/mounts/{mount}/files/${wildcard}`,
    `DELETE /v1/mounts/{mount}/files/${wildcard}`,
    `GET /v1/mounts/{mount}/nodes/${wildcard}`,
    `GET /v1/mounts/{mount}/list/${wildcard}`,
    'POST /v1/mounts/{mount}/mkdir',
    'POST /v1/mounts/{mount}/copy',
    'POST /v1/mounts/{mount}/move',
    'POST /v1/mounts/{mount}/delete',
    'POST /v1/mounts/{mount}/reconcile',
    'GET /v1/runs/{workflowId}',
    'GET /v1/journal',
    'GET /v1/journal/{idOrKey}',
    'GET /v1/drift',
    'GET /v1/mounts',
    'GET /v1/mounts/{mount}',
    'POST /v1/mounts',
    'PATCH /v1/mounts/{mount}',
  ]) {
    expect(registered).toContain(must);
  }
});

it('documents the bearer scheme, and no security on the public routes', () => {
  const d = doc as unknown as { components: { securitySchemes: Record<string, { type: string; scheme: string }> }; security: unknown[]; paths: Record<string, Record<string, { security?: unknown[] }>> };
  expect(d.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
  expect(d.security).toEqual([{ bearer: [] }]);
  for (const p of ['/healthz', '/readyz', '/metrics']) expect(d.paths[p]?.get?.security).toEqual([]);
});

it('documents problem+json answers on the routes that can refuse', () => {
  const ops = Object.entries(doc.paths).flatMap(([p, o]) => Object.entries(o).map(([m, op]) => [`${m.toUpperCase()} ${p}`, op as { responses?: Record<string, { content?: Record<string, unknown> }> }] as const));
  const without = ops
    .filter(([name]) => name.includes('/v1/'))
    .filter(([, op]) => !Object.entries(op.responses ?? {}).some(([status, r]) => /^4/.test(status) && r.content !== undefined))
    .map(([name]) => name);
  expect(without).toEqual([]);
});
