/**
 * A byte-counting TCP proxy in front of the S3 server, for the resume part of bench/s3-bench.ts:
 * it counts every byte any client (a Filestore worker, a lib-storage child, rclone) sends towards
 * S3, so "bytes sent" is measured on the wire, the same way for every uploader, whatever its own
 * counters say. Plain TCP: requests pass through byte for byte, so SigV4 signatures (which cover
 * the Host header the client used, this proxy's address) stay valid.
 */
import net from 'node:net';

export interface CountingProxy {
  /** `http://127.0.0.1:<port>`: give it to clients as their S3 endpoint. */
  endpoint: string;
  /** Bytes clients sent upstream since the last reset (request lines, headers and bodies). */
  sent(): number;
  reset(): void;
  /** Resolves once `sent()` reaches `bytes` (checked on every chunk). */
  whenSent(bytes: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts a proxy on a free loopback port forwarding to `target` (an http:// URL). */
export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const upstream = new URL(target);
  const upstreamPort = Number(upstream.port || 80);
  let sent = 0;
  let waiters: Array<{ bytes: number; resolve: () => void }> = [];
  const sockets = new Set<net.Socket>();

  const server = net.createServer((client) => {
    const remote = net.connect(upstreamPort, upstream.hostname);
    sockets.add(client);
    sockets.add(remote);
    client.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      if (waiters.length) {
        const due = waiters.filter((w) => sent >= w.bytes);
        waiters = waiters.filter((w) => sent < w.bytes);
        for (const w of due) w.resolve();
      }
    });
    client.pipe(remote);
    remote.pipe(client);
    // A killed client (kill -9) resets its sockets: tear down the pair, never crash the bench.
    const end = () => {
      client.destroy();
      remote.destroy();
      sockets.delete(client);
      sockets.delete(remote);
    };
    client.on('error', end);
    remote.on('error', end);
    client.on('close', end);
    remote.on('close', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    sent: () => sent,
    reset: () => {
      sent = 0;
    },
    whenSent: (bytes) => (sent >= bytes ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ bytes, resolve }))),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
