/**
 * The one prom-client registry and every metric definition. Labels are bounded — backend, op,
 * outcome, mount id — and never carry a path.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();
// No prefix: dashboards and alerts expect the standard names (process_cpu_user_seconds_total,
// nodejs_heap_size_used_bytes, …); a prefix turned them into filestore_process_process_….
collectDefaultMetrics({ register: registry });
// Three defaults are gauges named `_total`, which `promtool check metrics` rejects (a `_total`
// suffix promises a counter; prometheus/client_js#283). Each is only the sum of its per-type gauge,
// which stays: `sum without (type) (nodejs_active_handles)` gives the same figure.
for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
  registry.removeSingleMetric(name);
}

export const executorDuration = new Histogram({
  name: 'filestore_executor_duration_seconds',
  help: 'Time spent in one executor call, by backend, op and outcome',
  labelNames: ['backend', 'op', 'outcome'] as const,
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  registers: [registry],
});

export const executorOperations = new Counter({
  name: 'filestore_executor_operations_total',
  help: 'Executor calls, by backend, mount, op and outcome',
  labelNames: ['backend', 'mount', 'op', 'outcome'] as const,
  registers: [registry],
});

export const bytesWritten = new Counter({
  name: 'filestore_bytes_written_total',
  help: 'Bytes written to backends by mutations',
  labelNames: ['backend', 'mount'] as const,
  registers: [registry],
});

export const mutationOutcomes = new Counter({
  name: 'filestore_mutations_total',
  help: 'Mutation workflows that ended, by op and outcome (committed, rolled_back, failed)',
  labelNames: ['mount', 'op', 'outcome'] as const,
  registers: [registry],
});

export const compensationIncomplete = new Counter({
  name: 'filestore_compensation_incomplete_total',
  help: 'Mutations whose undo could not finish: journal FAILED with compensationIncomplete, nodes INCONSISTENT, staging kept for an operator (by who ended them: workflow or janitor)',
  labelNames: ['mount', 'op', 'by'] as const,
  registers: [registry],
});

export const finalizeIncomplete = new Counter({
  name: 'filestore_finalize_incomplete_total',
  help: 'Committed mutations whose staging could not be dropped (kept for an operator; the commit stands)',
  labelNames: ['mount', 'op'] as const,
  registers: [registry],
});

export const janitorResolved = new Counter({
  name: 'filestore_janitor_resolved_total',
  help: 'PENDING journal entries whose workflow was closed or unknown, ended by the janitor (by outcome)',
  labelNames: ['mount', 'outcome'] as const,
  registers: [registry],
});

export const activityDuration = new Histogram({
  name: 'filestore_activity_duration_seconds',
  help: 'Time spent in one activity attempt, by activity and outcome',
  labelNames: ['activity', 'outcome'] as const,
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  registers: [registry],
});

/** Times `fn` into the executor histogram and operation counter. */
export async function timeExecutor<T>(backend: string, mount: string, op: string, fn: () => Promise<T>): Promise<T> {
  const end = executorDuration.startTimer({ backend, op });
  try {
    const result = await fn();
    end({ outcome: 'ok' });
    executorOperations.inc({ backend, mount, op, outcome: 'ok' });
    return result;
  } catch (err) {
    end({ outcome: 'error' });
    executorOperations.inc({ backend, mount, op, outcome: 'error' });
    throw err;
  }
}

// ---- drift detection (watcher process) ----

export const watcherEvents = new Counter({
  name: 'filestore_watcher_events_total',
  help: 'File-system events seen by the watcher, by mount and event (add, change, unlink, addDir, unlinkDir)',
  labelNames: ['mount', 'event'] as const,
  registers: [registry],
});

export const watcherErrors = new Counter({
  name: 'filestore_watcher_errors_total',
  help: 'Watcher errors (e.g. ENOSPC: inotify watch limit), each followed by a rescan of the mount',
  labelNames: ['mount', 'code'] as const,
  registers: [registry],
});

export const driftJobs = new Counter({
  name: 'filestore_drift_jobs_total',
  help: 'Drift jobs, by kind (check, scan) and stage (enqueued, processed, failed, deferred)',
  labelNames: ['kind', 'stage'] as const,
  registers: [registry],
});

export const driftDetected = new Counter({
  name: 'filestore_drift_detected_total',
  help: 'Changes made behind Filestore, by mount and kind (added, modified, removed)',
  labelNames: ['mount', 'kind'] as const,
  registers: [registry],
});

export const driftDetectionLatency = new Histogram({
  name: 'filestore_drift_detection_latency_seconds',
  help: 'From the first file-system event (or scan start) to the node being marked INCONSISTENT',
  labelNames: ['mount'] as const,
  buckets: [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 300],
  registers: [registry],
});

export const driftRescans = new Counter({
  name: 'filestore_drift_rescans_total',
  help: 'Directory or mount rescans, by mount and reason (startup, periodic, burst, error, redis-reconnect)',
  labelNames: ['mount', 'reason'] as const,
  registers: [registry],
});

let driftQueueCounts: (() => Promise<Record<string, number>>) | null = null;

/** The watcher process points the queue depth gauge at its queue. */
export function setDriftQueueSource(source: (() => Promise<Record<string, number>>) | null): void {
  driftQueueCounts = source;
}

export const driftQueueDepth = new Gauge({
  name: 'filestore_drift_queue_depth',
  help: 'Drift jobs in the queue, by state (waiting, delayed, active, failed)',
  labelNames: ['state'] as const,
  registers: [registry],
  async collect() {
    if (!driftQueueCounts) return;
    const counts = await driftQueueCounts().catch(() => null);
    if (!counts) return;
    for (const state of ['waiting', 'delayed', 'active', 'failed']) this.set({ state }, counts[state] ?? 0);
  },
});

// ---- S3 uploads (src/executors/s3/) ----

export const s3UploadedBytes = new Counter({
  name: 'filestore_s3_uploaded_bytes_total',
  help: 'Bytes sent to S3 in upload requests that succeeded (PutObject bodies and multipart parts; parts reused on resume are not counted)',
  registers: [registry],
});

export const s3Parts = new Counter({
  name: 'filestore_s3_parts_total',
  help: 'Multipart parts, by outcome: uploaded (sent now) or reused (found intact in S3 after a resume, not re-sent)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const s3MultipartInFlight = new Gauge({
  name: 'filestore_s3_multipart_uploads_in_flight',
  help: 'Multipart uploads this process is sending right now',
  registers: [registry],
});

export const s3MultipartAborted = new Counter({
  name: 'filestore_s3_multipart_aborted_total',
  help: 'Multipart uploads aborted (AbortMultipartUpload succeeded: an undo, a failed stream upload, a janitor)',
  registers: [registry],
});

export const s3RequestErrors = new Counter({
  name: 'filestore_s3_request_errors_total',
  help: 'S3 requests that failed, by S3 error code (NoSuchUpload, SlowDown, …) or network error code (ECONNRESET, TimeoutError, …)',
  labelNames: ['code'] as const,
  registers: [registry],
});

/** Distinct error-code labels seen so far; past the cap every new code counts as `other` (labels stay bounded). */
const s3ErrorCodesSeen = new Set<string>();
const S3_ERROR_CODE_LABELS_MAX = 100;

/**
 * Counts one failed S3 request under its error code. Codes come from the server or the network
 * stack, so the label is sanitised and capped: an odd or unbounded value becomes `other`.
 */
export function countS3Error(code: string | undefined): void {
  let label = code && /^[A-Za-z0-9._-]{1,64}$/.test(code) ? code : 'other';
  if (label !== 'other' && !s3ErrorCodesSeen.has(label)) {
    if (s3ErrorCodesSeen.size >= S3_ERROR_CODE_LABELS_MAX) label = 'other';
    else s3ErrorCodesSeen.add(label);
  }
  s3RequestErrors.inc({ code: label });
}

// ---- HTTP API (src/api/) ----

export const httpRequestDuration = new Histogram({
  name: 'filestore_http_request_duration_seconds',
  help: 'HTTP API requests, by method, route pattern (never a raw path) and status code',
  labelNames: ['method', 'route', 'status'] as const,
  // Up to 15 minutes: an upload or download of a large file is one request.
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
  registers: [registry],
});

export const httpRequestsInFlight = new Gauge({
  name: 'filestore_http_requests_in_flight',
  help: 'HTTP API requests being served right now (an upload or download until its body is done)',
  registers: [registry],
});

export const httpUploadBytes = new Counter({
  name: 'filestore_http_upload_bytes_total',
  help: 'Request body bytes received by file uploads (PUT /v1/mounts/:mount/files/*), by mount',
  labelNames: ['mount'] as const,
  registers: [registry],
});

export const httpDownloadBytes = new Counter({
  name: 'filestore_http_download_bytes_total',
  help: 'Response body bytes sent by file downloads (GET /v1/mounts/:mount/files/*), by mount',
  labelNames: ['mount'] as const,
  registers: [registry],
});

const HTTP_METHODS = new Set(['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS']);

/** The method label: a standard method, or `OTHER` (a client may send any token as a method). */
export function httpMethodLabel(method: string): string {
  const m = method.toUpperCase();
  return HTTP_METHODS.has(m) ? m : 'OTHER';
}

/**
 * The route label: the route pattern the server matched (fastify's `request.routeOptions.url`, e.g.
 * `/v1/mounts/:mount/files/*`), or `unmatched` when none did. Never the request's URL: paths are
 * unbounded and may be private.
 */
export function httpRouteLabel(route: string | undefined): string {
  return route && route.startsWith('/') ? route : 'unmatched';
}

/** Labels of one finished HTTP request, as the server knows them. */
export interface HttpRequestLabels {
  method: string;
  /** The matched route pattern; undefined when no route matched (a 404). */
  route: string | undefined;
  status: number;
}

/**
 * Counts one HTTP request as in flight and starts its timer. Call the returned function when the
 * response is finished (or the connection closed); calls after the first are ignored, so both a
 * `finish` and a `close` handler may call it.
 */
export function startHttpRequest(): (labels: HttpRequestLabels) => void {
  httpRequestsInFlight.inc();
  const end = httpRequestDuration.startTimer();
  let ended = false;
  return (labels) => {
    if (ended) return;
    ended = true;
    httpRequestsInFlight.dec();
    const status = Number.isInteger(labels.status) && labels.status >= 100 && labels.status <= 599 ? String(labels.status) : 'other';
    end({ method: httpMethodLabel(labels.method), route: httpRouteLabel(labels.route), status });
  };
}
