/**
 * One HTTP round trip to the Filestore API on Node's global fetch: bearer token, URL building with
 * the server's own path rules, and every non-2xx answer turned into the typed error it names.
 */
import { normalizeMountPath } from '../../../src/paths';
import { errorFromResponse, unreachable } from './errors';

/** Query values; undefined ones are left out. */
export type Query = Record<string, string | number | boolean | undefined | null>;

export interface RequestInit {
  query?: Query;
  headers?: Record<string, string>;
  /** A JSON body (sent as application/json). */
  json?: unknown;
  /** A raw body; streamed when it is a stream or an async iterable. */
  body?: BodyInit | AsyncIterable<Uint8Array>;
  signal?: AbortSignal;
  /** Statuses that are answers, not errors (besides 2xx). */
  accept?: number[];
}

type BodyInit = NonNullable<Parameters<typeof fetch>[1]>['body'];

export class HttpTransport {
  readonly base: string;

  constructor(
    url: string | URL,
    private readonly token: string | undefined,
    private readonly fetchImpl: typeof fetch,
    private readonly extraHeaders: Record<string, string>,
  ) {
    // Routes are appended to the base URL's path, so a base behind a path prefix keeps it.
    this.base = String(url).replace(/\/+$/, '');
  }

  /** Sends one request; resolves with the response when it is 2xx (or in `accept`), else throws the typed error. */
  async request(method: string, route: string, init: RequestInit = {}): Promise<Response> {
    const url = this.base + route + queryString(init.query);
    const headers: Record<string, string> = { ...this.extraHeaders, ...init.headers };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let body: RequestInit['body'];
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    } else {
      body = init.body;
    }
    let res: Response;
    try {
      res = await this.fetchImpl(url, {
        method,
        headers,
        body: body as BodyInit,
        signal: init.signal,
        // A streamed body (Node's fetch needs `duplex` for one).
        ...(body !== undefined && body !== null && typeof body === 'object' && !ArrayBuffer.isView(body) ? { duplex: 'half' } : {}),
      } as Parameters<typeof fetch>[1]);
    } catch (err) {
      if ((err as Error)?.name === 'AbortError') throw err;
      throw unreachable(`${method} ${this.base}${route}`, err);
    }
    if (res.ok || init.accept?.includes(res.status)) return res;
    throw errorFromResponse(res.status, await readErrorBody(res, method), method, route);
  }

  /** {@link request} and its JSON answer. */
  async json<T>(method: string, route: string, init: RequestInit = {}): Promise<T> {
    const res = await this.request(method, route, { ...init, headers: { accept: 'application/json', ...init.headers } });
    return (await res.json()) as T;
  }
}

/** The body of an error answer: JSON (problem+json or other) when it parses, else its text. */
async function readErrorBody(res: Response, method: string): Promise<unknown> {
  if (method === 'HEAD') return null;
  const text = await res.text().catch(() => '');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function queryString(query: Query | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}

/**
 * A mount-relative path as URL path segments, checked with the server's own rules first: `..`
 * cannot be sent at all (URL parsers resolve it, and `%2E%2E` too), so it is refused here with the
 * PATH_TRAVERSAL the server would answer.
 */
export function encodePath(p: string, opts: { allowRoot?: boolean } = {}): string {
  const normalized = normalizeMountPath(p, opts);
  return normalized.split('/').map(encodeURIComponent).join('/');
}

/** `/v1/mounts/{mount}` (with `rest` appended). */
export function mountRoute(mount: string, rest = ''): string {
  return `/v1/mounts/${encodeURIComponent(mount)}${rest}`;
}
