import { Transform, type Readable, type TransformCallback } from "node:stream";
import { currentAgeSeconds, remainingTtlSeconds, type CachedResponse } from "../cache/entry.js";
import type { EdgeContext } from "./context.js";
import type { ExchangeState, ViewerRequest, ViewerResponse } from "./exchange.js";
import { appendEdgeHeaders, type XCacheValue } from "./headers.js";
import { contentRange, resolveRange } from "./range.js";

/** Returns the X-Cache value for a response: errors are reported as errors whatever their source. */
function xCacheFor(status: number, served: "Hit" | "Miss" | "RefreshHit"): XCacheValue {
  return status >= 400 ? "Error" : served;
}

/** Builds the header block served on every full hit of an entry. */
export function buildHitHeaders(context: EdgeContext, entry: Omit<CachedResponse, "hitHeaders">): string[] {
  const headers = [...entry.originHeaders, "content-length", String(entry.body.length)];
  return appendEdgeHeaders(headers, context.identity, xCacheFor(entry.status, "Hit"));
}

/** Weak comparison of entity tags (RFC 9110 section 8.8.3.2) against an If-None-Match list. */
function ifNoneMatchHits(header: string, etag: string | undefined): boolean {
  if (etag === undefined) return false;
  if (header.trim() === "*") return true;
  const opaque = etag.replace(/^W\//, "");
  return header.split(",").some((candidate) => candidate.trim().replace(/^W\//, "") === opaque);
}

/** Evaluates the viewer's If-None-Match and If-Modified-Since (RFC 9110 section 13.2.2). */
function isNotModified(request: ViewerRequest, entry: CachedResponse): boolean {
  if (entry.status !== 200) return false;
  const ifNoneMatch = request.headers["if-none-match"];
  if (ifNoneMatch !== undefined) return ifNoneMatchHits(ifNoneMatch, entry.etag);
  const ifModifiedSince = request.headers["if-modified-since"];
  if (ifModifiedSince === undefined || Number.isNaN(entry.lastModifiedMs)) return false;
  const sinceMs = Date.parse(ifModifiedSince);
  return Number.isFinite(sinceMs) && entry.lastModifiedMs <= sinceMs;
}

/** Returns whether If-Range (RFC 9110 section 13.1.5) lets a Range apply to this entry. */
function ifRangeAllows(request: ViewerRequest, entry: CachedResponse): boolean {
  const header = request.headers["if-range"];
  if (header === undefined) return true;
  const ifRange = Array.isArray(header) ? header.join(", ") : header;
  if (ifRange.startsWith('"') || ifRange.startsWith("W/")) {
    return entry.etag !== undefined && !entry.etag.startsWith("W/") && ifRange === entry.etag;
  }
  return ifRange === entry.lastModified;
}

/** Headers that a 304 carries (RFC 9110 section 15.4.5). */
const NOT_MODIFIED_HEADERS = new Set(["cache-control", "content-location", "date", "etag", "expires", "vary", "last-modified"]);

/**
 * Sends a cached entry: a full hit from the precomputed header block, or a
 * 304, 206 or 416 derived from it.
 */
export function serveEntry(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  entry: CachedResponse,
  served: "Hit" | "Miss" | "RefreshHit",
  cacheStatusValue: string,
): void {
  const nowMs = Date.now();
  const isHead = request.method === "HEAD";
  state.resultType = entry.status >= 400 ? "Error" : served;
  const ageSeconds = currentAgeSeconds(entry, nowMs);
  const sendsAge = served !== "Miss" || entry.initialAgeSeconds > 0;

  if (isNotModified(request, entry)) {
    const headers: string[] = [];
    for (let i = 0; i < entry.originHeaders.length; i += 2) {
      if (NOT_MODIFIED_HEADERS.has(entry.originHeaders[i]!)) headers.push(entry.originHeaders[i]!, entry.originHeaders[i + 1]!);
    }
    appendEdgeHeaders(headers, context.identity, served);
    if (sendsAge) headers.push("age", String(ageSeconds));
    headers.push("x-amz-cf-id", state.requestId, "cache-status", cacheStatusValue);
    state.status = 304;
    response.send(304, headers, undefined);
    return;
  }

  const range =
    entry.status === 200 && request.headers.range !== undefined && ifRangeAllows(request, entry)
      ? resolveRange(request.headers.range, entry.body.length)
      : ({ kind: "full" } as const);

  if (range.kind === "full") {
    const headers = served === "Hit" ? entry.hitHeaders.slice() : buildFullHeaders(context, entry, served);
    if (sendsAge) headers.push("age", String(ageSeconds));
    headers.push("x-amz-cf-id", state.requestId, "cache-status", cacheStatusValue);
    state.status = entry.status;
    response.send(entry.status, headers, isHead ? undefined : entry.body);
    return;
  }

  const headers = entry.originHeaders.slice();
  appendEdgeHeaders(headers, context.identity, xCacheFor(entry.status, served));
  if (sendsAge) headers.push("age", String(ageSeconds));
  headers.push("x-amz-cf-id", state.requestId, "cache-status", cacheStatusValue);
  if (range.kind === "unsatisfiable") {
    headers.push("content-range", `bytes */${entry.body.length}`, "content-length", "0");
    state.status = 416;
    state.resultType = "Error";
    response.send(416, withoutHeader(headers, "content-type"), undefined);
    return;
  }
  const part = entry.body.subarray(range.start, range.end + 1);
  headers.push(
    "content-range",
    contentRange(range.start, range.end, entry.body.length),
    "content-length",
    String(part.length),
  );
  state.status = 206;
  response.send(206, headers, isHead ? undefined : part);
}

function buildFullHeaders(context: EdgeContext, entry: CachedResponse, served: "Miss" | "RefreshHit"): string[] {
  const headers = [...entry.originHeaders, "content-length", String(entry.body.length)];
  return appendEdgeHeaders(headers, context.identity, xCacheFor(entry.status, served));
}

function withoutHeader(headers: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== name) out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}

/** Returns the seconds of freshness left, never below zero, for Cache-Status. */
export function ttlLeft(entry: CachedResponse): number {
  return Math.max(0, remainingTtlSeconds(entry, Date.now()));
}

/** Passes bytes `start` through `end` (inclusive) of a stream and drops the rest. */
class ByteRangeTransform extends Transform {
  private offset = 0;
  private readonly firstByte: number;
  private readonly lastByte: number;

  constructor(firstByte: number, lastByte: number) {
    super();
    this.firstByte = firstByte;
    this.lastByte = lastByte;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const chunkStart = this.offset;
    this.offset += chunk.length;
    const from = Math.max(this.firstByte - chunkStart, 0);
    const to = Math.min(this.lastByte + 1 - chunkStart, chunk.length);
    if (to > from) this.push(chunk.subarray(from, to));
    callback();
  }
}

/**
 * Streams an origin response that is not cached. A single Range is served
 * by slicing the stream when the origin declared the length. Otherwise the
 * whole body is sent.
 */
export async function streamUncached(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  origin: { status: number; headers: string[]; body: Readable; contentLength: number | undefined },
  cacheStatusValue: string,
): Promise<void> {
  const headers = origin.headers.slice();
  appendEdgeHeaders(headers, context.identity, origin.status >= 400 ? "Error" : "Miss");
  headers.push("x-amz-cf-id", state.requestId, "cache-status", cacheStatusValue);
  state.resultType = origin.status >= 400 ? "Error" : "Miss";
  const isHead = request.method === "HEAD";

  const range =
    origin.status === 200 &&
    (request.method === "GET" || isHead) &&
    origin.contentLength !== undefined &&
    request.headers.range !== undefined
      ? resolveRange(request.headers.range, origin.contentLength)
      : ({ kind: "full" } as const);

  if (range.kind === "unsatisfiable") {
    origin.body.destroy();
    headers.push("content-range", `bytes */${origin.contentLength ?? 0}`, "content-length", "0");
    state.status = 416;
    state.resultType = "Error";
    response.send(416, withoutHeader(headers, "content-type"), undefined);
    return;
  }

  if (range.kind === "partial") {
    headers.push(
      "content-range",
      contentRange(range.start, range.end, origin.contentLength!),
      "content-length",
      String(range.end - range.start + 1),
    );
    state.status = 206;
    if (isHead) {
      origin.body.destroy();
      response.send(206, headers, undefined);
      return;
    }
    const slice = new ByteRangeTransform(range.start, range.end);
    origin.body.on("error", (error) => slice.destroy(error));
    await response.stream(206, headers, origin.body.pipe(slice));
    return;
  }

  if (origin.contentLength !== undefined) headers.push("content-length", String(origin.contentLength));
  state.status = origin.status;
  if (isHead || origin.status === 204 || origin.status === 304) {
    origin.body.destroy();
    response.send(origin.status, headers, undefined);
    return;
  }
  await response.stream(origin.status, headers, origin.body);
}

/** Sends a short plain-text response generated by the edge itself. */
export function sendEdgeResponse(
  context: EdgeContext,
  state: ExchangeState,
  response: ViewerResponse,
  status: number,
  message: string,
  extraHeaders: string[] = [],
): void {
  const body = Buffer.from(message.endsWith("\n") ? message : `${message}\n`);
  const xCache: XCacheValue = status >= 300 && status < 400 ? "Redirect" : "Error";
  const headers = [
    ...extraHeaders,
    "content-type",
    "text/plain; charset=utf-8",
    "content-length",
    String(body.length),
    "x-amz-cf-id",
    state.requestId,
  ];
  appendEdgeHeaders(headers, context.identity, xCache);
  state.status = status;
  state.resultType = xCache;
  response.send(status, headers, body);
}
