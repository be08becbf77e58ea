import type { Readable } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { CachedResponse } from "../cache/entry.js";
import type { RequestRecord } from "../metrics/types.js";
import type { ViewerRequest, ViewerResponse } from "./exchange.js";
import { headerIn } from "./headers.js";
import { sendPreparedHit, type PreparedHit } from "./hit-head.js";

/**
 * Wraps the viewer response of a request that an access log records, and
 * keeps the headers of the response it sends. Requests without an access log
 * are never wrapped, so they pay nothing for these fields.
 */
export class HeadRecordingResponse implements ViewerResponse {
  /** The flat `[name, value, ...]` header list sent, or undefined before a response. */
  sentHeaders: readonly string[] | undefined;
  /** `performance.now()` when the response head went to the front end, or undefined before a response. */
  headSentAt: number | undefined;

  constructor(private readonly inner: ViewerResponse) {}

  // Each method keeps the headers before it delegates, because the inner
  // response may finish, and the request be recorded, within the call.
  send(status: number, headers: readonly string[], body: Buffer | undefined): void {
    this.sentHeaders = headers;
    this.headSentAt = performance.now();
    this.inner.send(status, headers, body);
  }

  sendHit(prepared: PreparedHit, entry: CachedResponse, requestId: string, body: Buffer | undefined): void {
    // A prepared hit sends the entry's hit header block, which has Content-Type and Content-Length.
    this.sentHeaders = entry.hitHeaders;
    this.headSentAt = performance.now();
    sendPreparedHit(this.inner, prepared, entry, requestId, body);
  }

  stream(status: number, headers: readonly string[], body: Readable): Promise<void> {
    this.sentHeaders = headers;
    this.headSentAt = performance.now();
    return this.inner.stream(status, headers, body);
  }

  onDone(listener: (bytesSent: number) => void): void {
    this.inner.onDone(listener);
  }
}

/** Parses `bytes first-last/length`. The unsatisfied form of a 416, with `*` for the range, has no positions. */
const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(?:\d+|\*)$/;

/**
 * Sets the record fields that only access logs use. They are the viewer's
 * port, the TLS version and cipher, the bytes of the whole request, the time
 * to the response head, and the content type, length and range of the
 * response that was sent. A field the edge does not have stays undefined.
 */
export function addAccessLogFields(record: RequestRecord, request: ViewerRequest, sent: HeadRecordingResponse | undefined): void {
  record.requestBytes = request.headBytes + record.bytesUploaded;
  const socket = request.socket;
  if (socket !== undefined) {
    record.clientPort = socket.remotePort;
    if (request.protocol === "https") {
      const tls = socket as TLSSocket;
      record.tlsProtocol = tls.getProtocol?.() ?? undefined;
      record.tlsCipher = tls.getCipher?.()?.name;
    }
  }
  const sentHeaders = sent?.sentHeaders;
  if (sent?.headSentAt !== undefined) record.timeToFirstByteMs = Math.max(0, sent.headSentAt - request.startedAt);
  if (sentHeaders === undefined) return;
  record.contentType = headerIn(sentHeaders, "content-type");
  const length = headerIn(sentHeaders, "content-length");
  if (length !== undefined && /^\d+$/.test(length)) record.contentLength = Number(length);
  const range = CONTENT_RANGE.exec(headerIn(sentHeaders, "content-range") ?? "");
  if (range !== null) {
    record.rangeStart = Number(range[1]);
    record.rangeEnd = Number(range[2]);
  }
}
