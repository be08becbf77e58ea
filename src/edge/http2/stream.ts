import type { Readable } from "node:stream";
import type { CachedResponse } from "../../cache/entry.js";
import type { ViewerResponse } from "../exchange.js";
import { currentHttpDate } from "../headers.js";
import type { PreparedHit } from "../hit-head.js";
import { RequestBody } from "../http1/body.js";
import type { ResponseHead } from "./hpack-encoder.js";

/**
 * The connection operations a stream sends its response through. A head is
 * encoded by the connection at the moment its HEADERS frame is written,
 * since the connection's HPACK table depends on the order of the blocks.
 */
export interface StreamSink {
  /** Sends a response head, split into HEADERS and CONTINUATION frames as needed. */
  sendHeaders(stream: Http2Stream, head: ResponseHead, endStream: boolean): void;
  /** Sends body bytes within the flow-control windows; the rest waits for WINDOW_UPDATE. */
  sendData(stream: Http2Stream, data: Buffer, endStream: boolean): void;
  /**
   * Sends HEADERS and one DATA frame in a single write when the windows allow it, else as
   * sendHeaders and sendData do.
   */
  sendWhole(stream: Http2Stream, head: ResponseHead, body: Buffer | undefined): void;
  /** Resolves when the stream's queued data has left and the socket takes more, or false when the stream ended. */
  waitForRoom(stream: Http2Stream): Promise<boolean>;
  /** Resets the stream, as when an origin body breaks off. */
  resetStream(stream: Http2Stream, code: number): void;
}

/** One request and response on an HTTP/2 connection. */
export class Http2Stream {
  /** Window for DATA this server may send, and window this server grants for request DATA. */
  sendWindow: number;
  receiveWindow: number;
  /** The client ended its side (END_STREAM received). */
  remoteClosed = false;
  /** This server ended its side (END_STREAM sent), or the stream was reset. */
  localClosed = false;
  reset = false;
  /** DATA bytes waiting for window, with whether the last of them ends the stream. */
  readonly pending: Array<{ data: Buffer; end: boolean }> = [];
  body: RequestBody | undefined;
  expectedBodyBytes: number | undefined;
  receivedBodyBytes = 0;
  /** Request body bytes read by the handler but not yet returned to the client's window. */
  consumedBodyBytes = 0;
  /** When request DATA last arrived, for the body idle timeout, in epoch milliseconds. */
  lastDataAtMs = 0;
  readonly response: Http2Response;

  constructor(
    readonly id: number,
    sendWindow: number,
    receiveWindow: number,
    sink: StreamSink,
  ) {
    this.sendWindow = sendWindow;
    this.receiveWindow = receiveWindow;
    this.response = new Http2Response(this, sink);
  }

  get closed(): boolean {
    return this.reset || (this.remoteClosed && this.localClosed);
  }
}

/** Response fields that HTTP/2 forbids (RFC 9113 section 8.2.2); the edge's HTTP/1.1 framing may have left them. */
const FORBIDDEN_RESPONSE_FIELDS = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

function http2Fields(headers: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (!FORBIDDEN_RESPONSE_FIELDS.has(headers[i]!)) out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}

/** Returns the HTTP/2 fields of a response head, with `date` added when the origin sent none (RFC 9110 section 6.6.1). */
function responseFields(headers: readonly string[]): string[] {
  const fields = http2Fields(headers);
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === "date") return fields;
  fields.push("date", currentHttpDate());
  return fields;
}

/** The ViewerResponse of one HTTP/2 stream. */
export class Http2Response implements ViewerResponse {
  bytesSent = 0;
  private started = false;
  private finished = false;
  private doneListener: ((bytesSent: number) => void) | undefined;

  constructor(
    private readonly h2stream: Http2Stream,
    private readonly sink: StreamSink,
  ) {}

  send(status: number, headers: readonly string[], body: Buffer | undefined): void {
    if (!this.begin()) return;
    if (body !== undefined && body.length > 0) this.bytesSent += body.length;
    this.sink.sendWhole(this.h2stream, { status, fields: responseFields(headers) }, body !== undefined && body.length > 0 ? body : undefined);
  }

  sendHit(prepared: PreparedHit, entry: CachedResponse, requestId: string, body: Buffer | undefined): void {
    if (!this.begin()) return;
    // The prepared fields are shared by every hit on the entry in this second, so a connection
    // that sends the same entry again reuses its encoded block.
    const head: ResponseHead = { status: prepared.status, fields: http2FieldsOf(prepared, entry), reuseKey: prepared, requestId };
    this.bytesSent += body?.length ?? 0;
    this.sink.sendWhole(this.h2stream, head, body !== undefined && body.length > 0 ? body : undefined);
  }

  /** Counts the octets of an encoded header block as sent. The connection calls it as it writes the block. */
  countHeaderBytes(octets: number): void {
    this.bytesSent += octets;
  }

  async stream(status: number, headers: readonly string[], body: Readable): Promise<void> {
    if (!this.begin()) {
      body.destroy();
      return;
    }
    this.sink.sendHeaders(this.h2stream, { status, fields: responseFields(headers) }, false);
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (this.h2stream.reset) break;
        if (chunk.length === 0) continue;
        this.bytesSent += chunk.length;
        this.sink.sendData(this.h2stream, chunk, false);
        if (!(await this.sink.waitForRoom(this.h2stream))) break;
      }
    } catch {
      // The origin broke off: the viewer cannot get a complete response on this stream.
      this.sink.resetStream(this.h2stream, 0x2);
      return;
    }
    if (this.h2stream.reset) {
      body.destroy();
      return;
    }
    this.sink.sendData(this.h2stream, Buffer.alloc(0), true);
  }

  onDone(listener: (bytesSent: number) => void): void {
    this.doneListener = listener;
    if (this.finished) listener(this.bytesSent);
  }

  /** Called by the connection once the stream has closed, completely sent or reset. */
  closed(): void {
    if (this.finished) return;
    this.finished = true;
    this.doneListener?.(this.bytesSent);
  }

  private begin(): boolean {
    if (this.started || this.h2stream.reset) return false;
    this.started = true;
    return true;
  }
}

/** Returns the HTTP/2 fields of a prepared hit without the request id, built on the first HTTP/2 hit. */
function http2FieldsOf(prepared: PreparedHit, entry: CachedResponse): readonly string[] {
  if (prepared.http2Fields !== undefined) return prepared.http2Fields;
  const fields = http2Fields(entry.hitHeaders);
  const ageSeconds = entry.initialAgeSeconds + prepared.elapsedSeconds;
  fields.push("age", String(ageSeconds), "cache-status", prepared.cacheStatus);
  if (prepared.date !== undefined) fields.push("date", prepared.date);
  prepared.http2Fields = fields;
  return fields;
}
