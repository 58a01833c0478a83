/**
 * The operations of bench/api-bench.ts: a deterministic mix of HTTP calls against the API (puts of
 * small and medium files, gets with and without Range, stats, HEADs, lists, mkdir, copy, move,
 * delete), the seed files they read and consume, and how one call is timed and classified.
 *
 * Paths are laid out so that mutations do not collide by construction — each put, mkdir, copy
 * target, move and delete has a path of its own — except copies, whose sources are drawn from the
 * shared read files: two copies of one source at once may meet on its lock. Those answers
 * (409 CONFLICT, 423 PATH_LOCKED) are the expected conflicts, counted apart from errors.
 */
import { randomBytes } from 'node:crypto';
import { now } from './bench-util';

export const SMALL_BYTES = 4 * 1024;
export const MEDIUM_BYTES = 1024 * 1024;
/** Read files seeded before the run: small ones and medium ones, under `r/`. */
export const READ_SMALL = 48;
export const READ_MEDIUM = 16;
/** Directories the puts spread over (`w/00` …), made in the seed phase. */
export const PUT_DIRS = 16;

export const KINDS = ['put-small', 'put-medium', 'get', 'get-range', 'stat', 'head', 'list', 'mkdir', 'copy', 'move', 'delete'] as const;
export type OpKind = (typeof KINDS)[number];
/** Kinds that only read (the baseline replays them against the static server). */
export const READ_KINDS: ReadonlySet<OpKind> = new Set(['get', 'get-range', 'head']);

/** Share of each kind in the mix, in percent. */
const WEIGHTS: Record<OpKind, number> = {
  'put-small': 18,
  'put-medium': 4,
  get: 20,
  'get-range': 10,
  stat: 10,
  head: 6,
  list: 6,
  mkdir: 6,
  copy: 7,
  move: 7,
  delete: 6,
};

export interface Op {
  i: number;
  kind: OpKind;
  /** Mount-relative path the op acts on (the source of a copy or move). */
  path: string;
  /** Target of copy / move. */
  to?: string;
  /** First and last byte of a Range get. */
  range?: [number, number];
}

/** A small deterministic PRNG (mulberry32): the same plan every run. */
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

export const readFile = (k: number) => (k < READ_SMALL ? `r/s-${k}.bin` : `r/m-${k - READ_SMALL}.bin`);
export const readFileSize = (k: number) => (k < READ_SMALL ? SMALL_BYTES : MEDIUM_BYTES);
const pad = (n: number) => String(n).padStart(2, '0');

/** The plan: `count` ops in a fixed pseudo-random order, plus the victims moves and deletes consume. */
export function planOps(count: number): { ops: Op[]; victims: string[] } {
  const rnd = prng(0x5eed);
  const total = Object.values(WEIGHTS).reduce((a, b) => a + b, 0);
  const pick = (): OpKind => {
    let x = rnd() * total;
    for (const k of KINDS) if ((x -= WEIGHTS[k]) < 0) return k;
    return 'get';
  };
  const anyRead = () => Math.floor(rnd() * (READ_SMALL + READ_MEDIUM));
  const victims: string[] = [];
  const ops: Op[] = [];
  for (let i = 0; i < count; i++) {
    const kind = pick();
    const dir = `w/${pad(i % PUT_DIRS)}`;
    switch (kind) {
      case 'put-small':
        ops.push({ i, kind, path: `${dir}/s-${i}.bin` });
        break;
      case 'put-medium':
        ops.push({ i, kind, path: `${dir}/m-${i}.bin` });
        break;
      case 'get':
      case 'stat':
      case 'head':
        ops.push({ i, kind, path: readFile(anyRead()) });
        break;
      case 'get-range': {
        const k = anyRead();
        const first = Math.floor(rnd() * (readFileSize(k) - SMALL_BYTES));
        ops.push({ i, kind, path: readFile(k), range: [first, first + SMALL_BYTES - 1] });
        break;
      }
      case 'list':
        ops.push({ i, kind, path: rnd() < 0.5 ? 'r' : `w/${pad(Math.floor(rnd() * PUT_DIRS))}` });
        break;
      case 'mkdir':
        ops.push({ i, kind, path: `d/${i}` });
        break;
      case 'copy':
        ops.push({ i, kind, path: readFile(Math.floor(rnd() * READ_SMALL)), to: `c/${i}.bin` });
        break;
      case 'move':
        victims.push(`v/${i}.bin`);
        ops.push({ i, kind, path: `v/${i}.bin`, to: `m/${i}.bin` });
        break;
      case 'delete':
        victims.push(`v/${i}.bin`);
        ops.push({ i, kind, path: `v/${i}.bin` });
        break;
    }
  }
  return { ops, victims };
}

/** How one call ended. */
export type Outcome = 'ok' | 'conflict' | 'error';

export interface OpResult {
  kind: OpKind;
  ms: number;
  outcome: Outcome;
  status: number;
  /** Problem code, or the network error's message. */
  code?: string;
}

/** Where the API is and who calls it. */
export interface ApiTarget {
  url: string;
  mount: string;
  token: string;
}

const medium = randomBytes(MEDIUM_BYTES);

/** A body of `bytes` bytes unique to `i` (content is never the same twice, so no write is a no-op). */
export function bodyOf(bytes: number, i: number): Buffer {
  const b = bytes === MEDIUM_BYTES ? Buffer.from(medium) : randomBytes(bytes);
  b.writeUInt32BE(i, 0);
  b.writeUInt32BE(Date.now() % 0xffffffff, 4);
  return b;
}

const enc = (p: string) => p.split('/').map(encodeURIComponent).join('/');

/** The request of one op against the API. */
function apiRequest(t: ApiTarget, op: Op): { url: string; init: RequestInit } {
  const base = `${t.url}/v1/mounts/${encodeURIComponent(t.mount)}`;
  const auth = { authorization: `Bearer ${t.token}` };
  const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  switch (op.kind) {
    case 'put-small':
    case 'put-medium': {
      const body = bodyOf(op.kind === 'put-small' ? SMALL_BYTES : MEDIUM_BYTES, op.i);
      return { url: `${base}/files/${enc(op.path)}`, init: { method: 'PUT', headers: { ...auth, 'content-type': 'application/octet-stream' }, body } };
    }
    case 'get':
      return { url: `${base}/files/${enc(op.path)}`, init: { headers: auth } };
    case 'get-range':
      return { url: `${base}/files/${enc(op.path)}`, init: { headers: { ...auth, range: `bytes=${op.range![0]}-${op.range![1]}` } } };
    case 'head':
      return { url: `${base}/files/${enc(op.path)}`, init: { method: 'HEAD', headers: auth } };
    case 'stat':
      return { url: `${base}/nodes/${enc(op.path)}`, init: { headers: auth } };
    case 'list':
      return { url: `${base}/list/${enc(op.path)}?limit=100`, init: { headers: auth } };
    case 'mkdir':
      return { url: `${base}/mkdir`, init: json({ path: op.path }) };
    case 'copy':
      return { url: `${base}/copy`, init: json({ from: op.path, to: op.to }) };
    case 'move':
      return { url: `${base}/move`, init: json({ from: op.path, to: op.to }) };
    case 'delete':
      return { url: `${base}/files/${enc(op.path)}`, init: { method: 'DELETE', headers: auth } };
  }
}

/** The same read against the static baseline server (files at the mount's root). */
function staticRequest(baseUrl: string, op: Op): { url: string; init: RequestInit } {
  const url = `${baseUrl}/${enc(op.path)}`;
  if (op.kind === 'head') return { url, init: { method: 'HEAD' } };
  if (op.kind === 'get-range') return { url, init: { headers: { range: `bytes=${op.range![0]}-${op.range![1]}` } } };
  return { url, init: {} };
}

const EXPECTED_CONFLICTS = new Set(['CONFLICT', 'PATH_LOCKED']);

/** Sends one request, reads the whole answer, and classifies it. */
async function timed(kind: OpKind, url: string, init: RequestInit, expectStatus: number): Promise<OpResult> {
  const t0 = now();
  try {
    const res = await fetch(url, init);
    const body = Buffer.from(await res.arrayBuffer());
    const ms = now() - t0;
    if (res.status === expectStatus) return { kind, ms, outcome: 'ok', status: res.status };
    let code: string | undefined;
    try {
      code = (JSON.parse(body.toString('utf8')) as { code?: string }).code;
    } catch {
      code = undefined;
    }
    return { kind, ms, outcome: code && EXPECTED_CONFLICTS.has(code) ? 'conflict' : 'error', status: res.status, code };
  } catch (err) {
    return { kind, ms: now() - t0, outcome: 'error', status: 0, code: (err as Error).message };
  }
}

const expected = (kind: OpKind) => (kind === 'get-range' ? 206 : 200);

/** Runs one op against the API. */
export function runApiOp(t: ApiTarget, op: Op): Promise<OpResult> {
  const { url, init } = apiRequest(t, op);
  return timed(op.kind, url, init, expected(op.kind));
}

/** Runs one read op against the static baseline server. */
export function runStaticOp(baseUrl: string, op: Op): Promise<OpResult> {
  const { url, init } = staticRequest(baseUrl, op);
  return timed(op.kind, url, init, expected(op.kind));
}
