import { Readable } from "node:stream";

/**
 * Bytes at the end of a body of declared length that are relayed without
 * pausing undici. A pause taken before the tail lets undici buffer up to
 * UNDICI_BODY_HIGH_WATER_MARK plus one socket read (64 KiB on Linux) before
 * its parser stops, so the last bytes are still unread in the socket. The
 * margin over that sum is an estimate, not a measured bound.
 */
const UNPAUSED_TAIL_BYTES = 1024 * 1024;

/** Size of undici's own buffer of a response body before it pauses its parser (its default is 64 KiB). */
export const UNDICI_BODY_HIGH_WATER_MARK = 256 * 1024;

/**
 * Relays an undici response body so that its HTTP/1.1 parser is never paused
 * on the last bytes of a response that closes the connection.
 *
 * undici 7 pauses its parser when a body's buffer is full. An origin may then
 * close the connection, as HTTP/1.0 servers and `Connection: close` responses
 * do. undici's socket 'end' and 'close' handlers assert that the parser is not
 * paused, and the AssertionError ends the process. This is nodejs/undici#5360,
 * fixed in undici 8, which needs Node.js 22. A slow viewer of a large uncached
 * object from `python3 -m http.server` is enough to trigger it.
 *
 * The relay reads undici's body as it arrives and pauses it for backpressure
 * only while more than UNPAUSED_TAIL_BYTES of a declared length remain.
 * Without a declared length it pauses only a chunked body that keeps the
 * connection open. A body whose end is the connection's close is relayed
 * without pausing at all.
 *
 * NOTE: a body that ends with the connection's close is never paused, so a
 * viewer slower than the origin makes the edge buffer up to the whole body in
 * memory. The tail of a declared-length body costs at most UNPAUSED_TAIL_BYTES.
 */
export class OriginBodyRelay extends Readable {
  private receivedBytes = 0;

  constructor(
    private readonly source: Readable,
    private readonly declaredBytes: number | undefined,
    private readonly pausableWithoutLength: boolean,
  ) {
    super();
    source.on("data", (chunk: Buffer) => this.relay(chunk));
    source.on("end", () => this.push(null));
    source.on("error", (error) => this.destroy(error));
  }

  override _read(): void {
    this.source.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Destroying undici's body before its end aborts the origin request and frees the connection.
    if (!this.source.readableEnded) this.source.destroy();
    callback(error);
  }

  private relay(chunk: Buffer): void {
    this.receivedBytes += chunk.length;
    if (this.push(chunk) || !this.mayPause()) return;
    this.source.pause();
  }

  private mayPause(): boolean {
    if (this.declaredBytes === undefined) return this.pausableWithoutLength;
    return this.declaredBytes - this.receivedBytes > UNPAUSED_TAIL_BYTES;
  }
}

/**
 * Wraps an undici response body in an OriginBodyRelay, reading its framing
 * from the response headers (lower-case names, as undici gives them).
 */
export function relayOriginBody(body: Readable, headers: Record<string, string | string[] | undefined>): OriginBodyRelay {
  const length = headers["content-length"];
  const declaredBytes = typeof length === "string" && /^\d+$/.test(length) ? Number(length) : undefined;
  const connection = String(headers.connection ?? "").toLowerCase();
  const chunked = headers["transfer-encoding"] !== undefined;
  return new OriginBodyRelay(body, declaredBytes, chunked && !connection.includes("close"));
}
