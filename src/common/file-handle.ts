import type { FileHandle } from "node:fs/promises";

/**
 * Closes a stream's file handle, if it has one, and then calls the stream's
 * destroy callback with its error. A failed close does not replace that error.
 */
export function closeThenCallback(
  handle: FileHandle | undefined,
  error: Error | null,
  callback: (error?: Error | null) => void,
): void {
  if (handle === undefined) {
    callback(error);
    return;
  }
  handle.close().then(
    () => callback(error),
    () => callback(error),
  );
}
