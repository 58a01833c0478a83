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
 *    joins the running request or is refused by its fingerprint —, an error, no HTTP API there, no
 *    answer): the start is made again over gRPC, where the same workflow id finds any run the first
 *    attempt created, and the same request joins it;
 *  - the run closes other than completed (failed with a typed error, cancelled, terminated, timed
 *    out, continued as new), or the wait breaks off: the result is read over gRPC
 *    (toFilestoreError turns a failure back into its typed FilestoreError);
 *  - progress(): over gRPC.
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

/** One JSON request; rejects only when no HTTP answer came (refused, reset, timed out). */
function requestJson(url: URL, agent: http.Agent, method: 'GET' | 'POST', body: unknown, timeoutMs: number): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(url, { method, agent, headers: { accept: 'application/json', ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
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
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from ${url.origin} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** How long one long poll for the close event may stay open (the server answers within ~20 s). */
const LONG_POLL_MS = 70_000;
const START_TIMEOUT_MS = 10_000;

export class HttpStartTransport implements StartTransport {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  private readonly identity = `${process.pid}@${os.hostname()} (filestore cli, http)`;
  private grpcTransport: Promise<StartTransport> | undefined;

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
    try {
      const { status, json } = await requestJson(this.url(spec.workflowId, '', {}), this.agent, 'POST', startBody(spec, this.namespace, this.identity), START_TIMEOUT_MS);
      if (status === 200 && typeof (json as { runId?: unknown } | null)?.runId === 'string') {
        this.lastStartOverHttp = true;
        return;
      }
    } catch {
      // No answer: nothing listens there, or the answer was lost. Over gRPC below either way.
    }
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

  /** Long-polls for the latest run's close event; a completed run's result, else the gRPC client's answer. */
  private async result(workflowId: string): Promise<MutationResult> {
    let pageToken: string | undefined;
    try {
      for (;;) {
        const query: Record<string, string> = { waitNewEvent: 'true', historyEventFilterType: 'HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT' };
        if (pageToken) query.nextPageToken = pageToken;
        const { status, json } = await requestJson(this.url(workflowId, '/history', query), this.agent, 'GET', undefined, LONG_POLL_MS);
        if (status !== 200) break;
        const page = json as { history?: { events?: Array<Record<string, unknown>> }; nextPageToken?: string } | null;
        const event = page?.history?.events?.[0];
        if (event) {
          if (event.eventType !== 'EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED') break;
          const attrs = event.workflowExecutionCompletedEventAttributes as { result?: { payloads?: Payload[] } } | undefined;
          const decoded = decodeJsonPayload(attrs?.result?.payloads?.[0]);
          if (!decoded) break;
          return decoded.value as MutationResult;
        }
        // The poll's time ran out before the run closed: poll again where it left off.
        pageToken = page?.nextPageToken || undefined;
      }
    } catch {
      // The wait broke off: the gRPC client reads the result instead.
    }
    return (await this.grpc()).handleOf(workflowId).result();
  }

  /** Closes the kept-alive sockets (the CLI's process exit does it too). */
  close(): void {
    this.agent.destroy();
  }
}
