/** Rounding as bench:local reports it; the shared helpers live in bench-util.ts. */
export { intEnv, MiB, now } from './bench-util';
export const round = (n: number, digits = 3) => Number(n.toFixed(digits));
