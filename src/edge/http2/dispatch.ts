import type { IncomingHttpHeaders } from "node:http";
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import type { Logger } from "../../common/logger.js";
import type { ViewerRequest } from "../exchange.js";
import { RequestBody } from "../http1/body.js";
import type { RequestListener } from "../http1/connection.js";
import { normalizePath } from "../path.js";
import type { Http2RequestHead } from "./request.js";
import type { Http2Stream } from "./stream.js";

/** The context a connection dispatches its requests with, one object reused for all of them. */
export interface DispatchContext {
  listener: RequestListener;
  clientIp: string;
  /** `https` on the TLS port, `http` for h2c. */
  protocol: "http" | "https";
  /** The connection's socket, which access logs read for the port, and on TLS for its version and cipher. */
  socket: Socket;
  /** `performance.now()` and `Date.now()` of the frames' arrival. */
  startedAt: number;
  receivedAtMs: number;
  /** Bytes of the HEADERS and CONTINUATION payloads that carried the request's header block. */
  headBytes: number;
  /** The decoded header list passed SETTINGS_MAX_HEADER_LIST_SIZE, so the request gets 431. */
  headerListTooLarge: boolean;
  log: Logger;
}

/** A viewer request on HTTP/2; a request without DATA gets an empty body only when one is read. */
class Http2Request implements ViewerRequest {
  readonly httpVersion = "HTTP/2.0";

  constructor(
    readonly protocol: "http" | "https",
    readonly method: string,
    readonly target: string,
    readonly path: string,
    readonly rawQuery: string,
    readonly headers: IncomingHttpHeaders,
    readonly clientIp: string,
    readonly socket: Socket,
    private bodyStream: Readable | undefined,
    readonly startedAt: number,
    readonly receivedAtMs: number,
    readonly headBytes: number,
  ) {}

  get body(): Readable {
    if (this.bodyStream === undefined) {
      const empty = new RequestBody(() => {});
      empty.push(null);
      this.bodyStream = empty;
    }
    return this.bodyStream;
  }
}

function plainResponse(stream: Http2Stream, status: number, message: string): void {
  const body = Buffer.from(`${message}\n`);
  stream.response.send(status, ["content-type", "text/plain; charset=utf-8", "content-length", String(body.length)], body);
}

/**
 * Hands one HTTP/2 request to the listener. The path goes through the same
 * normalisation as on HTTP/1.1, and a query may contain no whitespace, `#`
 * or `\`, which HTTP/1.1's request line cannot carry either.
 */
export function dispatchRequest(stream: Http2Stream, head: Http2RequestHead, context: DispatchContext): void {
  if (context.headerListTooLarge) {
    plainResponse(stream, 431, "Request Header Fields Too Large");
    return;
  }
  const rawPath = head.path;
  if (rawPath.charCodeAt(0) !== 0x2f) {
    plainResponse(stream, 400, "Bad Request: invalid :path");
    return;
  }
  const queryStart = rawPath.indexOf("?");
  const rawQuery = queryStart < 0 ? "" : rawPath.slice(queryStart + 1);
  const normalized = normalizePath(queryStart < 0 ? rawPath : rawPath.slice(0, queryStart));
  if (!normalized.ok) {
    plainResponse(stream, 400, `Bad Request: ${normalized.reason}`);
    return;
  }
  if (rawQuery !== "" && /[\s#\\]/.test(rawQuery)) {
    plainResponse(stream, 400, "Bad Request: invalid query");
    return;
  }

  const headers = head.headers;
  // RFC 9113 section 8.3.1: :authority replaces Host.
  if (head.authority !== undefined) headers.host = head.authority;
  const path = normalized.path;
  const request = new Http2Request(
    context.protocol,
    head.method,
    rawQuery === "" ? path : `${path}?${rawQuery}`,
    path,
    rawQuery,
    headers,
    context.clientIp,
    context.socket,
    stream.body,
    context.startedAt,
    context.receivedAtMs,
    context.headBytes,
  );
  try {
    context.listener(request, stream.response)?.catch((error: unknown) => listenerFailed(stream, context.log, error));
  } catch (error) {
    listenerFailed(stream, context.log, error);
  }
}

function listenerFailed(stream: Http2Stream, log: Logger, error: unknown): void {
  log.error({ err: error }, "edge request listener failed");
  plainResponse(stream, 500, "Internal Server Error");
}
