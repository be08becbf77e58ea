import type { Socket } from "node:net";
import { buildConnector } from "undici";

/** Write errors that mean the origin has closed the connection, possibly after sending a response. */
const PEER_CLOSED_CODES = new Set(["EPIPE", "ECONNRESET"]);

type WriteCallback = (error?: Error | null) => void;
type Chunks = Array<{ chunk: unknown; encoding: BufferEncoding }>;

function peerClosed(error: Error | null | undefined): boolean {
  return error != null && PEER_CLOSED_CODES.has((error as NodeJS.ErrnoException).code ?? "");
}

/**
 * Keeps an origin socket open for reading after a write fails because the origin closed the
 * connection.
 *
 * An origin may respond to an upload before it reads the body, as with a 413, and then close.
 * The rest of the upload makes the origin's kernel reset the connection, so the next write here
 * fails with EPIPE or ECONNRESET. Node.js destroys a socket whose write fails, which discards the
 * response still unread in the receive queue, and undici then fails the request with that error.
 * Instead, that write and every later one is reported as done and its bytes are dropped, so
 * undici reads on. The kernel still delivers what the origin sent, then its end or reset, and
 * undici fails the request as before only when no response head is among those bytes.
 */
export function keepReadingAfterPeerClose(socket: Socket): void {
  let writesDropped = false;
  const settle = (callback: WriteCallback): WriteCallback => (error) => {
    if (!peerClosed(error)) {
      callback(error);
      return;
    }
    writesDropped = true;
    callback();
  };
  const write = socket._write;
  socket._write = function (chunk: unknown, encoding: BufferEncoding, callback: WriteCallback): void {
    if (writesDropped) callback();
    else write.call(this, chunk, encoding, settle(callback));
  };
  const writev = socket._writev;
  if (writev === undefined) return;
  socket._writev = function (chunks: Chunks, callback: WriteCallback): void {
    if (writesDropped) callback();
    else writev.call(this, chunks, settle(callback));
  };
}

/** Builds undici's connector for origin connections whose sockets keep reading after the origin closed them. */
export function originConnector(connectTimeoutMs: number): buildConnector.connector {
  const connect = buildConnector({ timeout: connectTimeoutMs });
  return (options, callback) =>
    connect(options, (...args) => {
      // undici passes the error alone when the connection fails.
      const socket = args[1];
      if (socket != null) keepReadingAfterPeerClose(socket);
      callback(...args);
    });
}
