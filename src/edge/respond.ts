import { randomBytes } from "node:crypto";
import { pipeline, Transform, type Readable, type TransformCallback } from "node:stream";
import { currentAgeSeconds, remainingTtlSeconds, type CachedResponse } from "../cache/entry.js";
import { ifRangeAllows, isNotModified } from "../cache/etag.js";
import type { EdgeContext } from "./context.js";
import type { ExchangeState, ViewerRequest, ViewerResponse } from "./exchange.js";
import { appendEdgeHeaders, cacheStatus, type XCacheValue, headerIn, headerText } from "./headers.js";
import { preparedHitFor, sendPreparedHit } from "./hit-head.js";
import { contentRange, multipartByteranges, resolveRange, resolveRanges, type RangeDecision } from "./range.js";
import {
  appendCorsHeaders,
  applyHeadersPolicy,
  applyStaticHeaders,
  type CompiledHeadersPolicy,
  type CorsRequest,
} from "./response-headers.js";

/** Returns the X-Cache value for a response: errors are reported as errors whatever their source. */
function xCacheFor(status: number, served: "Hit" | "Miss" | "RefreshHit"): XCacheValue {
  return status >= 400 ? "Error" : served;
}

/** Builds the header block served on every full hit of an entry, with the policy's static headers. */
export function buildHitHeaders(
  context: EdgeContext,
  entry: Pick<CachedResponse, "originHeaders" | "body" | "status">,
  policy: CompiledHeadersPolicy | undefined,
): string[] {
  const headers = applyStaticHeaders(entry.originHeaders, policy);
  headers.push("content-length", String(entry.body.length));
  return appendEdgeHeaders(headers, context.identity, xCacheFor(entry.status, "Hit"));
}

/**
 * Serves a fresh entry. A GET or HEAD without conditionals or Range, with no
 * CORS headers to add and a status below 400, gets the entry's prepared
 * head; every other request goes through serveEntry.
 */
export function serveFreshHit(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  entry: CachedResponse,
  policy: CompiledHeadersPolicy | undefined,
): void {
  const headers = request.headers;
  if (
    entry.status >= 400 ||
    headers["if-none-match"] !== undefined ||
    headers["if-modified-since"] !== undefined ||
    headers.range !== undefined ||
    (policy?.cors !== undefined && headers.origin !== undefined)
  ) {
    serveEntry(context, state, request, response, entry, "Hit", cacheStatus.hit(ttlLeft(entry)), policy);
    return;
  }
  const policyTag = policy?.tag ?? "";
  if (entry.headersPolicyTag !== policyTag) {
    // Built under an older policy: rebuild once, so later hits reuse it.
    entry.hitHeaders = buildHitHeaders(context, entry, policy);
    entry.headersPolicyTag = policyTag;
  }
  const prepared = preparedHitFor(entry, request.receivedAtMs);
  state.status = entry.status;
  state.resultType = "Hit";
  if (request.method !== "HEAD") holdBody(context, state, entry);
  sendPreparedHit(response, prepared, entry, state.requestId, request.method === "HEAD" ? undefined : entry.body);
}

/** Bodies up to this size are copied into the response or leave with its first write. */
const HOLD_MIN_BYTES = 2048;

/**
 * Holds `entry` in the memory tier while the response sends its body, so a
 * body a slow viewer still reads counts against the budget after eviction.
 * The handler releases it when the response is done.
 */
function holdBody(context: EdgeContext, state: ExchangeState, entry: CachedResponse): void {
  if (entry.body.length <= HOLD_MIN_BYTES) return;
  // A custom error page replaces a response that was never sent.
  if (state.heldEntry !== undefined) context.memory.release(state.heldEntry);
  context.memory.hold(entry);
  state.heldEntry = entry;
}

/** Returns the CORS-relevant values of a viewer request. */
export function corsRequestOf(request: ViewerRequest): CorsRequest {
  const requestMethod = request.headers["access-control-request-method"];
  return {
    method: request.method,
    origin: request.headers.origin,
    requestMethod: typeof requestMethod === "string" ? requestMethod : undefined,
  };
}

/** Headers that a 304 carries (RFC 9110 section 15.4.5). */
const NOT_MODIFIED_HEADERS = new Set(["cache-control", "content-location", "date", "etag", "expires", "vary", "last-modified"]);

/**
 * Sends a cached entry: a full hit from the precomputed header block, or a
 * 304, 206 (one range or multipart/byteranges) or 416 derived from it. The
 * behavior's response headers policy applies to each.
 */
export function serveEntry(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  entry: CachedResponse,
  served: "Hit" | "Miss" | "RefreshHit",
  cacheStatusValue: string,
  policy?: CompiledHeadersPolicy,
): void {
  const nowMs = Date.now();
  const isHead = request.method === "HEAD";
  state.resultType = entry.status >= 400 ? "Error" : served;
  const ageSeconds = currentAgeSeconds(entry, nowMs);
  const sendsAge = served !== "Miss" || entry.initialAgeSeconds > 0;
  const cors = corsRequestOf(request);

  const conditional =
    entry.status === 200 &&
    isNotModified(
      headerText(request.headers["if-none-match"]),
      request.headers["if-modified-since"],
      entry.etag,
      entry.lastModifiedMs,
    );
  if (conditional) {
    const headers = applyHeadersPolicy(notModifiedHeaders(entry.originHeaders), policy, cors);
    appendEdgeHeaders(headers, context.identity, served);
    if (sendsAge) headers.push("age", String(ageSeconds));
    headers.push("x-amz-cf-id", state.requestId, "cache-status", cacheStatusValue);
    state.status = 304;
    response.send(304, headers, undefined);
    return;
  }

  const rangeHeader = request.headers.range;
  const range =
    entry.status === 200 &&
    rangeHeader !== undefined &&
    ifRangeAllows(headerText(request.headers["if-range"]), entry.etag, entry.lastModified)
      ? resolveRanges(rangeHeader, entry.body.length)
      : ({ kind: "full" } as const);

  if (range.kind === "full") {
    const policyTag = policy?.tag ?? "";
    if (served === "Hit" && entry.headersPolicyTag !== policyTag) {
      // Built under an older policy: rebuild once, so later hits reuse it.
      entry.hitHeaders = buildHitHeaders(context, entry, policy);
      entry.headersPolicyTag = policyTag;
    }
    const headers = served === "Hit" ? entry.hitHeaders.slice() : buildFullHeaders(context, entry, served, policy);
    appendCorsHeaders(headers, policy, cors);
    if (sendsAge) headers.push("age", String(ageSeconds));
    headers.push("x-amz-cf-id", state.requestId, "cache-status", cacheStatusValue);
    state.status = entry.status;
    if (!isHead) holdBody(context, state, entry);
    response.send(entry.status, headers, isHead ? undefined : entry.body);
    return;
  }

  const headers = applyHeadersPolicy(entry.originHeaders, policy, cors);
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

  state.status = 206;
  if (range.ranges.length === 1) {
    const only = range.ranges[0]!;
    const part = entry.body.subarray(only.start, only.end + 1);
    headers.push("content-range", contentRange(only.start, only.end, entry.body.length), "content-length", String(part.length));
    if (!isHead) holdBody(context, state, entry);
    response.send(206, headers, isHead ? undefined : part);
    return;
  }
  const boundary = randomBytes(12).toString("hex");
  const body = multipartByteranges(entry.body, range.ranges, headerIn(entry.originHeaders, "content-type"), boundary);
  const multipartHeaders = withoutHeader(headers, "content-type");
  multipartHeaders.push("content-type", `multipart/byteranges; boundary=${boundary}`, "content-length", String(body.length));
  response.send(206, multipartHeaders, isHead ? undefined : body);
}

function buildFullHeaders(
  context: EdgeContext,
  entry: CachedResponse,
  served: "Miss" | "RefreshHit",
  policy: CompiledHeadersPolicy | undefined,
): string[] {
  const headers = applyStaticHeaders(entry.originHeaders, policy);
  headers.push("content-length", String(entry.body.length));
  return appendEdgeHeaders(headers, context.identity, xCacheFor(entry.status, served));
}

function withoutHeader(headers: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== name) out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}

/** Returns the seconds of freshness left, for Cache-Status, which are negative once stale (RFC 9211 section 2.4). */
export function ttlLeft(entry: CachedResponse): number {
  return remainingTtlSeconds(entry, Date.now());
}

function ignoreError(): void {}

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

/** An origin response on its way to the viewer without being kept in memory. */
export interface StreamedResponse {
  status: number;
  headers: string[];
  body: Readable;
  contentLength: number | undefined;
  /** The origin's `Age`, passed on to the viewer when above 0. */
  originAgeSeconds?: number;
  /**
   * The position in the object of the body's first byte, for a body that holds only the range
   * that `rangeToServe` picks for this response. 0 when absent.
   */
  bodyStart?: number;
}

/**
 * Returns the range that `streamUncached` serves of a response for a request:
 * a single satisfiable range of a 200 whose length is known, unless If-Range
 * rules it out. Multiple ranges are ignored, so the whole body is sent.
 */
export function rangeToServe(request: ViewerRequest, status: number, headers: readonly string[], contentLength: number | undefined): RangeDecision {
  if (status !== 200 || (request.method !== "GET" && request.method !== "HEAD")) return { kind: "full" };
  if (contentLength === undefined || request.headers.range === undefined) return { kind: "full" };
  if (!ifRangeAllows(headerText(request.headers["if-range"]), headerIn(headers, "etag"), headerIn(headers, "last-modified"))) {
    return { kind: "full" };
  }
  return resolveRange(request.headers.range, contentLength);
}

/**
 * Streams a response that is not served from memory: from the origin, or a
 * large entry from the disk tier (`hit` set). A single Range is served by
 * slicing the stream when the length is known, so the viewer does not wait
 * for the whole object. Otherwise the whole body is sent.
 */
export async function streamUncached(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  origin: StreamedResponse,
  cacheStatusValue: string,
  policy?: CompiledHeadersPolicy,
  hit?: { ageSeconds: number; served?: "Hit" | "RefreshHit" },
): Promise<void> {
  const served = hit === undefined ? "Miss" : (hit.served ?? "Hit");
  const isHead = request.method === "HEAD";
  // A viewer whose conditionals match gets 304, as from a stored entry. Otherwise a large object
  // streamed from the origin or a file would go out whole to a viewer that has it. A 206 built
  // from range slices gets the same check, since If-None-Match comes before Range (RFC 9110
  // section 13.2.2).
  const notModified =
    (origin.status === 200 || origin.status === 206) && (request.method === "GET" || isHead) && viewerHasCopy(request, origin.headers);
  const headers = applyHeadersPolicy(notModified ? notModifiedHeaders(origin.headers) : origin.headers, policy, corsRequestOf(request));
  appendEdgeHeaders(headers, context.identity, origin.status >= 400 ? "Error" : served);
  if (hit !== undefined) headers.push("age", String(hit.ageSeconds));
  else if (origin.originAgeSeconds !== undefined && origin.originAgeSeconds > 0) headers.push("age", String(origin.originAgeSeconds));
  headers.push("x-amz-cf-id", state.requestId, "cache-status", cacheStatusValue);
  state.resultType = origin.status >= 400 ? "Error" : served;
  if (notModified) {
    origin.body.destroy();
    state.status = 304;
    response.send(304, headers, undefined);
    return;
  }

  const range = rangeToServe(request, origin.status, origin.headers, origin.contentLength);
  const bodyStart = origin.bodyStart ?? 0;
  if (bodyStart > 0 && (range.kind !== "partial" || range.start < bodyStart)) {
    throw new Error(`a body that begins at byte ${bodyStart} cannot serve the range that the request selects`);
  }

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
    const slice = new ByteRangeTransform(range.start - bodyStart, range.end - bodyStart);
    // pipeline() destroys the origin body when a viewer that left destroys the slice. A body left
    // paused would hold its origin connection, and shutdown, for as long as the origin keeps it open.
    // The slice carries an origin error to the viewer side itself.
    pipeline(origin.body, slice, ignoreError);
    await response.stream(206, headers, slice);
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

/** Returns whether the viewer's If-None-Match or If-Modified-Since matches a response's validators. */
function viewerHasCopy(request: ViewerRequest, headers: readonly string[]): boolean {
  const lastModified = headerIn(headers, "last-modified");
  return isNotModified(
    headerText(request.headers["if-none-match"]),
    request.headers["if-modified-since"],
    headerIn(headers, "etag"),
    lastModified === undefined ? Number.NaN : Date.parse(lastModified),
  );
}

/** Returns the headers of a 200 that its 304 keeps (RFC 9110 section 15.4.5). */
function notModifiedHeaders(headers: readonly string[]): string[] {
  const notModified: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (NOT_MODIFIED_HEADERS.has(headers[i]!)) notModified.push(headers[i]!, headers[i + 1]!);
  }
  return notModified;
}

/** Sends a short plain-text response generated by the edge itself. */
export function sendEdgeResponse(
  context: EdgeContext,
  state: ExchangeState,
  response: ViewerResponse,
  status: number,
  message: string,
  extraHeaders: string[] = [],
  cacheStatusValue = "portico; detail=edge-generated",
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
    "cache-status",
    cacheStatusValue,
  ];
  appendEdgeHeaders(headers, context.identity, xCache);
  state.status = status;
  state.resultType = xCache;
  // A response to HEAD has the Content-Length of the GET response and no body (RFC 9110 section 9.3.2).
  response.send(status, headers, state.head ? undefined : body);
}
