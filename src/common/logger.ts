import { pino, type Logger } from "pino";

export type { Logger };

/**
 * Creates the application logger. Access records do not go through it: the
 * per-request record of the edge is the access log that `metrics/` owns.
 */
export function createLogger(level: string = process.env.PORTICO_LOG_LEVEL ?? "info"): Logger {
  return pino({
    level,
    base: { pid: process.pid },
    redact: {
      paths: [
        "secretAccessKey",
        "*.secretAccessKey",
        "authorization",
        "*.authorization",
        "headers.authorization",
        "*.headers.authorization",
      ],
      censor: "[redacted]",
    },
  });
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
