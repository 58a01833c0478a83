/**
 * How every mutating route answers: `Prefer: respond-async` → 202 with the run (workflow id, key,
 * status URL, `Location`); otherwise the call waits for the mutation and answers its result, or
 * its typed failure as a problem. The `Idempotency-Key` header is the mutation's idempotency key:
 * a retried request with the same key joins or answers the same mutation, never a second one.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { MutationHandle } from '../client/mutation-starter';
import { FilestoreError, InvalidRequestError } from '../errors';
import { IDEMPOTENCY_KEY_PATTERN } from '../mutations';

/** The request's idempotency key (its header), or a fresh one. */
export function idempotencyKeyOf(req: FastifyRequest): string {
  const raw = req.headers['idempotency-key'];
  if (raw === undefined) return randomUUID();
  const key = Array.isArray(raw) ? raw[0] : raw;
  if (Array.isArray(raw) && raw.length > 1) throw new InvalidRequestError('send one Idempotency-Key header');
  if (key === undefined || !IDEMPOTENCY_KEY_PATTERN.test(key)) {
    throw new InvalidRequestError('Idempotency-Key must be 1–128 characters of A-Z a-z 0-9 . _ : -');
  }
  return key;
}

/** Whether the caller asked not to wait (RFC 7240 `Prefer: respond-async`). */
export function prefersAsync(req: FastifyRequest): boolean {
  const prefer = req.headers.prefer;
  const values = (Array.isArray(prefer) ? prefer.join(',') : (prefer ?? '')).split(/[,;]/).map((v) => v.trim().toLowerCase());
  return values.includes('respond-async');
}

/** Status URL of a run. */
export function runUrl(workflowId: string): string {
  return `/v1/runs/${encodeURIComponent(workflowId)}`;
}

/**
 * Answers a started mutation. `settled` runs once the run has ended — after the result (or a typed
 * failure of the run) came back, also in async mode, where it waits in the background; not when
 * waiting itself failed (the run may still go on: what it needs must stay).
 */
export async function answerMutation(req: FastifyRequest, reply: FastifyReply, handle: MutationHandle, settled?: () => Promise<void>): Promise<unknown> {
  const ended = async () => {
    if (settled) await settled().catch((err: unknown) => req.log.warn({ err }, 'cleanup after the run failed'));
  };
  if (prefersAsync(req)) {
    handle.result().then(ended, (err: unknown) => (err instanceof FilestoreError ? ended() : undefined));
    const statusUrl = runUrl(handle.workflowId);
    return reply
      .code(202)
      .header('location', statusUrl)
      .header('preference-applied', 'respond-async')
      .send({ workflowId: handle.workflowId, idempotencyKey: handle.idempotencyKey, statusUrl });
  }
  try {
    const result = await handle.result();
    await ended();
    return reply.code(200).header('location', runUrl(handle.workflowId)).send(result);
  } catch (err) {
    if (err instanceof FilestoreError) await ended();
    throw err;
  }
}
