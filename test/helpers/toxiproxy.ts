/**
 * A private Toxiproxy server for one test file: the real `toxiproxy-server` binary (see
 * {@link toxiproxyBinary}) on a free loopback port, proxies created through its HTTP API, toxics
 * added and removed while a test runs. Connection faults happen in a real TCP proxy, so the client
 * under test sees real resets, stalls and cut streams — nothing in it is mocked.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { toxiproxyBinary } from './s3';
import { waitFor } from './wait';
import { freePort } from '../../src/dev/free-port';

/** The toxics of Toxiproxy 2.5 (https://github.com/Shopify/toxiproxy#toxics). */
export type ToxicType = 'latency' | 'bandwidth' | 'slow_close' | 'timeout' | 'reset_peer' | 'slicer' | 'limit_data';

export interface Toxic {
  /** Unique per proxy; defaults to `<type>_<stream>`. */
  name?: string;
  type: ToxicType;
  /** `downstream`: server → client; `upstream`: client → server. @defaultValue 'downstream' */
  stream?: 'upstream' | 'downstream';
  /** Share of connections the toxic applies to, drawn once per connection. @defaultValue 1 */
  toxicity?: number;
  /** Per type: latency {latency, jitter} ms; bandwidth {rate} KB/s; timeout / reset_peer {timeout} ms; limit_data {bytes}; slicer {average_size, size_variation, delay}. */
  attributes: Record<string, number>;
}

/** One TCP proxy: `listen` is the address clients connect to instead of `upstream`. */
export interface ToxiProxy {
  name: string;
  /** `host:port` the proxy listens on. */
  listen: string;
  upstream: string;
  /** Adds a toxic; answers its name (for {@link ToxiProxy.removeToxic}). */
  addToxic(toxic: Toxic): Promise<string>;
  removeToxic(name: string): Promise<void>;
  /** Removes every toxic of this proxy. */
  clearToxics(): Promise<void>;
  /** Disabled: the proxy closes every connection and refuses new ones (a server that is gone). */
  setEnabled(enabled: boolean): Promise<void>;
}

export interface ToxiproxyServer {
  /** `http://127.0.0.1:<port>`: the server's HTTP API. */
  api: string;
  /** A proxy named `name` on a free loopback port in front of `upstream` (`host:port`). */
  createProxy(name: string, upstream: string): Promise<ToxiProxy>;
  /** Stops the server (every proxy with it). Idempotent. */
  stop(): Promise<void>;
}


/** `host:port` of an `http://host:port` endpoint. */
export function hostPortOf(endpoint: string): string {
  const u = new URL(endpoint);
  return `${u.hostname}:${u.port || (u.protocol === 'https:' ? 443 : 80)}`;
}

async function api(base: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? undefined : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`toxiproxy ${method} ${path}: HTTP ${res.status} ${text.trim()}`);
  return text ? JSON.parse(text) : null;
}

/**
 * Starts `toxiproxy-server` on a free loopback port and waits until its API answers. Stop it in
 * `afterAll`; a server whose test process dies goes with it (the child is killed on exit).
 */
export async function startToxiproxy(): Promise<ToxiproxyServer> {
  // The API port is chosen here and handed over: Toxiproxy cannot report one it picked itself.
  let child: ChildProcess | null = null;
  let base = '';
  let stderr = '';
  for (let attempt = 0; attempt < 3 && !child; attempt++) {
    const port = await freePort();
    const proc = spawn(toxiproxyBinary(), ['-host', '127.0.0.1', '-port', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr!.on('data', (d: Buffer) => {
      // Its log goes to stderr; keep the tail for an error message, not the whole run's chatter.
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const exited = new Promise<null>((r) => proc.once('exit', () => r(null)));
    const url = `http://127.0.0.1:${port}`;
    const up = await Promise.race([
      waitFor('toxiproxy API', async () => (await fetch(`${url}/version`).then((r) => r.ok).catch(() => false)) || null, 10_000, 50).catch(() => null),
      exited,
    ]);
    if (up) {
      child = proc;
      base = url;
    } else {
      proc.kill('SIGKILL');
    }
  }
  if (!child) throw new Error(`toxiproxy-server did not start: ${stderr.trim()}`);
  const proc = child;
  const killOnExit = () => proc.kill('SIGKILL');
  process.once('exit', killOnExit);

  const server: ToxiproxyServer = {
    api: base,
    async createProxy(name, upstream) {
      const created = (await api(base, 'POST', '/proxies', { name, listen: '127.0.0.1:0', upstream, enabled: true })) as { listen: string };
      const toxics = new Set<string>();
      return {
        name,
        listen: created.listen,
        upstream,
        async addToxic(t) {
          const stream = t.stream ?? 'downstream';
          const toxicName = t.name ?? `${t.type}_${stream}`;
          await api(base, 'POST', `/proxies/${name}/toxics`, { name: toxicName, type: t.type, stream, toxicity: t.toxicity ?? 1, attributes: t.attributes });
          toxics.add(toxicName);
          return toxicName;
        },
        async removeToxic(toxicName) {
          await api(base, 'DELETE', `/proxies/${name}/toxics/${toxicName}`);
          toxics.delete(toxicName);
        },
        async clearToxics() {
          const all = (await api(base, 'GET', `/proxies/${name}/toxics`)) as { name: string }[];
          for (const t of all) await api(base, 'DELETE', `/proxies/${name}/toxics/${t.name}`);
          toxics.clear();
        },
        async setEnabled(enabled) {
          await api(base, 'POST', `/proxies/${name}`, { enabled });
        },
      };
    },
    async stop() {
      process.removeListener('exit', killOnExit);
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const gone = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 3_000);
      await gone;
      clearTimeout(timer);
    },
  };
  return server;
}

