import { addon } from "./native.js";

/**
 * Cached bodies that a plain HTTP/1.1 connection sends with sendfile(2).
 *
 * A body kept in ordinary memory leaves through one writev, which copies it
 * into the socket. A body kept in a memfd mapping also has a file descriptor,
 * so the kernel can send it from its own pages, as nginx sends its cache
 * files with `sendfile on`. Without the native part (see native.ts), every
 * body stays in ordinary memory and leaves through writev.
 *
 * Two bare server processes with the body in memory were measured with wrk
 * over 64 connections on a 2-core machine. With sendfile rather than writev
 * they served as many 16 KiB and 256 KiB responses a second, 8 to 10% more
 * at 32 KiB, 13 to 15% more at 100 KiB and 25 to 35% more at 512 KiB. At
 * 768 KiB and 1 MiB they served 27 to 42% fewer. Only bodies from 32 to
 * 512 KiB use it.
 */

/** Bodies below this size leave in one write with their head, where a second system call would cost more. */
export const SHARED_BODY_MIN_BYTES = 32 * 1024;
/** Bodies above this size leave through writev, which measured faster on loopback for large bodies. */
export const SHARED_BODY_MAX_BYTES = 512 * 1024;

/** The file descriptor of each shared body, by the buffer that maps it. */
const descriptors = new WeakMap<Buffer, number>();

/** Whether shared bodies are available in this process; `PORTICO_NO_SENDFILE=1` turns them off. */
export const sharedBodiesAvailable = addon !== undefined && process.env.PORTICO_NO_SENDFILE !== "1";

/**
 * Returns `body` copied into a shared mapping when its size suits sendfile,
 * or `body` itself otherwise, also when the process has too many mappings.
 */
export function toSharedBody(body: Buffer): Buffer {
  if (!sharedBodiesAvailable || body.length < SHARED_BODY_MIN_BYTES || body.length > SHARED_BODY_MAX_BYTES) return body;
  if (descriptors.has(body)) return body;
  const created = addon!.sharedBody(body.length);
  if (created === undefined) return body;
  const [shared, fd] = created;
  body.copy(shared);
  descriptors.set(shared, fd);
  return shared;
}

/** Returns the descriptor of a shared body, or undefined for a body in ordinary memory. */
export function sharedBodyFd(body: Buffer): number | undefined {
  return descriptors.get(body);
}

/**
 * Sends `head` and then the whole shared body behind `bodyFd` on a plain
 * socket's descriptor, without blocking. Returns the bytes the kernel took,
 * which may be fewer than both together.
 */
export function sendHeadAndSharedBody(socketFd: number, head: Buffer, bodyFd: number, bodyBytes: number): number {
  return addon!.sendHeadAndBody(socketFd, head, bodyFd, bodyBytes);
}
