import { loadConfig } from '../../src/config';
import {
  type AggregatorOptions,
  type DriftJobSpec,
  EventAggregator,
  type FlushHandler,
  aggregatorOptionsFromConfig,
  driftJobId,
  planDriftJobs,
} from '../../src/watcher/event-aggregator';

/** A manual clock with timers; `advance` fires due timers in time order and lets promises settle. */
class FakeClock {
  t = 0;
  private seq = 0;
  readonly timers = new Map<number, { at: number; fn: () => void }>();
  setTimerCalls = 0;
  now = (): number => this.t;
  setTimer = (fn: () => void, ms: number): unknown => {
    this.setTimerCalls++;
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  };
  clearTimer = (id: unknown): void => {
    this.timers.delete(id as number);
  };
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

const DEFAULTS = { debounceMs: 500, maxWaitMs: 2000, dirRescanThreshold: 200, mountRescanThreshold: 5000, batchSize: 250 };
const SMALL = { dirRescanThreshold: 3, mountRescanThreshold: 10, batchSize: 4 };

interface Call {
  at: number;
  mountId: string;
  jobs: DriftJobSpec[];
}

function setup(overrides: Partial<AggregatorOptions> = {}) {
  const clock = new FakeClock();
  const calls: Call[] = [];
  let handler: FlushHandler = () => undefined;
  let inFlight = 0;
  let maxInFlight = 0;
  const agg = new EventAggregator(
    { ...DEFAULTS, now: clock.now, setTimer: clock.setTimer, clearTimer: clock.clearTimer, ...overrides },
    async (mountId, jobs) => {
      calls.push({ at: clock.now(), mountId, jobs: structuredClone(jobs) });
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        await handler(mountId, jobs);
      } finally {
        inFlight--;
      }
    },
  );
  return {
    clock,
    calls,
    agg,
    setHandler: (h: FlushHandler) => (handler = h),
    maxInFlight: () => maxInFlight,
  };
}

const check = (paths: string[], firstEventAt = 0, mountId = 'm'): DriftJobSpec => ({ kind: 'check', mountId, paths, firstEventAt });
const scan = (dir: string, firstEventAt = 0, mountId = 'm'): DriftJobSpec => ({ kind: 'scan', mountId, dir, firstEventAt });
const range = <T = string>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));
const pad = (i: number) => String(i).padStart(5, '0');

/** Adds every path at the current clock time, then lets the window flush. */
async function burst(s: ReturnType<typeof setup>, paths: string[], event = 'add', mountId = 'm'): Promise<DriftJobSpec[][]> {
  const before = s.calls.length;
  for (const p of paths) s.agg.add(mountId, p, event);
  await s.clock.advance(10_000);
  return s.calls.slice(before).map((c) => c.jobs);
}

describe('windows and timers', () => {
  test('debounce: flushes once the mount has been quiet for debounceMs, restarting on each event', async () => {
    const s = setup();
    s.agg.add('m', 'a.txt', 'add');
    await s.clock.advance(499);
    expect(s.calls).toEqual([]);
    s.agg.add('m', 'b.txt', 'change'); // t = 499
    await s.clock.advance(499); // t = 998
    expect(s.calls).toEqual([]);
    await s.clock.advance(1); // t = 999 = 499 + 500
    expect(s.calls).toEqual([{ at: 999, mountId: 'm', jobs: [check(['a.txt', 'b.txt'], 0)] }]);
    expect(s.agg.pendingPaths('m')).toBe(0);
    expect(s.clock.timers.size).toBe(0);
  });

  test('maxWait: a continuous stream still flushes every maxWaitMs after the first unflushed event', async () => {
    const s = setup();
    for (let i = 0; i < 50; i++) {
      s.agg.add('m', `f${pad(i)}`, 'change');
      await s.clock.advance(100);
    }
    await s.clock.advance(1000);
    expect(s.calls.map((c) => c.at)).toEqual([2000, 4000, 5400]);
    expect(s.calls.map((c) => c.jobs)).toEqual([
      [check(range(20, (i) => `f${pad(i)}`), 0)],
      [check(range(20, (i) => `f${pad(i + 20)}`), 2000)],
      [check(range(10, (i) => `f${pad(i + 40)}`), 4000)],
    ]);
  });

  test('maxWait shorter than debounce caps the first flush', async () => {
    const s = setup({ debounceMs: 500, maxWaitMs: 300 });
    s.agg.add('m', 'a', 'add');
    await s.clock.advance(299);
    expect(s.calls).toEqual([]);
    await s.clock.advance(1);
    expect(s.calls).toEqual([{ at: 300, mountId: 'm', jobs: [check(['a'])] }]);
  });

  test('repeated events on a path collapse into one entry', async () => {
    const s = setup();
    for (let i = 0; i < 1000; i++) s.agg.add('m', 'docs/x.txt', ['add', 'change', 'unlink'][i % 3]);
    expect(s.agg.pendingPaths('m')).toBe(1);
    expect(await burst(s, [])).toEqual([[check(['docs/x.txt'])]]);
  });

  test('a burst costs one timer, not one per event (O(1) amortised add)', async () => {
    const s = setup();
    for (let i = 0; i < 10_000; i++) s.agg.add('m', `d${i % 10}/f${i}`, 'add');
    expect(s.clock.setTimerCalls).toBe(1);
    expect(s.clock.timers.size).toBe(1);
  });

  test('windows are per mount: separate timers, separate flushes', async () => {
    const s = setup();
    s.agg.add('one', 'a', 'add');
    await s.clock.advance(300);
    s.agg.add('two', 'b', 'add');
    s.agg.add('one', 'c', 'add'); // pushes mount one to 800
    await s.clock.advance(10_000);
    expect([...s.calls].sort((x, y) => x.mountId.localeCompare(y.mountId))).toEqual([
      { at: 800, mountId: 'one', jobs: [check(['a', 'c'], 0, 'one')] },
      { at: 800, mountId: 'two', jobs: [check(['b'], 300, 'two')] },
    ]);
    expect(s.agg.pendingPaths()).toBe(0);
  });

  test('nothing is flushed when nothing happened', async () => {
    const s = setup();
    await s.agg.flush();
    await s.clock.advance(10_000);
    expect(s.calls).toEqual([]);
  });
});

describe('collapse rules', () => {
  test('dir threshold: more than dirRescanThreshold changed paths under a directory → one scan of it', async () => {
    const s = setup(SMALL);
    expect(await burst(s, ['a/1', 'a/2', 'a/3', 'b/1'])).toEqual([[check(['a/1', 'a/2', 'a/3', 'b/1'], 0)]]);
    const t = s.clock.now();
    expect(await burst(s, ['a/1', 'a/2', 'a/3', 'a/4', 'b/1'])).toEqual([[scan('a', t), check(['b/1'], t)]]);
  });

  test('indirect children count, and the shallowest qualifying directory is kept', async () => {
    const s = setup(SMALL);
    expect(await burst(s, ['x/y/1', 'x/y/2', 'x/z/1', 'x/z/2'])).toEqual([[scan('x', 0)]]);
    const t = s.clock.now();
    expect(await burst(s, ['p/q/1', 'p/q/2', 'p/q/3', 'p/q/4', 'p/r', 'r/s/1', 'r/s/2', 'r/s/3', 'r/s/4'])).toEqual([[scan('p', t), scan('r', t)]]);
  });

  test('a path equal to a scanned directory is covered; sibling prefixes are not', async () => {
    const s = setup(SMALL);
    expect(await burst(s, ['a', 'a/1', 'a/2', 'a/3', 'a/4', 'ab', 'ab/1'])).toEqual([[scan('a'), check(['ab', 'ab/1'])]]);
  });

  test('top-level files never trigger a directory scan of the root; they are batched', async () => {
    const s = setup(SMALL);
    expect(await burst(s, range(8, (i) => `f${i}`))).toEqual([[check(['f0', 'f1', 'f2', 'f3']), check(['f4', 'f5', 'f6', 'f7'])]]);
  });

  test('mount threshold: exactly mountRescanThreshold paths are still checked; one more → one scan of the mount only', async () => {
    const s = setup(SMALL);
    expect(await burst(s, range(10, (i) => `f${i}`))).toEqual([
      [check(['f0', 'f1', 'f2', 'f3']), check(['f4', 'f5', 'f6', 'f7']), check(['f8', 'f9'])],
    ]);
    const t = s.clock.now();
    expect(await burst(s, [...range(11, (i) => `f${i}`), 'a/1', 'a/2', 'a/3', 'a/4'])).toEqual([[scan('', t)]]);
  });

  test('check jobs hold at most batchSize paths each, sorted', async () => {
    const s = setup(SMALL);
    const paths = ['z', 'm/1', 'b', 'k/2', 'a', 'y', 'c', 'k/1', 'x'];
    expect(await burst(s, paths)).toEqual([[check(['a', 'b', 'c', 'k/1']), check(['k/2', 'm/1', 'x', 'y']), check(['z'])]]);
  });

  test('unlinkDir is reported as a check of the directory itself (the processor handles its subtree)', async () => {
    const s = setup();
    expect(await burst(s, ['a/1', 'a/2'], 'unlink')).toEqual([[check(['a/1', 'a/2'])]]);
    const t = s.clock.now();
    s.agg.add('m', 'a/1', 'unlink');
    s.agg.add('m', 'a/2', 'unlink');
    s.agg.add('m', 'a', 'unlinkDir');
    expect(await burst(s, [])).toEqual([[check(['a', 'a/1', 'a/2'], t)]]);
  });

  test('addDir with many children events becomes a scan of the new directory', async () => {
    const s = setup(SMALL);
    s.agg.add('m', 'new', 'addDir');
    s.agg.add('m', 'new/sub', 'addDir');
    expect(await burst(s, ['new/sub/1', 'new/sub/2', 'new/3'])).toEqual([[scan('new')]]);
  });
});

describe('the bound', () => {
  const countPaths = (jobs: DriftJobSpec[]) => jobs.reduce((n, j) => n + (j.kind === 'check' ? j.paths.length : 0), 0);

  test('10,000 adds in one directory → exactly 1 job (a mount scan: 10,000 > 5,000)', async () => {
    const s = setup();
    expect(await burst(s, range(10_000, (i) => `big/f${pad(i)}`))).toEqual([[scan('')]]);
  });

  test('4,000 adds in one directory → exactly 1 job (a scan of the directory)', async () => {
    const s = setup();
    expect(await burst(s, range(4000, (i) => `big/f${pad(i)}`))).toEqual([[scan('big')]]);
  });

  test('10,000 adds over 50 directories of 200 → exactly 1 job (mount scan)', async () => {
    const s = setup();
    expect(await burst(s, range(10_000, (i) => `d${i % 50}/f${pad(i)}`))).toEqual([[scan('')]]);
    expect(s.agg.pendingPaths()).toBe(0);
  });

  test('1,000 adds over 10 directories of 100 → 4 check jobs of 250', async () => {
    const s = setup();
    const paths = range(1000, (i) => `d${i % 10}/f${pad(i)}`);
    const [jobs] = await burst(s, paths);
    expect(jobs).toHaveLength(4);
    expect(jobs.map((j) => (j.kind === 'check' ? j.paths.length : -1))).toEqual([250, 250, 250, 250]);
    expect(jobs.flatMap((j) => (j.kind === 'check' ? j.paths : []))).toEqual([...paths].sort());
  });

  test('5,000 adds over 25 directories of exactly 200 → no scan, 20 checks; over 20 directories of 250 → 20 scans', async () => {
    const s = setup();
    const [a] = await burst(s, range(5000, (i) => `d${i % 25}/f${pad(i)}`));
    expect(a).toHaveLength(20);
    expect(a.every((j) => j.kind === 'check')).toBe(true);
    expect(countPaths(a)).toBe(5000);
    const t = s.clock.now();
    const [b] = await burst(s, range(5000, (i) => `d${String(i % 20).padStart(2, '0')}/f${pad(i)}`));
    expect(b).toEqual(range(20, (i) => scan(`d${String(i).padStart(2, '0')}`, t)));
  });

  test('random windows: jobs ≤ ceil(min(N, M)/B) + scans, scans ≤ floor(M/(T+1)), and every change stays covered', () => {
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    const pick = (n: number) => Math.floor(rand() * n);
    const randomPath = () => range(1 + pick(4), () => 'abc'[pick(3)]).join('/');
    const covered = (p: string, d: string) => d === '' || p === d || p.startsWith(`${d}/`);
    for (let round = 0; round < 2000; round++) {
      const T = 1 + pick(8);
      const M = 1 + pick(60);
      const B = 1 + pick(10);
      const paths = new Set(range(pick(2 * M + 2), randomPath));
      const scans = new Set(range(pick(3), randomPath));
      const jobs = planDriftJobs('m', { paths, scans, firstEventAt: 7 }, { dirRescanThreshold: T, mountRescanThreshold: M, batchSize: B });
      const scanDirs = jobs.flatMap((j) => (j.kind === 'scan' ? [j.dir] : []));
      const checked = jobs.flatMap((j) => (j.kind === 'check' ? j.paths : []));
      const N = paths.size;
      expect(jobs.every((j) => j.mountId === 'm' && j.firstEventAt === 7)).toBe(true);
      if (scanDirs.includes('')) {
        expect(jobs).toEqual([scan('', 7)]);
        continue;
      }
      expect(jobs.length).toBeLessThanOrEqual(Math.ceil(Math.min(N, M) / B) + scanDirs.length);
      expect(scanDirs.length).toBeLessThanOrEqual(Math.floor(M / (T + 1)));
      expect(jobs.length).toBeLessThanOrEqual(Math.ceil(M / B) + Math.floor(M / (T + 1)));
      // every change covered exactly once; checks ≤ B, sorted; scans first, disjoint, sorted
      for (const p of paths) {
        const byScan = scanDirs.some((d) => covered(p, d));
        expect(byScan ? 1 : checked.filter((c) => c === p).length).toBe(1);
        expect(byScan && checked.includes(p)).toBe(false);
      }
      for (const d of scans) expect(scanDirs.some((x) => covered(d, x))).toBe(true);
      expect(checked.length).toBe(new Set(checked).size);
      expect(checked.every((c) => paths.has(c))).toBe(true);
      expect(checked).toEqual([...checked].sort());
      expect(jobs.every((j) => j.kind === 'scan' || (j.paths.length >= 1 && j.paths.length <= B))).toBe(true);
      expect(scanDirs).toEqual([...scanDirs].sort());
      expect(jobs.slice(0, scanDirs.length).every((j) => j.kind === 'scan')).toBe(true);
      for (const d of scanDirs) expect(scanDirs.filter((x) => x !== d && covered(d, x))).toEqual([]);
      // a scan nobody asked for was earned: more than T changes strictly below it
      for (const d of scanDirs) if (!scans.has(d)) expect([...paths, ...scans].filter((p) => p.startsWith(`${d}/`)).length).toBeGreaterThan(T);
    }
  });
});

describe('requestScan', () => {
  test('a requested scan covers its directory and everything below it, and flushes after the debounce', async () => {
    const s = setup(SMALL);
    s.agg.requestScan('m', 'a');
    for (const p of ['a/x', 'a', 'a/b/c', 'b', 'ab/c']) s.agg.add('m', p, 'change');
    expect(s.agg.pendingPaths('m')).toBe(2);
    await s.clock.advance(500);
    expect(s.calls).toEqual([{ at: 500, mountId: 'm', jobs: [scan('a'), check(['ab/c', 'b'])] }]);
  });

  test('pending paths below a newly requested scan are dropped', async () => {
    const s = setup(SMALL);
    s.agg.add('m', 'a/1', 'add');
    s.agg.add('m', 'a', 'addDir');
    s.agg.add('m', 'b', 'add');
    s.agg.requestScan('m', 'a');
    expect(s.agg.pendingPaths('m')).toBe(1);
    expect(await burst(s, [])).toEqual([[scan('a'), check(['b'])]]);
  });

  test('nested requests merge into the outer one, in either order', async () => {
    const s = setup(SMALL);
    s.agg.requestScan('m', 'a/b');
    s.agg.requestScan('m', 'a');
    s.agg.requestScan('m', 'a/b/c');
    s.agg.requestScan('m', 'x/y');
    const t = s.clock.now();
    expect(await burst(s, [])).toEqual([[scan('a', t), scan('x/y', t)]]);
  });

  test("a request for '' is a mount scan and nothing else", async () => {
    const s = setup(SMALL);
    s.agg.add('m', 'a', 'add');
    s.agg.requestScan('m', 'b');
    s.agg.requestScan('m', '');
    s.agg.add('m', 'c', 'add');
    expect(await burst(s, [])).toEqual([[scan('')]]);
  });

  test('requested scans below a directory count toward its threshold', async () => {
    const s = setup(SMALL);
    s.agg.requestScan('m', 'd/1');
    s.agg.requestScan('m', 'd/2');
    expect(await burst(s, ['d/3', 'd/4'])).toEqual([[scan('d')]]);
  });

  test('each requested scan weighs dirRescanThreshold + 1 against the mount threshold', async () => {
    const s = setup(SMALL); // weight 4 per scan, mount threshold 10
    s.agg.requestScan('m', 'a');
    s.agg.requestScan('m', 'b');
    expect(await burst(s, ['f1', 'f2'])).toEqual([[scan('a'), scan('b'), check(['f1', 'f2'])]]);
    const t = s.clock.now();
    s.agg.requestScan('m', 'a');
    s.agg.requestScan('m', 'b');
    expect(await burst(s, ['f1', 'f2', 'f3'])).toEqual([[scan('', t)]]);
  });
});

describe('add() input handling', () => {
  test('never throws; unusable paths and the root request a mount scan; staging paths are ignored', async () => {
    const s = setup();
    for (const bad of [undefined, null, 42, '../etc/passwd', '/abs/path', 'a\0b'] as unknown[]) {
      expect(() => s.agg.add('m', bad as string, 'add')).not.toThrow();
    }
    expect(await burst(s, [])).toEqual([[scan('')]]);
    const t = s.clock.now();
    expect(await burst(s, [''], 'addDir')).toEqual([[scan('', t)]]);
    expect(await burst(s, ['.filestore-staging/op1/chunk', '.filestore-staging'])).toEqual([]);
    expect(s.clock.timers.size).toBe(0);
    const t2 = s.clock.now();
    expect(await burst(s, ['a//b/', './c'])).toEqual([[check(['a/b', 'c'], t2)]]);
    expect(() => s.agg.requestScan('m', {} as string)).not.toThrow();
  });
});

describe('failures', () => {
  test('a rejected flush keeps its jobs and retries with a doubling backoff; new events join without hastening it', async () => {
    const errors: Array<[string, string, number]> = [];
    const s = setup({ onFlushError: (m, err, n) => errors.push([m, (err as Error).message, n]) });
    let failuresLeft = 3;
    s.setHandler(() => {
      if (failuresLeft-- > 0) throw new Error('redis down');
    });
    s.agg.add('m', 'a', 'add');
    await s.clock.advance(500); // fails at 500 → retry at 1500
    expect(s.agg.retrying('m')).toBe(true);
    expect(s.agg.pendingPaths('m')).toBe(1);
    await s.clock.advance(100);
    s.agg.add('m', 'b', 'add'); // t = 600: would debounce to 1100, but the retry is at 1500
    await s.clock.advance(30_000);
    expect(s.calls.map((c) => c.at)).toEqual([500, 1500, 3500, 7500]);
    expect(s.calls.map((c) => c.jobs)).toEqual([[check(['a'])], [check(['a', 'b'])], [check(['a', 'b'])], [check(['a', 'b'])]]);
    expect(errors).toEqual([
      ['m', 'redis down', 1],
      ['m', 'redis down', 2],
      ['m', 'redis down', 3],
    ]);
    expect(s.agg.retrying('m')).toBe(false);
    expect(s.agg.pendingPaths('m')).toBe(0);
    expect(s.clock.timers.size).toBe(0);
  });

  test('the backoff stops doubling at 30 s', async () => {
    const s = setup();
    s.setHandler(() => Promise.reject(new Error('down')));
    s.agg.add('m', 'a', 'add');
    await s.clock.advance(500 + 1000 + 2000 + 4000 + 8000 + 16000 + 30000 + 30000);
    expect(s.calls.map((c) => c.at)).toEqual([500, 1500, 3500, 7500, 15500, 31500, 61500, 91500]);
    expect(s.agg.retrying('m')).toBe(true);
  });

  test('an explicit flush() retries at once and resolves even when it fails again', async () => {
    const s = setup();
    s.setHandler(() => Promise.reject(new Error('down')));
    s.agg.add('m', 'a', 'add');
    await s.clock.advance(500);
    await expect(s.agg.flush('m')).resolves.toBeUndefined();
    expect(s.calls.map((c) => c.at)).toEqual([500, 500]);
    s.setHandler(() => undefined);
    await s.agg.flush();
    expect(s.calls.map((c) => c.jobs)).toEqual([[check(['a'])], [check(['a'])], [check(['a'])]]);
    expect(s.agg.retrying('m')).toBe(false);
    expect(s.clock.timers.size).toBe(0);
  });

  test('retained scans stay scans and keep covering new events', async () => {
    const s = setup(SMALL);
    s.setHandler(() => Promise.reject(new Error('down')));
    for (const p of ['a/1', 'a/2', 'a/3', 'a/4', 'b']) s.agg.add('m', p, 'add');
    await s.clock.advance(500);
    expect(s.calls.map((c) => c.jobs)).toEqual([[scan('a'), check(['b'])]]);
    expect(s.agg.pendingPaths('m')).toBe(1);
    s.agg.add('m', 'a/5', 'add');
    expect(s.agg.pendingPaths('m')).toBe(1);
    s.setHandler(() => undefined);
    await s.clock.advance(1000);
    expect(s.calls.map((c) => c.jobs)).toEqual([
      [scan('a'), check(['b'])],
      [scan('a'), check(['b'])],
    ]);
  });

  test('retention stays bounded: past mountRescanThreshold only a mount scan is kept', async () => {
    const s = setup();
    s.setHandler(() => Promise.reject(new Error('down')));
    const first = range(4000, (i) => `d${i % 40}/f${pad(i)}`); // 100 per directory: checks
    for (const p of first) s.agg.add('m', p, 'add');
    await s.clock.advance(500);
    expect(s.calls[0].jobs).toHaveLength(16);
    expect(s.agg.pendingPaths('m')).toBe(4000);
    for (let i = 0; i < 2000; i++) s.agg.add('m', `e${i % 40}/g${pad(i)}`, 'add');
    expect(s.agg.pendingPaths('m')).toBe(0); // 6,000 > 5,000: the sets are dropped
    s.setHandler(() => undefined);
    await s.clock.advance(1000);
    expect(s.calls.map((c) => c.jobs)).toEqual([s.calls[0].jobs, [scan('')]]);
  });

  test('merging a failed flush with the events that came in meanwhile applies the collapse rules', async () => {
    const s = setup(SMALL);
    s.setHandler(() => Promise.reject(new Error('down')));
    s.agg.add('m', 'a/1', 'add');
    s.agg.add('m', 'a/2', 'add');
    await s.clock.advance(500);
    s.agg.add('m', 'a/3', 'add');
    s.agg.add('m', 'a/4', 'add');
    s.setHandler(() => undefined);
    await s.clock.advance(1000);
    expect(s.calls.map((c) => c.jobs)).toEqual([[check(['a/1', 'a/2'])], [scan('a')]]);
  });

  test('a handler that throws synchronously is treated like a rejection', async () => {
    const s = setup();
    const agg = new EventAggregator({ ...DEFAULTS, now: s.clock.now, setTimer: s.clock.setTimer, clearTimer: s.clock.clearTimer }, () => {
      throw new Error('sync');
    });
    agg.add('m', 'a', 'add');
    await s.clock.advance(500);
    expect(agg.retrying('m')).toBe(true);
    expect(agg.pendingPaths('m')).toBe(1);
  });
});

describe('concurrency', () => {
  test('one flush per mount in flight; events meanwhile form the next window', async () => {
    const s = setup();
    let release!: () => void;
    s.setHandler(() => new Promise<void>((resolve) => (release = resolve)));
    s.agg.add('m', 'a', 'add');
    await s.clock.advance(500);
    s.agg.add('m', 'b', 'add'); // t = 500, while the first flush is in flight
    const explicit = s.agg.flush('m');
    await s.clock.advance(5000);
    expect(s.calls.map((c) => c.jobs)).toEqual([[check(['a'])]]);
    s.setHandler(() => undefined);
    release();
    await explicit;
    await s.clock.advance(0);
    expect(s.calls.map((c) => c.jobs)).toEqual([[check(['a'])], [check(['b'], 500)]]);
    expect(s.maxInFlight()).toBe(1);
    expect(s.clock.timers.size).toBe(0);
  });
});

describe('close', () => {
  test('flushes what is pending at once, clears timers and ignores later events', async () => {
    const s = setup();
    s.agg.add('m', 'a', 'add');
    s.agg.requestScan('n', 'x');
    await s.agg.close();
    expect(s.calls).toEqual([
      { at: 0, mountId: 'm', jobs: [check(['a'])] },
      { at: 0, mountId: 'n', jobs: [scan('x', 0, 'n')] },
    ]);
    expect(s.clock.timers.size).toBe(0);
    s.agg.add('m', 'b', 'add');
    s.agg.requestScan('m', 'c');
    await s.clock.advance(10_000);
    expect(s.calls).toHaveLength(2);
    expect(s.agg.pendingPaths()).toBe(0);
  });

  test('rejects when jobs could not be handed over, leaving no timer behind', async () => {
    const s = setup();
    s.setHandler(() => Promise.reject(new Error('down')));
    s.agg.add('m', 'a', 'add');
    await expect(s.agg.close()).rejects.toThrow(/not handed over: m$/);
    expect(s.calls).toHaveLength(1);
    expect(s.clock.timers.size).toBe(0);
  });
});

describe('driftJobId', () => {
  test('deterministic, order-insensitive for checks, and blind to firstEventAt', () => {
    expect(driftJobId(check(['b', 'a'], 1))).toBe(driftJobId(check(['a', 'b'], 99)));
    expect(driftJobId(scan('a/b', 1))).toBe(driftJobId(scan('a/b', 2)));
    expect(driftJobId(scan('a/b'))).toMatch(/^scan-[0-9a-f]{24}$/);
    expect(driftJobId(check(['a']))).toMatch(/^check-[0-9a-f]{24}$/);
  });

  test('distinct for different mounts, directories, path sets and kinds', () => {
    const ids = [
      driftJobId(scan('a')),
      driftJobId(scan('a', 0, 'other')),
      driftJobId(scan('')),
      driftJobId(scan('a/b')),
      driftJobId(check(['a'])),
      driftJobId(check(['a'], 0, 'other')),
      driftJobId(check(['a', 'b'])),
      driftJobId(check(['a,b'])),
      driftJobId(scan('', 0, 'm:a')),
    ];
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.some((id) => id.includes(':'))).toBe(false);
  });
});

test('aggregatorOptionsFromConfig maps the drift* settings', () => {
  expect(aggregatorOptionsFromConfig(loadConfig({}))).toEqual(DEFAULTS);
});

test('the constructor refuses nonsensical limits', () => {
  expect(() => new EventAggregator({ ...DEFAULTS, batchSize: 0 }, () => undefined)).toThrow(RangeError);
  expect(() => new EventAggregator({ ...DEFAULTS, debounceMs: -1 }, () => undefined)).toThrow(/debounceMs/);
});
