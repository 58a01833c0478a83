/**
 * What an idempotency key stands for: the canonical form of a mutation request, and a stable hash
 * of it. The client stores the hash in the workflow's memo at start (so a second start under the
 * same key can tell "the same request again" from "a different request") and the journal compares
 * the canonical form when a later run meets an existing entry. Both must agree, so both use this
 * one module.
 *
 * Not for workflow code: the hash uses node:crypto. Everything else here is pure.
 */
import { createHash } from 'node:crypto';
import type { MutationRequest } from './mutations';

/** Memo key under which the client records {@link requestFingerprint} on every mutation workflow. */
export const FINGERPRINT_MEMO_KEY = 'filestoreRequestSha256';

/**
 * The request as it is compared for idempotency and stored in the journal. Routing and waiting
 * fields are dropped: they do not change what the mutation does (`mountTaskQueue` is ignored
 * anyway — routing comes from the catalog), so a retry that waits longer is still the same request.
 */
export function canonicalRequest(req: MutationRequest): Record<string, unknown> {
  const { mountTaskQueue: _q, waitForLock: _w, lockTimeoutMs: _t, ...rest } = req as MutationRequest & { mountTaskQueue?: unknown };
  // An upload-area object's name is where the bytes wait (a fresh name per upload), not what they
  // are: the same content (expectedSha256) under the same key is the same request.
  if (rest.op === 'write' && rest.source?.kind === 'upload') return JSON.parse(JSON.stringify({ ...rest, source: { kind: 'upload' } }));
  return JSON.parse(JSON.stringify(rest));
}

/** JSON with sorted keys and undefined members dropped: jsonb does not keep key order, so compare this form. */
export function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Hex sha256 of the canonical request: equal for the same request however its keys are ordered or
 * whatever it says about waiting and routing; different for any change in what it would do.
 */
export function requestFingerprint(req: MutationRequest): string {
  return createHash('sha256').update(stableStringify(canonicalRequest(req))).digest('hex');
}
