import type { IncomingHttpHeaders } from "node:http";
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import type { CachedResponse } from "../cache/entry.js";
import type { EdgeResultType } from "../metrics/types.js";
import type { PreparedHit } from "./hit-head.js";

/**
 * A viewer request as the request handler sees it, independent of the
 * server that parsed it, so the HTTP plumbing can be replaced.
 */
export interface ViewerRequest {
  method: string;
  /** The request-target as received, percent-encoded. */
  target: string;
  /** The path part of the target. */
  path: string;
  /** The query part of the target without `?`, or empty. */
  rawQuery: string;
  /** Lower-case names. */
  headers: IncomingHttpHeaders;
  protocol: "http" | "https";
  httpVersion: string;
  clientIp: string;
  /**
   * The connection the request arrived on, a TLSSocket for HTTPS. Only access
   * logs read it, for the client port and the TLS version and cipher.
   */
  socket: Socket | undefined;
  /** The request body; its bytes are read only when the request is forwarded. */
  body: Readable;
  /** `performance.now()` when the request arrived. */
  startedAt: number;
  /** `Date.now()` when the request arrived. */
  receivedAtMs: number;
  /**
   * Bytes of the request head as received: the request line and header
   * fields on HTTP/1.1, the HPACK-encoded header block on HTTP/2.
   */
  headBytes: number;
}

/** The response side, implemented by each server front end. */
export interface ViewerResponse {
  /** Sends a whole response. `headers` is a flat `[name, value, ...]` list that includes Content-Length. */
  send(status: number, headers: readonly string[], body: Buffer | undefined): void;
  /** Sends the head, then pipes `body`; resolves when the body ended or the viewer went away. */
  stream(status: number, headers: readonly string[], body: Readable): Promise<void>;
  /**
   * Sends a plain cache hit from its prepared head: the head, `requestId`,
   * the connection's framing headers, then `body` (none for HEAD). Front
   * ends without it get the hit through `send`.
   */
  sendHit?(prepared: PreparedHit, entry: CachedResponse, requestId: string, body: Buffer | undefined): void;
  /** Calls `listener` once when the response finished or the connection closed before that. */
  onDone(listener: (bytesSent: number) => void): void;
}

/** What the handler learned while serving one request, for metrics and logs. */
export interface ExchangeState {
  requestId: string;
  /** Whether the request is a HEAD, whose responses carry no body. */
  head: boolean;
  /** The Host header's name, lower case and without port. */
  hostName: string;
  distributionId: string | undefined;
  /** Whether an access log records this request, so its record carries the viewer's headers. */
  logsRequests: boolean;
  status: number;
  resultType: EdgeResultType;
  originLatencyMs: number | undefined;
  bytesUploaded: number;
  /** The cached entry whose body the response sends, held in the memory tier until the response is done. */
  heldEntry?: CachedResponse | undefined;
  /** In-flight budget bytes reserved for the response's unstored body until the response is done. */
  reservedBytes?: number | undefined;
}
