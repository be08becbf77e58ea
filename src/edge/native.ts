import { createRequire } from "node:module";

/**
 * The edge's native part, `native/send-body.c`, which `npm install` builds
 * on Linux. Every caller has a fallback for a process without it, on another
 * platform or a machine without a C compiler.
 */
export interface EdgeAddon {
  sharedBody(length: number): [Buffer, number] | undefined;
  sendHeadAndBody(socketFd: number, head: Buffer, bodyFd: number, length: number): number;
  queuedBytes(socketFd: number): number;
}

/**
 * Loads `build/Release/<name>.node`, or returns undefined off Linux, when it
 * was not built, or when the environment variable `disabledBy` is "1".
 */
export function loadNativePart<T>(name: string, disabledBy?: string): T | undefined {
  if (process.platform !== "linux") return undefined;
  if (disabledBy !== undefined && process.env[disabledBy] === "1") return undefined;
  try {
    const require = createRequire(import.meta.url);
    return require(`../../build/Release/${name}.node`) as T;
  } catch {
    return undefined;
  }
}

export const addon = loadNativePart<EdgeAddon>("send_body");

/**
 * Returns the bytes in a socket's kernel send queue that the peer has not
 * acknowledged yet, or undefined when this process cannot tell.
 */
export function kernelQueuedBytes(socketFd: number): number | undefined {
  if (addon === undefined) return undefined;
  const queued = addon.queuedBytes(socketFd);
  return queued < 0 ? undefined : queued;
}
