/**
 * `@filestore/client` — the lean client of Filestore's HTTP API.
 *
 * Depends on nothing of the server (no database driver, no worker, no watcher, no AWS SDK): reads
 * and writes go through the API with Node's fetch; `@temporalio/client` is loaded only by a
 * client given `temporal` options, to await mutations through Temporal. The request/result types
 * and the error classes are the server's own, compiled into this package.
 *
 * @example
 * ```ts
 * import { Filestore, isFilestoreError } from '@filestore/client';
 *
 * const fs = new Filestore({ url: 'http://127.0.0.1:8080', token: process.env.FILESTORE_TOKEN });
 * await (await fs.put('docs', 'hello.txt', Buffer.from('hi'))).result();
 * try {
 *   await fs.get('docs', 'nope.txt');
 * } catch (err) {
 *   if (isFilestoreError(err)) console.log(err.code, err.status, err.retryable); // NOT_FOUND 404 false
 * }
 * ```
 *
 * @packageDocumentation
 */
export { Filestore } from './filestore';
export type { AddMountInput, DriftQuery, FilestoreOptions, JournalQuery, ListOptions, MutationOptions, PutOptions, ReadOptions, TransferOptions } from './options';
export type { MutationHandle, PollOptions, TemporalOptions } from './handles';
export type { PutSource } from './upload-body';
export { errorFromInfoLike, errorFromWorkflowFailure, isFilestoreError } from './errors';
export type { FilestoreClientError, ProblemDetails } from './errors';
export type * from './types';
/** The server's error classes, `ERROR_STATUS` (code → HTTP status / CLI exit code) and helpers. */
export * from '../../../src/errors';
export { IDEMPOTENCY_KEY_PATTERN, mutationWorkflowId } from '../../../src/mutations';
