import type { IncomingHttpHeaders } from "node:http";
import type { IncomingHttpHeaders as Http2Headers, OutgoingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { CachedResponse } from "../cache/entry.js";
import type { Logger } from "../common/logger.js";
import type { ViewerRequest, ViewerResponse } from "./exchange.js";
import { http2HeadersOf, type PreparedHit } from "./hit-head.js";
import type { RequestListener } from "./http1/connection.js";
import { normalizePath } from "./path.js";

/** Adapts one HTTP/2 stream to ViewerResponse; counts the body bytes and an estimate of the head's. */
class Http2ViewerResponse implements ViewerResponse {
  private bytesSent = 0;

  constructor(private readonly h2stream: ServerHttp2Stream) {}

  private respond(status: number, headers: readonly string[], endStream: boolean): boolean {
    if (this.h2stream.destroyed || this.h2stream.headersSent) return false;
    const out: OutgoingHttpHeaders = { ":status": status };
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      const value = headers[i + 1]!;
      this.bytesSent += name.length + value.length + 2;
      const previous = out[name];
      if (previous === undefined) out[name] = value;
      else if (Array.isArray(previous)) previous.push(value);
      else out[name] = [String(previous), value];
    }
    this.h2stream.respond(out, { endStream });
    return true;
  }

  send(status: number, headers: readonly string[], body: Buffer | undefined): void {
    const empty = body === undefined || body.length === 0;
    if (!this.respond(status, headers, empty)) return;
    if (!empty) {
      this.bytesSent += body.length;
      this.h2stream.end(body);
    }
  }

  sendHit(prepared: PreparedHit, entry: CachedResponse, requestId: string, body: Buffer | undefined): void {
    const h2stream = this.h2stream;
    if (h2stream.destroyed || h2stream.headersSent) return;
    const headers = http2HeadersOf(prepared, entry);
    // respond() reads the shared object synchronously, so setting the id just before is safe.
    headers["x-amz-cf-id"] = requestId;
    const empty = body === undefined || body.length === 0;
    h2stream.respond(headers, { endStream: empty });
    this.bytesSent += prepared.headerBytes + requestId.length + 15;
    if (!empty) {
      this.bytesSent += body.length;
      h2stream.end(body);
    }
  }

  async stream(status: number, headers: readonly string[], body: Readable): Promise<void> {
    if (!this.respond(status, headers, false)) {
      body.destroy();
      return;
    }
    body.on("data", (chunk: Buffer) => (this.bytesSent += chunk.length));
    try {
      await pipeline(body, this.h2stream);
    } catch {
      // The viewer reset the stream or the origin broke off.
      this.h2stream.close(0x2); // INTERNAL_ERROR (RFC 9113 section 7)
    }
  }

  onDone(listener: (bytesSent: number) => void): void {
    this.h2stream.once("close", () => listener(this.bytesSent));
  }
}

function ignoreStreamError(): void {}

function sendBadRequest(stream: ServerHttp2Stream, reason: string): void {
  const body = `Bad Request: ${reason}\n`;
  stream.respond({ ":status": 400, "content-type": "text/plain; charset=utf-8", "content-length": body.length });
  stream.end(body);
}

/**
 * Hands one HTTP/2 request to the listener. node:http2 has already checked
 * the header block (RFC 9113 section 8.2); the path goes through the same
 * normalisation as on HTTP/1.1.
 */
export function acceptHttp2Stream(
  stream: ServerHttp2Stream,
  headers: Http2Headers,
  listener: RequestListener,
  log: Logger,
): void {
  // A viewer's RST_STREAM with a code other than NO_ERROR or CANCEL destroys the stream with
  // ERR_HTTP2_STREAM_ERROR, and Node ends the process on an 'error' event with no listener. The
  // response side learns of the reset from 'close' and from its own pipeline.
  stream.on("error", ignoreStreamError);
  const method = headers[":method"] ?? "GET";
  const rawPath = headers[":path"];
  if (rawPath === undefined || rawPath.charCodeAt(0) !== 0x2f) {
    sendBadRequest(stream, "invalid :path");
    return;
  }
  const queryStart = rawPath.indexOf("?");
  const rawQuery = queryStart < 0 ? "" : rawPath.slice(queryStart + 1);
  const normalized = normalizePath(queryStart < 0 ? rawPath : rawPath.slice(0, queryStart));
  if (!normalized.ok || /[\s#\\]/.test(rawQuery)) {
    sendBadRequest(stream, normalized.ok ? "invalid query" : normalized.reason);
    return;
  }

  const viewerHeaders: IncomingHttpHeaders = {};
  for (const name in headers) {
    if (name.charCodeAt(0) === 0x3a) continue;
    viewerHeaders[name] = headers[name] as string;
  }
  // RFC 9113 section 8.3.1: :authority replaces Host.
  const authority = headers[":authority"];
  if (authority !== undefined) viewerHeaders.host = authority;

  const path = normalized.path;
  const request: ViewerRequest = {
    method,
    target: rawQuery === "" ? path : `${path}?${rawQuery}`,
    path,
    rawQuery,
    headers: viewerHeaders,
    protocol: "https",
    httpVersion: "HTTP/2.0",
    clientIp: stream.session?.socket.remoteAddress ?? "",
    socket: stream.session?.socket,
    body: stream,
    startedAt: performance.now(),
    receivedAtMs: Date.now(),
  };
  const failed = (error: unknown): void => {
    log.error({ err: error }, "edge request listener failed");
    stream.close(0x2);
  };
  try {
    listener(request, new Http2ViewerResponse(stream))?.catch(failed);
  } catch (error) {
    failed(error);
  }
}
