/**
 * What `put` sends as the PUT body. Everything but a Buffer is streamed: the bytes go out as they
 * are read, so a file of any size uploads in constant memory (the server streams it on into its
 * upload area, never into a workflow payload).
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { InvalidRequestError } from '../../../src/errors';

/**
 * The content of a `put`:
 * - `Buffer` / `Uint8Array` / `string` (UTF-8): in memory already;
 * - a Node `Readable`, any `AsyncIterable<Uint8Array>` or a web `ReadableStream`: streamed;
 * - `{ file }`: a file on this machine, streamed from disk with its size as Content-Length.
 *
 * @example `await fs.put('docs', 'a.bin', { file: '/tmp/a.bin' })` · `await fs.put('docs', 'b.txt', 'text')`
 */
export type PutSource = Uint8Array | string | Readable | AsyncIterable<Uint8Array> | ReadableStream<Uint8Array> | { file: string };

export interface UploadBody {
  body: Uint8Array | AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>;
  /** Sent as Content-Length when known (else the body goes chunked). */
  length?: number;
}

/** Turns a {@link PutSource} into a fetch body; `size` is the caller's declared length for a stream. */
export async function uploadBodyOf(source: PutSource, size?: number): Promise<UploadBody> {
  if (typeof source === 'string') return { body: Buffer.from(source) };
  // isView, not instanceof: a Buffer made in another realm (a Jest sandbox, a vm) is still bytes.
  if (ArrayBuffer.isView(source)) return { body: source as Uint8Array };
  if (isFileSource(source)) {
    const st = await fs.promises.stat(source.file);
    if (!st.isFile()) throw new InvalidRequestError(`${source.file} is not a regular file`, { file: source.file });
    // Opened before the request starts, so a missing file fails here and not as a broken upload.
    const handle = await fs.promises.open(source.file, 'r');
    return { body: handle.createReadStream(), length: st.size };
  }
  if (isWebStream(source)) return { body: source, length: size };
  if (isAsyncIterable(source)) {
    // Node's fetch takes an async iterable of chunks; a Readable is one. Strings become bytes.
    const iterable: AsyncIterable<Uint8Array> = source instanceof Readable && !source.readableObjectMode ? source : bytesOf(source);
    return { body: iterable, length: size };
  }
  throw new InvalidRequestError('put takes a Buffer, a string, a Readable, an AsyncIterable<Uint8Array>, a ReadableStream or { file }');
}

async function* bytesOf(source: AsyncIterable<unknown>): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    if (ArrayBuffer.isView(chunk)) yield chunk as Uint8Array;
    else if (typeof chunk === 'string') yield Buffer.from(chunk);
    else throw new InvalidRequestError(`put stream yielded a ${typeof chunk}; it must yield Uint8Array chunks`);
  }
}

function isFileSource(s: unknown): s is { file: string } {
  return !!s && typeof s === 'object' && typeof (s as { file?: unknown }).file === 'string' && !isAsyncIterable(s);
}

function isWebStream(s: unknown): s is ReadableStream<Uint8Array> {
  return typeof ReadableStream !== 'undefined' && s instanceof ReadableStream;
}

function isAsyncIterable(s: unknown): s is AsyncIterable<unknown> {
  return !!s && typeof (s as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}
