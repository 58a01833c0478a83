import fs from 'node:fs';
import path from 'node:path';
import * as z from 'zod';

/** The checkout this code runs from (works from src/ under ts and from dist/src/ once built). */
function findProjectRoot(start: string): string {
  for (let dir = start; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
  }
  return process.cwd();
}
const PROJECT_ROOT = findProjectRoot(__dirname);

/** Environment strings, or real booleans from programmatic overrides. */
const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes')]);

const port = z.coerce.number().int().min(0).max(65535);

/**
 * Every setting Filestore reads from the environment. Each is documented with its default in
 * docs/filestore.md ("Configuration"); keep the two in step.
 */
const ConfigSchema = z.object({
  /** Postgres catalog. @defaultValue postgres://postgres@127.0.0.1:5432/filestore */
  databaseUrl: z.string().url().default('postgres://postgres@127.0.0.1:5432/filestore'),
  /** Temporal frontend (host:port). @defaultValue 127.0.0.1:7233 */
  temporalAddress: z.string().min(3).default('127.0.0.1:7233'),
  /**
   * Temporal's HTTP API (the frontend's `/api/v1` routes), through which the CLI starts mutations and
   * waits for them without loading the gRPC SDK: an http:// URL (scheme, host and port), or `off`.
   * Unset: the HTTP API of the dev server `filestore dev` started at TEMPORAL_ADDRESS, as it recorded
   * it in its state dir while it runs (see temporalHttpUrlOf), else off. Anything the HTTP API does
   * not answer plainly falls back to gRPC (see src/client/temporal-http.ts).
   */
  temporalHttpUrl: z
    .string()
    .refine((v) => v === 'off' || isPlainHttpOrigin(v), 'an http:// URL of scheme, host and port only (no user, path, query or fragment), or off')
    .optional(),
  /** @defaultValue default */
  temporalNamespace: z.string().min(1).default('default'),
  /** Base task queue; local mounts get `<taskQueue>-mount-<id>`. @defaultValue filestore */
  taskQueue: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/)
    .default('filestore'),
  /** Explicit Temporal CLI binary; otherwise PATH, then the project's .tools/bin. */
  temporalCliPath: z.string().optional(),
  /** Web UI port of the dev server started by `filestore dev`. @defaultValue 8233 */
  temporalUiPort: port.default(8233),
  /** Port of the worker's /metrics endpoint; 0 picks a free port. @defaultValue 9464 */
  metricsPort: port.default(9464),
  /** Port of `filestore api` (and the API `filestore dev` runs); 0 picks a free one. @defaultValue 8080 */
  apiPort: port.default(8080),
  /** Address `filestore api` listens on. @defaultValue 127.0.0.1 */
  apiHost: z.string().min(1).default('127.0.0.1'),
  /**
   * The upload area: a directory the API streams request bodies into before it starts the write
   * mutation, and from which the workers read them (so it must be the same directory, or a shared
   * one, on the API's and the workers' hosts). Always an allowed write source for the workers.
   * Filestore's own: never inside a mount. @defaultValue <stateDir>/uploads
   */
  uploadDir: z.string().optional(),
  /**
   * The upload area as an S3 prefix instead of a directory: `s3://bucket/prefix`. API and SDK stream
   * uploads land there, and workers read them by key — so workers on any host can, without a
   * shared file system. Endpoint and credentials as for S3 mounts (FILESTORE_S3_ENDPOINT, the AWS
   * provider chain); only keys under this prefix are ever read as write sources. @defaultValue unset (FILESTORE_UPLOAD_DIR)
   */
  uploadS3: z
    .string()
    .regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/[^\0]*)?$/, 's3://bucket or s3://bucket/prefix')
    .optional(),
  /** How long an upload file may stay in the upload area after its mutation ended (or never started) before the API's sweep removes it. @defaultValue 3600000 (1 h) */
  uploadGraceMs: z.coerce.number().int().min(0).default(3_600_000),
  /** How long `filestore api` waits for in-flight requests (uploads) at shutdown before it closes their connections. @defaultValue 30000 */
  apiShutdownGraceMs: z.coerce.number().int().min(0).default(30_000),
  /** Which local mounts this host's worker serves: `*` (every local mount whose root exists here) or a comma list of ids. @defaultValue * */
  localMounts: z.string().default('*'),
  /** How often the worker re-reads backend_mounts to pick up added or removed mounts (ms). @defaultValue 3000 */
  mountRefreshMs: z.coerce.number().int().min(100).default(3000),
  /** State folder for `filestore dev` (Temporal dev DB, private Postgres, demo mount). @defaultValue <project>/.filestore */
  stateDir: z.string().default(path.join(PROJECT_ROOT, '.filestore')),
  /** Largest content accepted inline in a workflow payload (bytes). @defaultValue 262144 */
  inlineMaxBytes: z.coerce
    .number()
    .int()
    .min(0)
    .max(256 * 1024)
    .default(256 * 1024),
  /** Largest file a single write accepts (bytes). @defaultValue 1 TiB */
  maxFileBytes: z.coerce.number().int().positive().default(1024 ** 4),
  /**
   * Attempts of an activity after which an error no table classifies (not a typed Filestore error,
   * no known transient errno) stops being retried and fails the mutation as INTERNAL, releasing its
   * lock. Typed transient errors (BACKEND_IO) retry without this bound. @defaultValue 5
   */
  maxUnknownErrorAttempts: z.coerce.number().int().min(1).max(1000).default(5),
  /**
   * Most entries (the root included) one directory copy may carry into the catalog. Tree outcomes
   * stay in Postgres (`outcome_nodes`), never in a workflow payload, so this bounds worker memory
   * and commit time, not Temporal: the copying worker holds the walked tree and its outcome in
   * memory (about 5 KiB per entry at peak: ~500 MB at 100,000), and commit writes one node and one snapshot row per
   * entry in a single transaction. @defaultValue 100000
   */
  maxTreeEntries: z.coerce.number().int().positive().max(1_000_000).default(100_000),
  /** Redis for the drift queue (BullMQ) and change events. @defaultValue redis://127.0.0.1:6379 */
  redisUrl: z.string().url().default('redis://127.0.0.1:6379'),
  /** Run chokidar watchers in `filestore watcher` for mounts whose `watch` option is on. @defaultValue false (`filestore dev` turns it on) */
  enableWatchers: bool.default(false),
  /** Watch backend of local mounts: chokidar, parcel (@parcel/watcher) or auto (parcel above watchAutoThreshold entries). @defaultValue auto */
  watchBackend: z.enum(['chokidar', 'parcel', 'auto']).default('auto'),
  /** `auto` picks parcel for a mount with more entries than this (catalogued nodes, else counted on disk, both bounded). @defaultValue 10000 */
  watchAutoThreshold: z.coerce.number().int().min(0).default(10_000),
  /** Folder of the parcel backend's per-mount snapshots; Filestore's own, never inside a mount. @defaultValue <stateDir>/watch-snapshots */
  watchSnapshotDir: z.string().optional(),
  /** How often the parcel backend commits a fresh snapshot while it runs (ms); one is also written at shutdown. @defaultValue 300000 (5 min) */
  watchSnapshotIntervalMs: z.coerce.number().int().min(1000).default(300_000),
  /** Quiet time after the last event on a path before it is checked (ms). @defaultValue 500 */
  driftDebounceMs: z.coerce.number().int().min(10).default(500),
  /** Longest a path's check may be delayed by a stream of events (ms). @defaultValue 2000 */
  driftMaxWaitMs: z.coerce.number().int().min(10).default(2000),
  /** Changed paths under one directory in one window beyond which the directory is rescanned instead. @defaultValue 200 */
  driftDirRescanThreshold: z.coerce.number().int().min(1).default(200),
  /** Changed paths in one mount in one window beyond which the whole mount is rescanned instead. @defaultValue 5000 */
  driftMountRescanThreshold: z.coerce.number().int().min(1).default(5000),
  /** Paths per drift check job. @defaultValue 250 */
  driftBatchSize: z.coerce.number().int().min(1).max(10_000).default(250),
  /** Interval of the periodic full scan of each watched mount (ms). @defaultValue 600000 (10 min) */
  driftScanIntervalMs: z.coerce.number().int().min(1000).default(600_000),
  /** Interval of the periodic listing of each watched S3 mount, its only drift source (ms). @defaultValue 60000 (1 min) */
  s3ScanIntervalMs: z.coerce.number().int().min(1000).default(60_000),
  /** Delay before re-checking a path that a PENDING mutation held (ms). @defaultValue 1000 */
  driftRecheckMs: z.coerce.number().int().min(10).default(1000),
  /** Drift jobs processed at once. @defaultValue 4 */
  driftConcurrency: z.coerce.number().int().min(1).max(64).default(4),
  /** Completed / failed drift jobs kept in Redis (older ones are removed). @defaultValue 1000 */
  driftJobsKept: z.coerce.number().int().min(0).default(1000),
  /** BullMQ queue of drift jobs. @defaultValue filestore-drift */
  driftQueue: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/)
    .default('filestore-drift'),
  /** Port of the watcher's /metrics and /healthz; 0 picks a free port. @defaultValue 9465 */
  watcherMetricsPort: port.default(9465),
  /** pino log level. @defaultValue info */
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Start the Temporal dev server from `filestore dev` when nothing answers. @defaultValue true */
  devStartTemporal: bool.default(true),
  /**
   * A transaction fence's Postgres session that has not pinged for this long is ended by the
   * server, freeing the transaction for the next attempt (a frozen worker). The session pings every
   * quarter of it. @defaultValue 60000
   */
  fenceIdleTimeoutMs: z.coerce.number().int().min(1000).default(60_000),
  /** How often each worker's janitor looks for PENDING entries whose workflow is closed or unknown (ms). @defaultValue 60000 */
  janitorIntervalMs: z.coerce.number().int().min(100).default(60_000),
  /** The janitor leaves PENDING entries younger than this alone (ms). @defaultValue 60000 */
  janitorGraceMs: z.coerce.number().int().min(0).default(60_000),
  /**
   * The janitor aborts multipart uploads under an S3 mount that no PENDING transaction owns once
   * they are older than this (ms): an attempt that died before checkpointing its upload, or
   * someone else's upload under the mount's prefix. @defaultValue 3600000 (1 hour)
   */
  s3UploadGraceMs: z.coerce.number().int().min(0).default(3_600_000),
  /** Test seam (never in production): `<op>:<step>:<marker file>` pauses local executors at that step; see src/executors/fault-injection.ts. @defaultValue unset */
  faultPauseAt: z.string().optional(),
  /**
   * Directories a `put` may read a file source from (absolute; `,` or `:` separated in the
   * environment). Empty refuses every file source with SOURCE_NOT_ALLOWED: no directory is safe
   * to expose on every host, so the operator names them. @defaultValue [] (`filestore dev`: the checkout and the OS temp dir)
   */
  sourceRoots: z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (typeof v === 'string' ? splitRoots(v) : v.map((r) => r.trim()).filter((r) => r !== '')))
    .pipe(z.array(z.string().refine((r) => path.isAbsolute(r), { message: 'every source root must be an absolute directory' })))
    .default([]),
  /**
   * S3 endpoint for S3-compatible servers (MinIO, …): mounts that name no endpoint of their own use
   * it. Unset means AWS, except under `filestore dev`, which then runs a private MinIO at
   * http://127.0.0.1:9000 (and starts one wherever this points if nothing answers there). @defaultValue unset
   */
  s3Endpoint: z.string().url().optional(),
  /** Path-style addressing (`http://host/bucket/key`) for that endpoint. @defaultValue unset: on when FILESTORE_S3_ENDPOINT is set, off for AWS */
  s3ForcePathStyle: bool.optional(),
  /** Explicit MinIO server binary for `filestore dev` and the tests; otherwise .tools/bin/minio, then PATH. */
  minioPath: z.string().optional(),
  /** Console (web UI) port of the private MinIO that `filestore dev` starts. @defaultValue 9001 */
  minioConsolePort: port.default(9001),
  /** Start a private MinIO from `filestore dev` when no S3 server answers. @defaultValue true */
  devStartMinio: bool.default(true),
  /** Content of at least this many bytes is written to S3 as a resumable multipart upload; less in one PutObject (and buffered in memory up to this size). @defaultValue 67108864 (64 MiB) */
  s3MultipartThreshold: z.coerce
    .number()
    .int()
    .min(5 * 1024 * 1024)
    .max(5 * 1024 ** 3)
    .default(64 * 1024 * 1024),
  /** Part size of S3 multipart uploads (raised where an object would need more than 10,000 parts). @defaultValue 16777216 (16 MiB) */
  s3PartSize: z.coerce
    .number()
    .int()
    .min(5 * 1024 * 1024)
    .max(5 * 1024 ** 3)
    .default(16 * 1024 * 1024),
  /** Parts of one S3 multipart upload (or part copy) in flight at once; each holds one part in memory. @defaultValue 4 */
  s3Concurrency: z.coerce.number().int().min(1).max(64).default(4),
});

/** `a,b` or `a:b` (or both mixed) → trimmed, non-empty entries. */
function splitRoots(value: string): string[] {
  return value
    .split(/[,:]/)
    .map((r) => r.trim())
    .filter((r) => r !== '');
}

export type Config = Readonly<z.infer<typeof ConfigSchema>>;

/** Environment variable for each config key. */
export const ENV_NAMES: Record<keyof z.infer<typeof ConfigSchema>, string> = {
  databaseUrl: 'DATABASE_URL',
  temporalAddress: 'TEMPORAL_ADDRESS',
  temporalHttpUrl: 'FILESTORE_TEMPORAL_HTTP_URL',
  temporalNamespace: 'TEMPORAL_NAMESPACE',
  taskQueue: 'FILESTORE_TASK_QUEUE',
  temporalCliPath: 'TEMPORAL_CLI_PATH',
  temporalUiPort: 'FILESTORE_TEMPORAL_UI_PORT',
  metricsPort: 'FILESTORE_METRICS_PORT',
  apiPort: 'FILESTORE_API_PORT',
  apiHost: 'FILESTORE_API_HOST',
  uploadDir: 'FILESTORE_UPLOAD_DIR',
  uploadS3: 'FILESTORE_UPLOAD_S3',
  uploadGraceMs: 'FILESTORE_UPLOAD_GRACE_MS',
  apiShutdownGraceMs: 'FILESTORE_API_SHUTDOWN_GRACE_MS',
  localMounts: 'FILESTORE_LOCAL_MOUNTS',
  mountRefreshMs: 'FILESTORE_MOUNT_REFRESH_MS',
  stateDir: 'FILESTORE_STATE_DIR',
  inlineMaxBytes: 'FILESTORE_INLINE_MAX_BYTES',
  maxFileBytes: 'FILESTORE_MAX_FILE_BYTES',
  maxTreeEntries: 'FILESTORE_MAX_TREE_ENTRIES',
  maxUnknownErrorAttempts: 'FILESTORE_MAX_UNKNOWN_ERROR_ATTEMPTS',
  redisUrl: 'REDIS_URL',
  enableWatchers: 'FILESTORE_ENABLE_WATCHERS',
  watchBackend: 'FILESTORE_WATCH_BACKEND',
  watchAutoThreshold: 'FILESTORE_WATCH_AUTO_THRESHOLD',
  watchSnapshotDir: 'FILESTORE_WATCH_SNAPSHOT_DIR',
  watchSnapshotIntervalMs: 'FILESTORE_WATCH_SNAPSHOT_INTERVAL_MS',
  driftDebounceMs: 'FILESTORE_DRIFT_DEBOUNCE_MS',
  driftMaxWaitMs: 'FILESTORE_DRIFT_MAX_WAIT_MS',
  driftDirRescanThreshold: 'FILESTORE_DRIFT_DIR_RESCAN_THRESHOLD',
  driftMountRescanThreshold: 'FILESTORE_DRIFT_MOUNT_RESCAN_THRESHOLD',
  driftBatchSize: 'FILESTORE_DRIFT_BATCH_SIZE',
  driftScanIntervalMs: 'FILESTORE_DRIFT_SCAN_INTERVAL_MS',
  s3ScanIntervalMs: 'FILESTORE_S3_SCAN_INTERVAL_MS',
  driftRecheckMs: 'FILESTORE_DRIFT_RECHECK_MS',
  driftConcurrency: 'FILESTORE_DRIFT_CONCURRENCY',
  driftJobsKept: 'FILESTORE_DRIFT_JOBS_KEPT',
  driftQueue: 'FILESTORE_DRIFT_QUEUE',
  watcherMetricsPort: 'FILESTORE_WATCHER_METRICS_PORT',
  logLevel: 'LOG_LEVEL',
  devStartTemporal: 'FILESTORE_DEV_START_TEMPORAL',
  fenceIdleTimeoutMs: 'FILESTORE_FENCE_IDLE_TIMEOUT_MS',
  janitorIntervalMs: 'FILESTORE_JANITOR_INTERVAL_MS',
  janitorGraceMs: 'FILESTORE_JANITOR_GRACE_MS',
  s3UploadGraceMs: 'FILESTORE_S3_UPLOAD_GRACE_MS',
  faultPauseAt: 'FILESTORE_FAULT_PAUSE_AT',
  sourceRoots: 'FILESTORE_SOURCE_ROOTS',
  s3Endpoint: 'FILESTORE_S3_ENDPOINT',
  s3ForcePathStyle: 'FILESTORE_S3_FORCE_PATH_STYLE',
  minioPath: 'MINIO_PATH',
  minioConsolePort: 'FILESTORE_MINIO_CONSOLE_PORT',
  devStartMinio: 'FILESTORE_DEV_START_MINIO',
  s3MultipartThreshold: 'FILESTORE_S3_MULTIPART_THRESHOLD',
  s3PartSize: 'FILESTORE_S3_PART_SIZE',
  s3Concurrency: 'FILESTORE_S3_CONCURRENCY',
};

/** Reads, validates and freezes the configuration; `overrides` win over the environment. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const raw: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(ENV_NAMES)) {
    const value = env[name];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const parsed = ConfigSchema.safeParse({ ...raw, ...overrides });
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const key = i.path[0] as keyof typeof ENV_NAMES;
      return `${ENV_NAMES[key] ?? String(key)}: ${i.message}`;
    });
    throw new Error(`invalid configuration: ${lines.join('; ')}`);
  }
  return Object.freeze(parsed.data);
}

/** `http://host:port` and nothing else: what FILESTORE_TEMPORAL_HTTP_URL may be. */
function isPlainHttpOrigin(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return (
    url.protocol === 'http:' &&
    url.hostname !== '' &&
    url.username === '' &&
    url.password === '' &&
    url.pathname === '/' &&
    url.search === '' &&
    url.hash === '' &&
    // Only what `new URL` keeps as given: no backslashes, spaces or other characters it rewrites.
    /^http:\/\/[A-Za-z0-9.\-[\]:]+\/?$/.test(value)
  );
}

/** Where `filestore dev` records the HTTP API of the Temporal dev server it started (see {@link temporalHttpUrlOf}). */
export function devTemporalHttpFile(config: Pick<Config, 'stateDir'>): string {
  return path.join(config.stateDir, 'temporal-http.json');
}

/** What {@link devTemporalHttpFile} holds. */
export interface DevTemporalHttp {
  url: string;
  /** The dev server's process: the record is void once it is gone. */
  pid: number;
  /** The gRPC address that server answers at: the record serves only a CLI configured for it. */
  temporalAddress: string;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Where the CLI reaches Temporal's HTTP API, or null for gRPC only: FILESTORE_TEMPORAL_HTTP_URL as
 * set (`off` → null); unset, the HTTP API of the dev server `filestore dev` started, as recorded in
 * its state dir — only while that server's process lives and only for the TEMPORAL_ADDRESS it
 * serves. Never a guessed port: something else listening there (another Temporal, or any local
 * user's process) would be handed the requests.
 */
export function temporalHttpUrlOf(config: Pick<Config, 'temporalHttpUrl' | 'temporalAddress' | 'stateDir'>): string | null {
  if (config.temporalHttpUrl !== undefined) return config.temporalHttpUrl === 'off' ? null : config.temporalHttpUrl;
  let record: Partial<DevTemporalHttp>;
  try {
    record = JSON.parse(fs.readFileSync(devTemporalHttpFile(config), 'utf8')) as Partial<DevTemporalHttp>;
  } catch {
    return null;
  }
  if (typeof record.url !== 'string' || !isPlainHttpOrigin(record.url)) return null;
  if (record.temporalAddress !== config.temporalAddress || typeof record.pid !== 'number' || !processAlive(record.pid)) return null;
  return record.url;
}

/** The upload area's directory (FILESTORE_UPLOAD_DIR, else `<stateDir>/uploads`). */
export function uploadDirOf(config: Pick<Config, 'uploadDir' | 'stateDir'>): string {
  return path.resolve(config.uploadDir ?? path.join(config.stateDir, 'uploads'));
}

/** The S3 upload area (FILESTORE_UPLOAD_S3) as bucket and key prefix (no leading or trailing '/'), or null. */
export function uploadS3Of(config: Pick<Config, 'uploadS3'>): { bucket: string; prefix: string } | null {
  if (!config.uploadS3) return null;
  const rest = config.uploadS3.slice('s3://'.length);
  const cut = rest.indexOf('/');
  return cut < 0 ? { bucket: rest, prefix: '' } : { bucket: rest.slice(0, cut), prefix: rest.slice(cut + 1).replace(/^\/+|\/+$/g, '') };
}

/** Task queue of a host-bound local mount. */
export function mountTaskQueue(config: Pick<Config, 'taskQueue'>, mountId: string): string {
  return `${config.taskQueue}-mount-${mountId}`;
}

/** Whether clients of FILESTORE_S3_ENDPOINT address buckets path-style: as set, else on for a custom endpoint (MinIO needs it) and off for AWS. */
export function s3PathStyle(config: Pick<Config, 's3Endpoint' | 's3ForcePathStyle'>): boolean {
  return config.s3ForcePathStyle ?? config.s3Endpoint !== undefined;
}

export const PROJECT_DIR = PROJECT_ROOT;
