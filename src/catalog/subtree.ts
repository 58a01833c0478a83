/** SQL LIKE pattern matching everything strictly below canonical path `p` (with %, _ and \ escaped). */
export function belowPattern(p: string): string {
  return `${p.replace(/[\\%_]/g, (c) => `\\${c}`)}/%`;
}
