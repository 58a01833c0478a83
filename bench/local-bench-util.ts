/**
 * Small helpers shared by the parts of bench/local-bench.ts: env knobs, timing and rounding.
 */
export const MiB = 1024 * 1024;

export function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

export const now = () => performance.now();
export const round = (n: number, digits = 3) => Number(n.toFixed(digits));
