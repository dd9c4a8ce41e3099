import { type LevelWithSilent, type Logger, pino } from 'pino';

export type { Logger };

/** Paths pino blanks out wherever they appear, so credentials never reach a log line. */
const REDACT_PATHS = [
  'authorization',
  'Authorization',
  '*.authorization',
  '*.Authorization',
  'headers.authorization',
  '*.headers.authorization',
  'password',
  '*.password',
  'token',
  '*.token',
  'access_token',
  '*.access_token',
  'secret',
  '*.secret',
  'credentials',
  '*.credentials',
];

export interface LogOptions {
  level?: LevelWithSilent;
  /** Where JSON lines go; stderr by default, because stdout is for results. */
  destination?: NodeJS.WritableStream;
}

/** The root logger: JSON on stderr with credentials redacted. */
export function createLogger(options: LogOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: undefined,
    },
    (options.destination ?? process.stderr) as pino.DestinationStream,
  );
}

/** A logger that discards everything (library code and tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
