import { ENV_NAMES, loadConfig, mountTaskQueue } from '../../src/config';

test('defaults when the environment is empty', () => {
  const c = loadConfig({});
  expect(c).toMatchObject({
    databaseUrl: 'postgres://postgres@127.0.0.1:5432/filestore',
    temporalAddress: '127.0.0.1:7233',
    temporalNamespace: 'default',
    taskQueue: 'filestore',
    metricsPort: 9464,
    temporalUiPort: 8233,
    localMounts: '*',
    inlineMaxBytes: 256 * 1024,
    maxTreeEntries: 100_000,
    logLevel: 'info',
    devStartTemporal: true,
  });
  expect(Object.isFrozen(c)).toBe(true);
});

test('environment variables are parsed and validated', () => {
  const c = loadConfig({ FILESTORE_METRICS_PORT: '9999', FILESTORE_DEV_START_TEMPORAL: 'false', FILESTORE_TASK_QUEUE: 'fs-a' });
  expect(c.metricsPort).toBe(9999);
  expect(c.devStartTemporal).toBe(false);
  expect(mountTaskQueue(c, 'docs')).toBe('fs-a-mount-docs');
  expect(mountTaskQueue(loadConfig({}), 'docs')).toBe('filestore-mount-docs');
});

test('invalid values name the variable', () => {
  expect(() => loadConfig({ FILESTORE_METRICS_PORT: 'abc' })).toThrow(/FILESTORE_METRICS_PORT/);
  expect(() => loadConfig({ FILESTORE_INLINE_MAX_BYTES: String(512 * 1024) })).toThrow(/FILESTORE_INLINE_MAX_BYTES/);
  expect(() => loadConfig({ FILESTORE_TASK_QUEUE: 'has space' })).toThrow(/FILESTORE_TASK_QUEUE/);
  expect(() => loadConfig({ DATABASE_URL: 'not a url' })).toThrow(/DATABASE_URL/);
  expect(() => loadConfig({ FILESTORE_MAX_TREE_ENTRIES: '1000001' })).toThrow(/FILESTORE_MAX_TREE_ENTRIES/);
});

test('every config key has a distinct environment variable', () => {
  const names = Object.values(ENV_NAMES);
  expect(new Set(names).size).toBe(names.length);
});
