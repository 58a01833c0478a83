/**
 * Child process of bench/api-bench.ts: the baseline of its reads — a bare node:http static file
 * server over a directory (BENCH_STATIC_ROOT), nothing but stat + createReadStream: GET with
 * optional single `Range: bytes=a-b`, and HEAD. No auth, no catalog, no framework; what is left
 * of a read when Filestore is taken away. Prints `{ "url": … }` on stdout once it listens.
 *
 * usage: node --import tsx bench/api-bench-static.ts
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

const root = path.resolve(process.env.BENCH_STATIC_ROOT ?? '.');

const server = http.createServer((req, res) => {
  const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
  const file = path.join(root, rel);
  if (!file.startsWith(root + path.sep)) return void res.writeHead(400).end();
  fs.stat(file, (err, st) => {
    if (err || !st.isFile()) return void res.writeHead(404).end();
    let start = 0;
    let end = st.size - 1;
    let status = 200;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (m) {
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), end) : end;
      if (start > end) return void res.writeHead(416, { 'content-range': `bytes */${st.size}` }).end();
      status = 206;
    }
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/octet-stream', 'content-length': end - start + 1, 'accept-ranges': 'bytes' };
    if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${st.size}`;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') return void res.end();
    fs.createReadStream(file, { start, end }).on('error', () => res.destroy()).pipe(res);
  });
});
server.keepAliveTimeout = 10_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
