import { Readable, Transform, type TransformCallback } from "node:stream";
import type { CacheKeyResult } from "../cache/key.js";
import { viewerStatusOf, type Origin, type OriginResponse } from "../origin/index.js";
import type { EdgeContext } from "./context.js";
import type { ExchangeState, ViewerRequest, ViewerResponse } from "./exchange.js";
import { cacheStatus, originHeader, passOriginHeaders } from "./headers.js";
import { sendEdgeResponse, streamUncached } from "./respond.js";
import { forwardsCookies, type RoutedBehavior, type RoutedDistribution } from "./routing.js";

/** Viewer headers that describe a forwarded request body. */
const BODY_HEADERS = ["content-type", "content-length", "content-encoding", "content-md5"];

/**
 * Builds the headers of an origin request: the values the cache key selected,
 * plus the edge's own (User-Agent, Via, X-Amz-Cf-Id, X-Forwarded-For) as
 * CloudFront adds them.
 */
export function originRequestHeaders(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  keyResult: CacheKeyResult,
): Record<string, string> {
  const headers: Record<string, string> = { ...keyResult.forwardedHeaders };
  if (headers["user-agent"] === undefined) headers["user-agent"] = "Amazon CloudFront";
  headers.via = `${request.httpVersion} ${context.edgeId}.portico (Portico)`;
  headers["x-amz-cf-id"] = state.requestId;
  const forwardedFor = request.headers["x-forwarded-for"];
  headers["x-forwarded-for"] = forwardedFor === undefined ? request.clientIp : `${forwardedFor}, ${request.clientIp}`;
  return headers;
}

/** Returns the declared Content-Length of an origin response, or undefined when absent or invalid. */
export function declaredLength(response: OriginResponse): number | undefined {
  const value = originHeader(response.headers, "content-length");
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

/** Counts the bytes of a viewer body on its way to the origin. */
class ByteCounter extends Transform {
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

function ignoreError(): void {}

/**
 * Pipes a viewer's request body into a ByteCounter, the body sent to the
 * origin. When the viewer's body closes before its end, because the viewer
 * left, the counter is destroyed, which aborts the origin request instead of
 * leaving the origin waiting for the rest. pipeline() would do that too, but
 * it would also destroy the viewer's stream on an origin failure, and for
 * HTTP/2 that is the stream the 502 goes out on.
 */
function countViewerBody(body: Readable): ByteCounter {
  const counter = new ByteCounter();
  // undici listens for the counter's errors only while its request is open, and the
  // viewer can leave after the origin has responded.
  counter.on("error", ignoreError);
  body.pipe(counter);
  body.once("close", () => {
    if (!body.readableEnded) counter.destroy(new Error("the viewer's request body closed before its end"));
  });
  return counter;
}

/** Sends 502, or 504 on a timeout, for an origin request that failed without a response. */
export function sendOriginFailure(
  context: EdgeContext,
  state: ExchangeState,
  response: ViewerResponse,
  distribution: RoutedDistribution,
  error: unknown,
): void {
  logOriginFailure(context, state, distribution, error);
  const failure = originFailureOf(error);
  sendEdgeResponse(context, state, response, failure.status, failure.message);
}

export function logOriginFailure(context: EdgeContext, state: ExchangeState, distribution: RoutedDistribution, error: unknown): void {
  context.log.error({ err: error, distributionId: distribution.id, requestId: state.requestId }, "origin request failed");
}

/** The response the edge sends for an origin that gave none: 504 when it timed out, else 502. */
export interface OriginFailure {
  status: number;
  message: string;
  /** The Cache-Status detail naming the failure. */
  detail: "origin-timeout" | "origin-unreachable";
}

/** Returns the Cache-Status detail of the edge's own 502 or 504. */
export function originFailureDetail(status: number): OriginFailure["detail"] {
  return status === 504 ? "origin-timeout" : "origin-unreachable";
}

export function originFailureOf(error: unknown): OriginFailure {
  const status = viewerStatusOf(error) === 504 ? 504 : 502;
  const message =
    status === 504
      ? "ERROR: The request could not be satisfied. The origin did not respond in time."
      : "ERROR: The request could not be satisfied. The edge could not connect to the origin.";
  return { status, message, detail: originFailureDetail(status) };
}

/** Largest 403 body read to find the error code and message; S3 error documents are far smaller. */
const MAX_DENIAL_BODY_BYTES = 8192;

/**
 * Logs an origin's 403, which is then passed to the viewer unchanged. The
 * log names the cause where the origin gives one: the S3 error `Code` and
 * `Message` of a small XML body (the body is read and replaced by a copy),
 * the `x-amz-error-*` headers, and for S3 origins whether the request was
 * signed through an origin access control at all.
 */
export async function noteOriginDenied(
  context: EdgeContext,
  state: ExchangeState,
  distribution: RoutedDistribution,
  path: string,
  response: OriginResponse,
): Promise<void> {
  if (response.status !== 403) return;
  let errorCode = originHeader(response.headers, "x-amz-error-code");
  let errorMessage = originHeader(response.headers, "x-amz-error-message");
  const length = declaredLength(response);
  if (length !== undefined && length <= MAX_DENIAL_BODY_BYTES) {
    const chunks: Buffer[] = [];
    for await (const chunk of response.body) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    response.body = Readable.from([body]);
    const text = body.toString("utf8");
    errorCode ??= /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
    errorMessage ??= /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
  }
  context.log.info(
    {
      distributionId: distribution.id,
      requestId: state.requestId,
      path,
      errorCode,
      errorMessage,
      errorDetail: originHeader(response.headers, "x-amz-error-detail"),
      signed: response.signed,
    },
    response.signed === false
      ? "origin denied the request with 403; the request was unsigned because the origin has no signing origin access control"
      : "origin denied the request with 403",
  );
}

/**
 * Forwards a request without caching: methods other than GET and HEAD (with
 * their body), and behaviors that bypass the cache.
 */
export async function forwardUncached(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  distribution: RoutedDistribution,
  behavior: RoutedBehavior,
  origin: Origin,
  originPath: string,
  keyResult: CacheKeyResult,
): Promise<void> {
  const isSafe = request.method === "GET" || request.method === "HEAD";
  const headers = originRequestHeaders(context, state, request, keyResult);
  let counter: ByteCounter | undefined;
  if (!isSafe) {
    for (const name of BODY_HEADERS) {
      const value = request.headers[name];
      if (typeof value === "string") headers[name] = value;
    }
    counter = countViewerBody(request.body);
  }

  let originResponse: OriginResponse;
  try {
    originResponse = await origin.fetch({
      method: request.method,
      path: originPath,
      query: keyResult.forwardedQuery,
      headers,
      body: counter,
      viewerProtocol: request.protocol,
    });
  } catch (error) {
    if (counter !== undefined && request.body.destroyed && !request.body.readableEnded) {
      // The viewer left during its upload, so no one is waiting for a response.
      context.log.info(
        { distributionId: distribution.id, requestId: state.requestId, bytesUploaded: counter.bytes },
        "viewer left before its request body ended; aborted the origin request",
      );
      return;
    }
    sendOriginFailure(context, state, response, distribution, error);
    return;
  } finally {
    if (counter !== undefined) state.bytesUploaded = counter.bytes;
  }

  state.originLatencyMs = originResponse.firstByteLatencyMs;
  await noteOriginDenied(context, state, distribution, originPath, originResponse);
  const statusValue = isSafe
    ? cacheStatus.bypass(originResponse.status, behavior.cache.key.allHeaders ? "all-headers-forwarded" : "caching-disabled")
    : cacheStatus.method(originResponse.status);
  await streamUncached(
    context,
    state,
    request,
    response,
    {
      status: originResponse.status,
      headers: passOriginHeaders(originResponse.headers, forwardsCookies(behavior)),
      body: originResponse.body,
      contentLength: declaredLength(originResponse),
    },
    statusValue,
    behavior.headersPolicy,
  );
  if (counter !== undefined) state.bytesUploaded = counter.bytes;
}
