/**
 * Starting a mutation over Temporal's HTTP API (the frontend's `/api/v1/…` routes), for the CLI:
 * a `filestore put` that loads @temporalio/client spends about 0.3 s building the SDK's protobuf
 * types before its first byte goes out, longer than the whole workflow takes. Over HTTP a start is
 * one JSON request and the wait one long poll for the run's close event, both with node:http
 * (`fetch` alone costs ~0.1 s to load).
 *
 * Only the common path is done here. Everything else goes to the gRPC client, loaded then, which
 * applies the SDK's own rules, so the outcome is the same either way:
 *  - the start is answered by anything but a new run (ALREADY_STARTED — a retry with the same key
 *    joins the running request or is refused by its fingerprint —, an error, something that is not
 *    Temporal): the start is made over gRPC. A start sent but not answered (a timeout, a reset) is
 *    first sent again over HTTP with the same request id, which the server answers with the run
 *    the first one created, if it did; only then over gRPC, where the same workflow id finds that
 *    run while it is open and the journal answers for it once it has closed;
 *  - a run started over gRPC is waited for over gRPC;
 *  - the run closes other than completed (failed with a typed error, cancelled, terminated, timed
 *    out, continued as new), or the wait breaks off or gets answers that are not Temporal's: the
 *    result is read over gRPC (toFilestoreError turns a failure back into its typed FilestoreError);
 *  - progress(): over gRPC.
 * The wait asks for the run this start created (its run id), never just the latest run of the id.
 * Connecting has its own short timeout, and an answer larger than 8 MiB is dropped, so an address
 * that swallows packets or answers without end costs seconds, not minutes.
 * Payloads travel as the SDK writes them (json/plain, search attributes typed Keyword), with
 * `noPayloadShorthand`, so a run started here looks exactly like one the SDK started.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import os from 'node:os';
import type { MutationResult } from '../mutations';
import type { MutationHandle, StartSpec, StartTransport } from './mutation-starter';

interface Payload {
  metadata?: Record<string, string>;
  data?: string;
}

const b64 = (text: string) => Buffer.from(text).toString('base64');
const JSON_PLAIN = b64('json/plain');

/** A payload as the SDK's default converter writes one: JSON, `json/plain` (and a search attribute's `type`). */
export function jsonPayload(value: unknown, type?: string): Payload {
  return { metadata: { encoding: JSON_PLAIN, ...(type ? { type: b64(type) } : {}) }, data: b64(JSON.stringify(value)) };
}

/** The value of a `json/plain` payload; undefined for anything else (another encoding, no payload). */
export function decodeJsonPayload(p: Payload | undefined): { value: unknown } | undefined {
  if (!p || p.metadata?.encoding !== JSON_PLAIN) return undefined;
  return { value: JSON.parse(Buffer.from(p.data ?? '', 'base64').toString('utf8')) };
}

/** StartWorkflowExecution's JSON body for a spec (see the header). */
export function startBody(spec: StartSpec, namespace: string, identity: string): Record<string, unknown> {
  return {
    namespace,
    workflowId: spec.workflowId,
    workflowType: { name: 'mutationWorkflow' },
    taskQueue: { name: spec.taskQueue, kind: 'TASK_QUEUE_KIND_NORMAL' },
    input: { payloads: [jsonPayload(spec.request)] },
    identity,
    requestId: randomUUID(),
    // As FilestoreClient.startRun: never attach blindly; a closed run's id may start again.
    workflowIdReusePolicy: 'WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE',
    workflowIdConflictPolicy: 'WORKFLOW_ID_CONFLICT_POLICY_FAIL',
    memo: { fields: Object.fromEntries(Object.entries(spec.memo).map(([k, v]) => [k, jsonPayload(v)])) },
    searchAttributes: { indexedFields: Object.fromEntries(Object.entries(spec.searchAttributes).map(([k, v]) => [k, jsonPayload(v, 'Keyword')])) },
    userMetadata: { summary: jsonPayload(spec.summary), details: jsonPayload(spec.details) },
  };
}

/** The most of an answer read (a close event is a few KiB; the start answer less). */
const MAX_ANSWER_BYTES = 8 * 1024 * 1024;
/** How long connecting to the HTTP API may take before the request counts as unanswered. */
const CONNECT_TIMEOUT_MS = 2_000;

/**
 * One JSON request; rejects only when no full HTTP answer came (refused, reset, timed out, too
 * large) — with the error's `code` (ECONNREFUSED: nothing listens, so nothing was sent).
 */
function requestJson(url: URL, agent: http.Agent, method: 'GET' | 'POST', body: unknown, timeoutMs: number): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(url, { method, agent, headers: { accept: 'application/json', ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_ANSWER_BYTES) req.destroy(new Error(`an answer of more than ${MAX_ANSWER_BYTES} bytes from ${url.origin}`));
        else chunks.push(c);
      });
      res.on('error', reject);
      res.on('end', () => {
        let json: unknown = null;
        try {
          json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          // Not JSON: not Temporal's HTTP API; the status and a null body say so.
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.on('socket', (socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(() => req.destroy(Object.assign(new Error(`no connection to ${url.origin} within ${CONNECT_TIMEOUT_MS} ms`), { code: 'ETIMEDOUT' })), CONNECT_TIMEOUT_MS);
      socket.once('connect', () => clearTimeout(timer));
      socket.once('close', () => clearTimeout(timer));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from ${url.origin} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** How long one long poll for the close event may stay open (the server answers within ~20 s). */
const LONG_POLL_MS = 70_000;
const START_TIMEOUT_MS = 10_000;
/** Empty pages answered faster than this, this many times in a row: not a long poll, so not Temporal. */
const QUICK_EMPTY_MS = 1_000;
const MAX_QUICK_EMPTY = 3;

export class HttpStartTransport implements StartTransport {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  private readonly identity = `${process.pid}@${os.hostname()} (filestore cli, http)`;
  private grpcTransport: Promise<StartTransport> | undefined;
  /** Run ids of the starts this transport made over HTTP, by workflow id: what its waits ask for. */
  private readonly startedRuns = new Map<string, string>();

  /**
   * @param baseUrl - the frontend's HTTP API, e.g. http://127.0.0.1:7243 (FILESTORE_TEMPORAL_HTTP_URL)
   * @param grpc - the gRPC transport (a connected FilestoreClient), opened only when needed
   */
  constructor(
    private readonly baseUrl: string,
    private readonly namespace: string,
    grpc: () => Promise<StartTransport>,
  ) {
    this.grpc = () => (this.grpcTransport ??= grpc());
  }

  private readonly grpc: () => Promise<StartTransport>;

  /** Whether the last start went over HTTP (true) or had to be made over gRPC (false); for tests and logs. */
  lastStartOverHttp: boolean | null = null;

  private url(workflowId: string, suffix: string, query: Record<string, string>): URL {
    const url = new URL(`/api/v1/namespaces/${encodeURIComponent(this.namespace)}/workflows/${encodeURIComponent(workflowId)}${suffix}`, this.baseUrl);
    url.searchParams.set('noPayloadShorthand', 'true');
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    return url;
  }

  async start(spec: StartSpec): Promise<void> {
    const body = startBody(spec, this.namespace, this.identity);
    const url = this.url(spec.workflowId, '', {});
    // A start that got no answer is sent once more with the same request id (see the header).
    for (let attempt = 0; attempt < 2; attempt++) {
      let answer: { status: number; json: unknown };
      try {
        answer = await requestJson(url, this.agent, 'POST', body, START_TIMEOUT_MS);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') break;
        continue;
      }
      const runId = (answer.json as { runId?: unknown } | null)?.runId;
      if (answer.status === 200 && typeof runId === 'string' && runId !== '') {
        this.startedRuns.set(spec.workflowId, runId);
        this.lastStartOverHttp = true;
        return;
      }
      break;
    }
    this.startedRuns.delete(spec.workflowId);
    this.lastStartOverHttp = false;
    await (await this.grpc()).start(spec);
  }

  handleOf(workflowId: string): MutationHandle {
    return {
      workflowId,
      idempotencyKey: workflowId.split(':').slice(3).join(':'),
      result: () => this.result(workflowId),
      progress: async () => (await this.grpc()).handleOf(workflowId).progress(),
    };
  }

  /** Whether the last result came over HTTP (true) or from the gRPC client (false); for tests and logs. */
  lastResultOverHttp: boolean | null = null;

  /**
   * The close event of the run this transport started under `workflowId`, by long poll; a
   * completed run's result, else (and for a run started elsewhere) the gRPC client's answer.
   */
  private async result(workflowId: string): Promise<MutationResult> {
    const runId = this.startedRuns.get(workflowId);
    if (runId !== undefined) {
      const value = await this.completedOverHttp(workflowId, runId).catch(() => undefined);
      if (value !== undefined) {
        this.lastResultOverHttp = true;
        return value;
      }
    }
    this.lastResultOverHttp = false;
    return (await this.grpc()).handleOf(workflowId).result();
  }

  /** The run's result if it completed; undefined for any other close or any answer that is not Temporal's. */
  private async completedOverHttp(workflowId: string, runId: string): Promise<MutationResult | undefined> {
    let pageToken: string | undefined;
    let quickEmpty = 0;
    for (;;) {
      const query: Record<string, string> = { 'execution.runId': runId, waitNewEvent: 'true', historyEventFilterType: 'HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT' };
      if (pageToken) query.nextPageToken = pageToken;
      const asked = Date.now();
      const { status, json } = await requestJson(this.url(workflowId, '/history', query), this.agent, 'GET', undefined, LONG_POLL_MS);
      const page = json as { history?: { events?: unknown }; nextPageToken?: unknown } | null;
      if (status !== 200 || typeof page?.history !== 'object' || page.history === null) return undefined;
      const events = page.history.events ?? [];
      if (!Array.isArray(events)) return undefined;
      const event = events[0] as Record<string, unknown> | undefined;
      if (event) {
        if (event.eventType !== 'EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED') return undefined;
        const attrs = event.workflowExecutionCompletedEventAttributes as { result?: { payloads?: Payload[] } } | undefined;
        return decodeJsonPayload(attrs?.result?.payloads?.[0])?.value as MutationResult | undefined;
      }
      // The poll's time ran out before the run closed: poll again where it left off. A page with
      // no event and no token, or empty pages answered at once, are not Temporal's long poll.
      if (typeof page.nextPageToken !== 'string' || page.nextPageToken === '') return undefined;
      quickEmpty = Date.now() - asked < QUICK_EMPTY_MS ? quickEmpty + 1 : 0;
      if (quickEmpty >= MAX_QUICK_EMPTY) return undefined;
      pageToken = page.nextPageToken;
    }
  }

  /** Closes the kept-alive sockets (the CLI's process exit does it too). */
  close(): void {
    this.agent.destroy();
  }
}
