import { pino } from 'pino';
import { ConfigError } from '../shared/errors.ts';
import type { Logger } from '../shared/log.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export const LOG_LEVELS: LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

/** Structured JSON logs (pino), one line per event, to stdout (fd 1) or stderr (fd 2). */
export function createLogger(level: LogLevel, fd: 1 | 2 = 1, name = 'cohort'): Logger {
  if (!LOG_LEVELS.includes(level)) throw new ConfigError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  return pino({ name, level }, pino.destination({ fd, sync: true })) as unknown as Logger;
}
