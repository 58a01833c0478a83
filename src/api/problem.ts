/**
 * Errors as `application/problem+json` (RFC 9457), carrying Filestore's stable error code: one
 * HTTP status per code, from ERROR_STATUS beside the error classes (src/errors.ts). Fastify's own
 * refusals (validation, content type, body size, malformed JSON, unknown routes, malformed HTTP)
 * are mapped onto the same codes, so every refusal a client sees has the one shape.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import type { Socket } from 'node:net';
import {
  FilestoreError,
  HeadersTooLargeError,
  IncompleteBodyError,
  InternalError,
  InvalidRequestError,
  PayloadTooLargeError,
  RouteNotFoundError,
  statusOf,
  toErrorInfo,
  UnsupportedMediaTypeError,
  type ErrorInfo,
} from '../errors';

export const PROBLEM_TYPE = 'application/problem+json';

/** The problem document of an error. `type` is a stable URI per code (documented in docs/api.md). */
export function problemOf(info: ErrorInfo, instance?: string): Record<string, unknown> {
  const status = statusOf(info.code).http;
  return {
    type: `https://filestore.dev/problems/${info.code.toLowerCase().replace(/_/g, '-')}`,
    title: info.code,
    status,
    detail: info.message,
    code: info.code,
    retryable: info.retryable ?? false,
    ...(info.details && Object.keys(info.details).length ? { details: info.details } : {}),
    ...(instance ? { instance } : {}),
  };
}

/** Maps what fastify or a route threw to a typed Filestore error. */
export function typedErrorOf(err: unknown): FilestoreError {
  if (err instanceof FilestoreError) return err;
  const info = toErrorInfo(err);
  if (info.code !== 'INTERNAL' && (err as { retryable?: unknown }).retryable !== undefined) return err as FilestoreError;
  if (hasZodFastifySchemaValidationErrors(err)) {
    const issues = err.validation.map((v) => ({ where: v.instancePath || (err as FastifyError).validationContext || '', message: v.message }));
    return new InvalidRequestError(`invalid ${(err as FastifyError).validationContext ?? 'request'}: ${issues.map((i) => `${i.where} ${i.message}`.trim()).join('; ')}`, { issues });
  }
  const fe = err as FastifyError;
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UnsupportedMediaTypeError(String((fe as { contentType?: string }).contentType ?? 'this content type'), 'application/json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PayloadTooLargeError('the request body is larger than this route accepts');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new InvalidRequestError('the JSON body is empty');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new InvalidRequestError('Content-Length does not match the body');
    default:
      break;
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    // fastify's other client errors (malformed JSON, bad headers): the request, not the server.
    return new InvalidRequestError(fe.message);
  }
  return new InternalError('internal error; see the server log');
}

/** Fastify error handler: logs server faults (never the request's headers), answers a problem. */
export function sendProblem(err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const typed = typedErrorOf(err);
  const info = typed.toJSON();
  if (statusOf(info.code).http >= 500) req.log.error({ err, code: info.code }, 'request failed');
  if (reply.sent || reply.raw.headersSent) {
    // A download already streaming: the client sees a cut connection, never a wrong end.
    reply.raw.destroy();
    return reply;
  }
  // RFC 9110 §15.5.2: a 401 must name the scheme it wants.
  if (statusOf(info.code).http === 401) reply.header('www-authenticate', 'Bearer realm="filestore"');
  // A refusal is not the file: drop what a download route had set for it.
  for (const h of ['etag', 'last-modified', 'accept-ranges', 'content-range', 'content-length', 'location']) reply.removeHeader(h);
  if (info.code === 'RANGE_NOT_SATISFIABLE' && typeof info.details?.size === 'number') reply.header('content-range', `bytes */${info.details.size}`);
  // A refused request whose body was never read: close rather than drain what may be gigabytes.
  if (req.raw.readable && !req.raw.complete && (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined)) {
    reply.header('connection', 'close');
  }
  return reply
    .code(statusOf(info.code).http)
    .header('content-type', PROBLEM_TYPE)
    .header('cache-control', 'no-store')
    .send(JSON.stringify(problemOf(info, req.url.split('?')[0])));
}

export function notFound(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendProblem(new RouteNotFoundError(req.method, req.url.split('?')[0] ?? ''), req, reply);
}

/**
 * Malformed HTTP (oversize headers, a bad request line, bytes past a declared body): answered on
 * the socket as a problem, since no request object exists.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
  // A request on this connection is being answered (its headers were parsed): the fault is in its
  // body — cut short, or followed by bytes past its declared length.
  const midRequest = (socket as Socket & { _httpMessage?: unknown })._httpMessage != null;
  const error = tooLarge
    ? new HeadersTooLargeError()
    : midRequest
      ? new IncompleteBodyError('the request body did not match its declared length (cut short, or followed by extra bytes); nothing was stored')
      : new InvalidRequestError('malformed HTTP request');
  const problem = problemOf(error.toJSON());
  const status = problem.status as number;
  const body = JSON.stringify(problem);
  socket.end(
    `HTTP/1.1 ${status} ${tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: ${PROBLEM_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
