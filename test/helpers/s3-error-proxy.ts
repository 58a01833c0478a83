/**
 * A small HTTP reverse proxy in front of an S3 server that answers a share of the requests with
 * S3 error responses (503 SlowDown, 500 InternalError, … with proper `<Error>` XML bodies) and
 * streams everything else through unchanged.
 *
 * Signatures stay valid because nothing is rewritten: the request line, every header (the Host
 * header too, which names this proxy — what the client signed with SigV4 and what the server
 * checks) and the body bytes go to the server as they came, and its answer comes back the same way.
 *
 * A rule may fire `instead` of forwarding (the request never reaches the server) or `after` it
 * (the server applied the request, the client is told it failed) — the second is what makes a
 * retried CompleteMultipartUpload or conditional PutObject interesting.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';

/** The S3 operations a rule can single out, recognised from method, query and headers. */
export type S3RequestKind =
  | 'PutObject'
  | 'CopyObject'
  | 'UploadPart'
  | 'UploadPartCopy'
  | 'CreateMultipartUpload'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'ListParts'
  | 'ListMultipartUploads'
  | 'GetObject'
  | 'HeadObject'
  | 'DeleteObject'
  | 'DeleteObjects'
  | 'ListObjects'
  | 'Bucket'
  | 'Other';

/** An S3 error a rule answers with. */
export interface S3ErrorSpec {
  status: number;
  code: string;
  message: string;
}

export const SLOW_DOWN: S3ErrorSpec = { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' };
export const INTERNAL_ERROR: S3ErrorSpec = { status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' };

export interface ErrorRule {
  error: S3ErrorSpec;
  /** Share of the matching requests answered with `error` (0..1). */
  share: number;
  /** Only these HTTP methods (upper case). @defaultValue every method */
  methods?: string[];
  /** Only these operations. @defaultValue every operation */
  kinds?: S3RequestKind[];
  /** `instead`: the server never sees the request; `after`: it is forwarded, applied, and its answer replaced by the error. @defaultValue 'instead' */
  when?: 'instead' | 'after';
  /** Fires at most this many times (then the rule lets everything through). @defaultValue no limit */
  limit?: number;
}

export interface ErrorProxyStats {
  /** Requests received, by operation. */
  requests: Partial<Record<S3RequestKind, number>>;
  /** Error answers sent, by `<operation> <code> <when>`. */
  injected: Record<string, number>;
  /** Forwarded requests whose server connection failed (answered by destroying the client's socket). */
  upstreamFailures: number;
}

export interface S3ErrorProxy {
  /** `http://127.0.0.1:<port>`: the endpoint to give clients (and mounts) instead of the server's. */
  endpoint: string;
  /** Replaces the rules (the first matching rule that fires decides). */
  setRules(rules: ErrorRule[]): void;
  stats(): ErrorProxyStats;
  resetStats(): void;
  /** Total error answers sent since the last reset. */
  injectedTotal(): number;
  close(): Promise<void>;
}

/** Which S3 operation a request is (path-style or virtual-hosted addressing alike). */
export function classifyS3Request(method: string, url: string, headers: http.IncomingHttpHeaders): S3RequestKind {
  const u = new URL(url, 'http://x');
  const q = u.searchParams;
  const copy = headers['x-amz-copy-source'] !== undefined;
  // Path style `/bucket/key…`: a key is present when there is a second segment.
  const hasKey = u.pathname.replace(/^\/+/, '').includes('/') && !u.pathname.endsWith('/');
  switch (method) {
    case 'PUT':
      if (q.has('partNumber') && q.has('uploadId')) return copy ? 'UploadPartCopy' : 'UploadPart';
      if (!hasKey) return 'Bucket';
      return copy ? 'CopyObject' : 'PutObject';
    case 'POST':
      if (q.has('uploads')) return 'CreateMultipartUpload';
      if (q.has('uploadId')) return 'CompleteMultipartUpload';
      if (q.has('delete')) return 'DeleteObjects';
      return 'Other';
    case 'DELETE':
      if (q.has('uploadId')) return 'AbortMultipartUpload';
      return hasKey ? 'DeleteObject' : 'Bucket';
    case 'HEAD':
      return hasKey ? 'HeadObject' : 'Bucket';
    case 'GET':
      if (q.has('uploadId')) return 'ListParts';
      if (q.has('uploads')) return 'ListMultipartUploads';
      if (hasKey) return 'GetObject';
      if (q.has('list-type') || q.has('prefix') || q.has('delimiter') || [...q.keys()].length === 0) return 'ListObjects';
      return 'Bucket';
    default:
      return 'Other';
  }
}

/** A small seeded PRNG (mulberry32): a failing run can be replayed with the seed it logged. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function errorXml(err: S3ErrorSpec, resource: string, requestId: string): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${esc(err.code)}</Code><Message>${esc(err.message)}</Message><Resource>${esc(resource)}</Resource><RequestId>${requestId}</RequestId></Error>`
  );
}

/** Answers `err` the way S3 does: XML body (none for HEAD), request id headers. */
function sendError(res: http.ServerResponse, method: string, url: string, err: S3ErrorSpec): void {
  const requestId = randomBytes(8).toString('hex').toUpperCase();
  const body = method === 'HEAD' ? '' : errorXml(err, new URL(url, 'http://x').pathname, requestId);
  res.writeHead(err.status, {
    'content-type': 'application/xml',
    'content-length': Buffer.byteLength(body),
    'x-amz-request-id': requestId,
    ...(err.status === 503 ? { 'retry-after': '1' } : {}),
  });
  res.end(body);
}

/**
 * Starts the proxy on a free loopback port in front of `upstream` (`http://host:port`).
 *
 * @param opts.seed - seeds the share draws (logged with the stats by the caller for replay). @defaultValue random
 */
export async function startS3ErrorProxy(upstream: string, opts: { seed?: number } = {}): Promise<S3ErrorProxy & { seed: number }> {
  const target = new URL(upstream);
  const seed = opts.seed ?? randomBytes(4).readUInt32LE(0);
  const random = prng(seed);
  let rules: (ErrorRule & { fired: number })[] = [];
  let stats: ErrorProxyStats = { requests: {}, injected: {}, upstreamFailures: 0 };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const sockets = new Set<net.Socket>();

  const pick = (method: string, kind: S3RequestKind): ErrorRule | null => {
    for (const r of rules) {
      if (r.methods && !r.methods.includes(method)) continue;
      if (r.kinds && !r.kinds.includes(kind)) continue;
      if (r.limit !== undefined && r.fired >= r.limit) continue;
      if (random() < r.share) {
        r.fired += 1;
        return r;
      }
    }
    return null;
  };
  const count = (kind: S3RequestKind, rule: ErrorRule) => {
    const k = `${kind} ${rule.error.code} ${rule.when ?? 'instead'}`;
    stats.injected[k] = (stats.injected[k] ?? 0) + 1;
  };

  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const kind = classifyS3Request(method, url, req.headers);
    stats.requests[kind] = (stats.requests[kind] ?? 0) + 1;
    const rule = pick(method, kind);

    if (rule && (rule.when ?? 'instead') === 'instead') {
      // Read the body first, as a server that fails the request after receiving it does; the
      // client then gets the error answer rather than a broken pipe.
      req.resume();
      req.once('end', () => {
        count(kind, rule);
        sendError(res, method, url, rule.error);
      });
      req.once('error', () => res.destroy());
      return;
    }

    // Forwarded byte for byte: the raw header list keeps names, order, duplicates and Host.
    const up = http.request({ host: target.hostname, port: target.port, method, path: url, headers: req.rawHeaders, agent });
    let answered = false;
    up.on('response', (ur) => {
      if (rule) {
        // `after`: the server applied the request; its answer is dropped and the error sent instead.
        ur.resume();
        ur.once('end', () => {
          answered = true;
          count(kind, rule);
          sendError(res, method, url, rule.error);
        });
        ur.once('error', () => res.destroy());
        return;
      }
      answered = true;
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, ur.rawHeaders);
      ur.pipe(res);
      ur.once('error', () => res.destroy());
    });
    up.on('error', () => {
      stats.upstreamFailures += 1;
      // The client must see a broken connection, as it would without the proxy, not a made-up answer.
      if (!answered) res.destroy();
    });
    // A client that goes away mid-request (a cut stream) must cut the server's request too, or the
    // server would wait for the rest of the body.
    req.once('close', () => {
      if (!req.complete) up.destroy();
    });
    res.once('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  // Keep-alive sockets of the clients under test would otherwise hold close() open.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    seed,
    setRules(next) {
      rules = next.map((r) => ({ ...r, fired: 0 }));
    },
    stats: () => structuredClone(stats),
    resetStats() {
      stats = { requests: {}, injected: {}, upstreamFailures: 0 };
    },
    injectedTotal: () => Object.values(stats.injected).reduce((a, b) => a + b, 0),
    async close() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      agent.destroy();
      await closed;
    },
  };
}
