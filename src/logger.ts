import pino from 'pino';

/** Structured logs (JSON lines on stderr so command output on stdout stays clean). */
export function createLogger(level: string, name = 'filestore'): pino.Logger {
  return pino({ name, level }, pino.destination(2));
}
export type Logger = pino.Logger;
