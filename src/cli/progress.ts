/** Receives one progress message, which replaces the previous one. */
export type ProgressReporter = (message: string) => void;

/** How often a wait's elapsed time is reported. */
const TICK_INTERVAL_MS = 1_000;

/**
 * A progress line on a terminal: each update overwrites the line in place.
 * On a stream that is not a terminal (a pipe, a file, a test) it writes
 * nothing, so captured output holds only the real results.
 */
export class ProgressLine {
  private shown = false;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  readonly update: ProgressReporter = (message) => {
    if (!this.stream.isTTY) return;
    const width = this.stream.columns > 1 ? this.stream.columns - 1 : 79;
    this.stream.write(`\r\x1b[2K${message.slice(0, width)}`);
    this.shown = true;
  };

  /** Erases the line, before other output is written. */
  clear(): void {
    if (!this.shown) return;
    this.stream.write("\r\x1b[2K");
    this.shown = false;
  }
}

/** Reports `label` with the elapsed seconds every second until `work` settles. */
export async function withElapsedTime<T>(progress: ProgressReporter, label: string, work: Promise<T>): Promise<T> {
  const startedAtMs = Date.now();
  progress(`${label}...`);
  const timer = setInterval(() => {
    progress(`${label}... ${Math.round((Date.now() - startedAtMs) / 1000)}s`);
  }, TICK_INTERVAL_MS);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}
