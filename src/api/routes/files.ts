/**
 * File routes: upload (PUT, a streaming body of any size in constant memory), download (GET/HEAD
 * through the executor's openRead, with Range, ETag and If-None-Match) and DELETE.
 *
 * An upload is checked before its body is read — token scope, path rules, the mount known and
 * writable — so a refused request stores nothing. The body then streams into the upload area
 * (src/operations/upload-area.ts), is hashed on the way, and only when it arrived whole (length as
 * declared, the connection still sane) does the write mutation start, with the area's file as its
 * source and the hash as `expectedSha256`: the worker commits exactly the bytes that were received.
 * The upload file is removed when the run has ended.
 *
 * Registered in its own fastify scope: no body parser runs here (the handler reads the raw stream),
 * and the JSON parser of the other routes never buffers an upload.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Transform } from 'node:stream';
import { z } from 'zod';
import { getMount } from '../../catalog/mounts';
import { InvalidRequestError, LengthRequiredError, ReadOnlyMountError, UnsupportedMediaTypeError, IncompleteBodyError } from '../../errors';
import { httpDownloadBytes, httpUploadBytes } from '../../metrics';
import { mutationWorkflowId } from '../../mutations';
import { openCurrentFile, parseRange } from '../../operations/read-file';
import { DeleteQuery, MountPathParams, MutationHeaders, Problem, PutQuery } from '../../operations/schemas';
import { normalizeMountPath } from '../../paths';
import { authorize } from '../auth';
import { answerMutation, idempotencyKeyOf } from '../mutation-reply';
import { principalOf, type ApiApp, type ApiDeps } from '../api-context';
import { MUTATION_RESPONSES } from './mutations';
import type { MutationHandle } from '../../client/mutation-starter';

/** An upload whose body sends nothing for this long is cut. */
const UPLOAD_IDLE_MS = 120_000;

/** Body types that are never a file's bytes: a browser form posted here by mistake. */
const FORM_TYPES = /^(multipart\/|application\/x-www-form-urlencoded)/i;

export function registerFileRoutes(app: ApiApp, deps: ApiDeps): void {
  const { client, config, uploads } = deps;
  const tags = ['files'];

  app.removeAllContentTypeParsers();
  // The handler reads the raw request stream itself (constant memory, any size).
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

  app.put(
    '/v1/mounts/:mount/files/*',
    {
      schema: {
        tags,
        summary: 'Upload a file (the raw request body, streamed; any size)',
        params: MountPathParams,
        querystring: PutQuery,
        headers: MutationHeaders,
        consumes: ['application/octet-stream'],
        response: MUTATION_RESPONSES,
      },
    },
    async (req, reply) => {
      const mountId = req.params.mount;
      authorize(principalOf(req), { mountId, write: true });
      const filePath = normalizeMountPath(req.params['*']);
      const contentType = req.headers['content-type'] ?? '';
      if (FORM_TYPES.test(contentType)) throw new UnsupportedMediaTypeError(contentType, 'the file bytes as the body (application/octet-stream)');
      const declared = req.headers['content-length'];
      const chunked = /\bchunked\b/i.test(req.headers['transfer-encoding'] ?? '');
      if (declared === undefined && !chunked) throw new LengthRequiredError();
      const mount = await getMount(deps.db, mountId);
      if (mount.options.readOnly === true) throw new ReadOnlyMountError(mountId);
      const q = req.query;
      const key = idempotencyKeyOf(req);
      const workflowId = mutationWorkflowId(mountId, 'write', key);

      // The connection may have gone while the mount was looked up: a destroyed request never ends (its 'close' has passed).
      if (req.raw.destroyed) throw new IncompleteBodyError('the client closed the connection before the upload began; nothing was stored');
      const body = req.raw.pipe(new Transform({ transform: (chunk: Buffer, _e, done) => (httpUploadBytes.inc({ mount: mountId }, chunk.length), done(null, chunk)) }));
      req.raw.once('close', () => {
        if (!req.raw.complete) body.destroy(new IncompleteBodyError('the client closed the connection mid-upload; nothing was stored'));
      });
      req.raw.once('error', (err: Error) => body.destroy(err));
      // A body that stops arriving ends the upload (the server itself has no request timeout: a
      // waiting mutation may take long, an upload that sends nothing may not).
      req.raw.setTimeout(UPLOAD_IDLE_MS, () => req.raw.destroy(new IncompleteBodyError(`no upload bytes for ${UPLOAD_IDLE_MS / 1000} s; nothing was stored`)));
      const received = await uploads.receive(body, {
        workflowId,
        maxBytes: config.maxFileBytes,
        ...(declared !== undefined && !chunked ? { expectedBytes: Number(declared) } : {}),
      });
      req.raw.setTimeout(0);
      let handle: MutationHandle;
      try {
        // Bytes past the declared body reach the HTTP parser as a malformed next request, which
        // answers 400 and ends the connection: such a request is not trusted to have said what it meant.
        await nextTurn();
        if (req.raw.socket?.destroyed || req.raw.socket?.writableEnded) {
          throw new IncompleteBodyError('the connection broke as the body ended (bytes past the declared length?); nothing was stored');
        }
        if (q.sha256 !== undefined && q.sha256.toLowerCase() !== received.sha256) {
          throw new InvalidRequestError(`the body hashes to ${received.sha256}, not the sha256 given (${q.sha256}); nothing was stored`, { sha256: received.sha256 });
        }
        handle = await client.put(
          mountId,
          filePath,
          received.source,
          {
            idempotencyKey: key,
            overwrite: q.overwrite,
            createParents: q.parents,
            mode: q.mode === undefined ? undefined : parseInt(q.mode, 8),
            expectedSha256: received.sha256,
            force: q.force,
            waitForLock: q.waitForLock,
          },
        );
      } catch (err) {
        // Not started by this request; an identical earlier one (same key, same content, same file) may have a run reading it.
        await uploads.releaseUnlessRunning(received.ref, workflowId, (id) => client.isRunning(id)).catch(() => undefined);
        throw err;
      }
      // A run that started releases its upload once it has ended (see answerMutation).
      return answerMutation(req, reply, handle, () => uploads.release(received.ref));
    },
  );

  // GET and HEAD as one route: fastify's generated HEAD route would answer Content-Length: 0.
  app.route({
    method: ['GET', 'HEAD'],
    url: '/v1/mounts/:mount/files/*',
    exposeHeadRoute: false,
    schema: {
      tags,
      summary: 'Download a file (Range, ETag / If-None-Match); HEAD for its headers only',
      params: MountPathParams,
      headers: z.object({ range: z.string().max(256).optional(), 'if-none-match': z.string().max(4096).optional() }).passthrough(),
      produces: ['application/octet-stream'],
      response: { 200: z.any().describe('The file bytes'), 206: z.any().describe('The requested range'), 304: z.any(), '4xx': Problem },
    },
    handler: async (req, reply) => {
      const mountId = req.params.mount;
      authorize(principalOf(req), { mountId, write: false });
      const abort = new AbortController();
      req.raw.once('close', () => abort.abort());
      let length = 0;
      // The version's headers, then that very version opened (re-stated if it changed in between):
      // an ETag and a length are never sent with another version's bytes.
      const { stream } = await openCurrentFile(
        { db: deps.db, executors: deps.executors },
        mountId,
        req.params['*'],
        (version) => {
          const size = version.meta.size;
          reply.header('etag', version.etag).header('accept-ranges', 'bytes').header('cache-control', 'private, no-cache');
          if (version.meta.mtime) reply.header('last-modified', new Date(version.meta.mtime).toUTCString());
          if (matchesEtag(req.headers['if-none-match'], version.etag)) {
            // An earlier attempt (a version that changed before it was opened) may have set these.
            for (const h of ['content-length', 'content-range', 'content-type']) reply.removeHeader(h);
            reply.code(304);
            return null;
          }
          // If-Range (RFC 9110 §13.1.5): a resumed download gets the rest only of the version it
          // began; another version answers whole. Strong comparison: a weak tag never matches.
          const ifRange = req.headers['if-range'];
          const rangeApplies = ifRange === undefined || (ifRange.trim() === version.etag && !version.etag.startsWith('W/'));
          const range = rangeApplies ? parseRange(req.headers.range, size) : null;
          reply.header('content-type', 'application/octet-stream');
          if (range) reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${size}`);
          else reply.code(200).removeHeader('content-range');
          length = range ? range.end - range.start + 1 : size;
          reply.header('content-length', String(length));
          if (req.method === 'HEAD' || length === 0) return null;
          return range ? { range } : {};
        },
        abort.signal,
      );
      if (!stream) return reply.send();
      // Count what goes out: a file written in place while it streams (same inode, so the open's
      // check passed) must not complete under the announced length — a surplus or a shortfall cuts
      // the connection instead.
      let sent = 0;
      const guard = new Transform({
        transform(chunk: Buffer, _e, done) {
          sent += chunk.length;
          if (sent > length) return done(new Error('file grew while it was read'));
          httpDownloadBytes.inc({ mount: mountId }, chunk.length);
          done(null, chunk);
        },
        flush(done) {
          done(sent === length ? null : new Error('file shrank while it was read'));
        },
      });
      stream.once('error', (err) => guard.destroy(err));
      return reply.send(stream.pipe(guard));
    },
  });

  app.delete(
    '/v1/mounts/:mount/files/*',
    { schema: { tags, summary: 'Delete a file, or a directory tree with recursive=true', params: MountPathParams, querystring: DeleteQuery, headers: MutationHeaders, response: MUTATION_RESPONSES } },
    async (req, reply) => {
      authorize(principalOf(req), { mountId: req.params.mount, write: true });
      const handle = await client.remove(req.params.mount, req.params['*'], {
        idempotencyKey: idempotencyKeyOf(req),
        recursive: req.query.recursive,
        force: req.query.force,
        waitForLock: req.query.waitForLock,
      });
      return answerMutation(req, reply, handle);
    },
  );
}

/** RFC 9110 If-None-Match: `*` or a list of (weak-compared) entity tags. */
function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  const bare = (t: string) => t.trim().replace(/^W\//, '');
  return header.split(',').some((t) => bare(t) === bare(etag));
}
