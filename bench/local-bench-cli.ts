/**
 * CLI start-up figure of bench:local (issue 8, point 2): the wall time of `filestore` processes as a
 * person starts them (bin/filestore.js on the built dist/, a new process each time) against the bench
 * stack's database and Temporal server, next to `node -e 1` measured in the same run.
 *
 *   catalog reads  `mount ls`, `ls`, `stat`, `journal ls`   target ≤ 0.25 s
 *   mutation       `put` of a 4 KiB file, waiting for the result  target ≤ 0.5 s (the workflow included)
 *
 * Two yardsticks run alongside: `node -e 1`, and a Node process that only loads the Temporal client
 * (the floor of a put through Temporal's SDK: protobufjs builds the whole API's types at load).
 *
 * Rounds go round-robin over the commands (one of each, then the next round), so a burst of load
 * from elsewhere on the machine hits every command alike rather than one. Each figure is the median
 * and the best of BENCH_CLI_ROUNDS rounds (@defaultValue 7), after one warm-up round that is not
 * counted; `met` is judged on the median. BENCH_CLI_BIN names another bin/filestore.js to time (a
 * build of an older commit, for a before/after) @defaultValue this checkout's.
 *
 * ```ts
 * const cli = await benchCli(stack);      // stack from createBenchStack(), its worker running
 * process.stdout.write(renderCliTable(cli));
 * ```
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { FILESTORE_BIN, stackEnv } from '../test/helpers/cli';
import type { BenchStack } from './bench-stack';
import { intEnv, log, now, percentile, table } from './bench-util';

const run = promisify(execFile);

export const CLI_ROUNDS = intEnv('BENCH_CLI_ROUNDS', 7);
/** Issue 8: a catalog read in a blink, a small put (workflow included) in half a second. */
export const CLI_READ_TARGET_SECONDS = 0.25;
export const CLI_PUT_TARGET_SECONDS = 0.5;
const PUT_BYTES = 4096;

export interface CliFigure {
  /** What ran, as a person types it (`filestore ls bench:cli`). */
  command: string;
  medianSeconds: number;
  bestSeconds: number;
  /** Every counted round, in order (seconds). */
  samples: number[];
  /** null for the yardstick (`node -e 1`). */
  targetSeconds: number | null;
  met: boolean | null;
}

export interface CliFigures {
  rounds: number;
  /** `node -e 1`: the start-up no Node program can beat on this machine. */
  node: CliFigure;
  /**
   * A Node process that only loads the Temporal client the CLI uses (its bundle, else
   * `@temporalio/client`): the floor of any `put` through Temporal's SDK, before a single round trip.
   */
  temporalClient: CliFigure;
  /** mount ls, ls, stat, journal ls, put (in that order). */
  commands: CliFigure[];
  /** Every command met its target (on the median). */
  met: boolean;
  putBytes: number;
}

interface Spec {
  command: string;
  /** `filestore` arguments (a put needs a fresh target path each round); `node` ones for a yardstick. */
  argv: (round: number) => string[];
  /** Runs `node <argv>` rather than `filestore <argv>`. */
  yardstick?: boolean;
  target: number | null;
}

/**
 * Times the CLI against `stack` (createBenchStack's: its database, Temporal server, task queue and
 * in-process worker serving `stack.mountId`). Needs the compiled dist/ (`npm run build`; scripts/
 * bench.sh's bootstrap builds it).
 */
export async function benchCli(stack: BenchStack, opts: { bin?: string } = {}): Promise<CliFigures> {
  const bin = opts.bin ?? (process.env.BENCH_CLI_BIN || FILESTORE_BIN);
  const entry = path.join(path.dirname(bin), '..', 'dist', 'src', 'cli', 'main.js');
  if (!fs.existsSync(entry)) throw new Error(`benchCli: ${entry} is missing; run \`npm run build\` first`);
  const env = stackEnv(stack.config);
  const mount = stack.mountId;
  // A directory of its own per call, so two calls on one stack (a before/after) never collide.
  const dir = `cli-bench-${randomBytes(3).toString('hex')}`;
  const src = path.join(stack.tmp, `${dir}-4k.bin`);
  await fs.promises.writeFile(src, Buffer.alloc(PUT_BYTES, 0x61));

  const filestore = async (args: string[]) => {
    const t0 = now();
    try {
      await run(process.execPath, [bin, ...args], { env, maxBuffer: 16 * 1024 * 1024 });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`benchCli: filestore ${args.join(' ')} failed: ${(e.stderr ?? '').trim() || e.message}`);
    }
    return (now() - t0) / 1000;
  };
  // Something to list and stat (and the directory the puts go to).
  await filestore(['put', src, `${mount}:${dir}/seed.bin`]);

  const temporalBundle = path.join(path.dirname(entry), 'temporal-client.bundle.js');
  const temporalClient = fs.existsSync(temporalBundle) ? temporalBundle : require.resolve('@temporalio/client');
  const specs: Spec[] = [
    { command: 'node -e 1', argv: () => ['-e', '1'], yardstick: true, target: null },
    { command: 'node: load the Temporal client only', argv: () => ['-e', `require(${JSON.stringify(temporalClient)})`], yardstick: true, target: null },
    { command: 'filestore mount ls', argv: () => ['mount', 'ls'], target: CLI_READ_TARGET_SECONDS },
    { command: `filestore ls ${mount}:${dir}`, argv: () => ['ls', `${mount}:${dir}`], target: CLI_READ_TARGET_SECONDS },
    { command: `filestore stat ${mount}:${dir}/seed.bin`, argv: () => ['stat', `${mount}:${dir}/seed.bin`], target: CLI_READ_TARGET_SECONDS },
    { command: 'filestore journal ls', argv: () => ['journal', 'ls'], target: CLI_READ_TARGET_SECONDS },
    { command: `filestore put <4 KiB file> ${mount}:${dir}/put-<n>`, argv: (r) => ['put', src, `${mount}:${dir}/put-${r}.bin`], target: CLI_PUT_TARGET_SECONDS },
  ];
  const once = async (s: Spec, r: number): Promise<number> => {
    if (!s.yardstick) return filestore(s.argv(r));
    const t0 = now();
    await run(process.execPath, s.argv(r), { env });
    return (now() - t0) / 1000;
  };

  const samples = specs.map(() => [] as number[]);
  log(`cli: ${CLI_ROUNDS} rounds (+1 warm-up) of ${specs.map((s) => s.command).join(', ')}`);
  for (let r = 0; r <= CLI_ROUNDS; r++) {
    for (let i = 0; i < specs.length; i++) {
      const seconds = await once(specs[i], r);
      if (r > 0) samples[i].push(seconds);
    }
  }

  const figures = specs.map((s, i): CliFigure => {
    const sorted = [...samples[i]].sort((a, b) => a - b);
    const medianSeconds = percentile(sorted, 50);
    return {
      command: s.command,
      medianSeconds,
      bestSeconds: sorted[0],
      samples: samples[i],
      targetSeconds: s.target,
      met: s.target === null ? null : medianSeconds <= s.target,
    };
  });
  const [node, temporalClientFigure, ...commands] = figures;
  return { rounds: CLI_ROUNDS, node, temporalClient: temporalClientFigure, commands, met: commands.every((c) => c.met === true), putBytes: PUT_BYTES };
}

/** The human table of {@link benchCli}'s figures. */
export function renderCliTable(f: CliFigures): string {
  const s = (n: number) => n.toFixed(3);
  const rows = [f.node, f.temporalClient, ...f.commands].map((c) => [
    c.command,
    s(c.medianSeconds),
    s(c.bestSeconds),
    (c.medianSeconds / f.node.medianSeconds).toFixed(1),
    c.targetSeconds === null ? '' : `<= ${c.targetSeconds}`,
    c.met === null ? '' : c.met ? 'yes' : 'NO',
  ]);
  return `CLI start-up, wall seconds per process (${f.rounds} rounds, met on the median)\n${table([
    ['command', 'median s', 'best s', 'x node', 'target', 'met?'],
    ...rows,
  ])}`;
}
