import type { IncomingHttpHeaders } from "node:http";
import { RequestIdSource } from "../common/ids.js";
import { hostNameOf } from "./host.js";
import { buildCacheKey } from "../cache/key.js";
import type { RequestRecord } from "../metrics/types.js";
import { serveCacheable } from "./cache-flow.js";
import type { EdgeContext } from "./context.js";
import type { ExchangeState, ViewerRequest, ViewerResponse } from "./exchange.js";
import { addAccessLogFields, HeadRecordingResponse } from "./access-log-fields.js";
import { ErrorPageResponse } from "./error-pages.js";
import { forwardUncached } from "./forward.js";
import { sendEdgeResponse } from "./respond.js";
import { selectBehavior, type RoutedDistribution } from "./routing.js";

/**
 * Handles viewer requests: Host to distribution, path to cache behavior,
 * viewer protocol policy and allowed methods, then the cache or a plain
 * forward to the origin. It never touches sockets, so any HTTP front end
 * that implements ViewerRequest and ViewerResponse can drive it.
 */
export class EdgeRequestHandler {
  private readonly requestIds = new RequestIdSource();
  /** The wrapped responses of requests that an access log records, by their exchange. */
  private readonly loggedHeads = new WeakMap<ExchangeState, HeadRecordingResponse>();

  constructor(private readonly context: EdgeContext) {}

  /**
   * Handles one request. A hit in memory is served before this returns, and
   * then there is no promise; anything that waits returns one.
   */
  handle(request: ViewerRequest, response: ViewerResponse): Promise<void> | undefined {
    const state: ExchangeState = {
      requestId: this.requestIds.next(),
      head: request.method === "HEAD",
      hostName: hostNameOf(request.headers.host),
      distributionId: undefined,
      logsRequests: false,
      status: 0,
      resultType: "Error",
      originLatencyMs: undefined,
      bytesUploaded: 0,
    };
    response.onDone((bytesSent) => {
      if (state.heldEntry !== undefined) {
        this.context.memory.release(state.heldEntry);
        state.heldEntry = undefined;
      }
      if (state.reservedBytes !== undefined) {
        this.context.inFlight.release(state.reservedBytes);
        state.reservedBytes = undefined;
      }
      this.record(request, state, bytesSent);
    });

    let pending: Promise<void> | undefined;
    try {
      pending = this.route(request, response, state);
    } catch (error) {
      this.failed(response, state, error);
      return undefined;
    }
    return pending?.catch((error: unknown) => this.failed(response, state, error));
  }

  private failed(response: ViewerResponse, state: ExchangeState, error: unknown): void {
    this.context.log.error(
      { err: error, requestId: state.requestId, distributionId: state.distributionId },
      "edge failed to handle a request",
    );
    if (state.status === 0) {
      sendEdgeResponse(this.context, state, response, 500, "ERROR: The request could not be satisfied.");
    }
  }

  /**
   * Routes a request. `errorPages` is false for the internal request of a
   * custom error page, so a failing page never triggers another page.
   */
  private route(
    request: ViewerRequest,
    viewerResponse: ViewerResponse,
    state: ExchangeState,
    errorPages = true,
  ): Promise<void> | undefined {
    const context = this.context;
    const distribution = context.routing.lookup(state.hostName);
    if (distribution === undefined) {
      // CloudFront responds with 403 "Bad request" to a Host that no distribution serves.
      sendEdgeResponse(context, state, viewerResponse, 403, "ERROR: The request could not be satisfied. Bad request: no distribution serves this host.");
      return undefined;
    }
    state.distributionId = distribution.id;
    state.logsRequests = distribution.logsRequests || context.logsAllRequests;
    if (state.logsRequests && errorPages) viewerResponse = this.recordingHead(viewerResponse, state);

    if (errorPages && distribution.customErrors.size > 0) {
      return this.routeWithErrorPages(request, viewerResponse, state, distribution);
    }
    return this.serveDistribution(request, viewerResponse, state, distribution);
  }

  private async routeWithErrorPages(
    request: ViewerRequest,
    viewerResponse: ViewerResponse,
    state: ExchangeState,
    distribution: RoutedDistribution,
  ): Promise<void> {
    const wrapped = new ErrorPageResponse(viewerResponse, distribution, request, state, (pageRequest, pageResponse) =>
      this.route(pageRequest, pageResponse, state, false) ?? Promise.resolve(),
    );
    await this.serveDistribution(request, wrapped, state, distribution);
    await wrapped.settled();
  }

  private serveDistribution(
    request: ViewerRequest,
    response: ViewerResponse,
    state: ExchangeState,
    distribution: RoutedDistribution,
  ): Promise<void> | undefined {
    const context = this.context;
    if (!distribution.enabled) {
      sendEdgeResponse(context, state, response, 403, "ERROR: The request could not be satisfied. The distribution is disabled.");
      return undefined;
    }

    const behavior = selectBehavior(distribution, request.path);
    if (request.protocol === "http" && behavior.viewerProtocolPolicy === "https-only") {
      sendEdgeResponse(context, state, response, 403, "ERROR: The request could not be satisfied. This distribution accepts HTTPS only.");
      return undefined;
    }
    if (request.protocol === "http" && behavior.viewerProtocolPolicy === "redirect-to-https") {
      this.redirectToHttps(request, response, state);
      return undefined;
    }

    if (!behavior.allowedMethods.has(request.method)) {
      sendEdgeResponse(
        context,
        state,
        response,
        403,
        `ERROR: The request could not be satisfied. This distribution is not configured to allow the HTTP request method ${request.method} for this path.`,
      );
      return undefined;
    }

    const origin = behavior.origin;
    if (origin === undefined) {
      context.log.error(
        { distributionId: distribution.id, targetOriginId: behavior.targetOriginId },
        "cache behavior names an origin the distribution does not have",
      );
      sendEdgeResponse(context, state, response, 502, "ERROR: The request could not be satisfied. The behavior's origin is not configured.");
      return undefined;
    }

    const originPath = originPathFor(distribution, request.path);
    const keyResult = buildCacheKey(
      { distributionId: distribution.id, path: originPath, rawQuery: request.rawQuery, headers: request.headers },
      behavior.cache.key,
      behavior.cache.forward,
    );

    const cacheable = request.method === "GET" || request.method === "HEAD";
    if (!cacheable || behavior.cache.bypass) {
      return forwardUncached(context, state, request, response, distribution, behavior, origin, originPath, keyResult);
    }
    return serveCacheable(context, state, request, response, {
      distribution,
      behavior,
      origin,
      originPath,
      viewerPath: request.path,
      keyResult,
    });
  }

  private redirectToHttps(request: ViewerRequest, response: ViewerResponse, state: ExchangeState): void {
    const hostHeader = request.headers.host ?? "";
    const colon = hostHeader.lastIndexOf(":");
    const hostName = colon > hostHeader.lastIndexOf("]") && colon >= 0 ? hostHeader.slice(0, colon) : hostHeader;
    const port = this.context.httpsPort();
    const authority = port === 443 ? hostName : `${hostName}:${port}`;
    const query = request.rawQuery === "" ? "" : `?${request.rawQuery}`;
    const location = `https://${authority}${request.path}${query}`;
    sendEdgeResponse(this.context, state, response, 301, `Moved Permanently to ${location}`, ["location", location]);
  }

  private record(request: ViewerRequest, state: ExchangeState, bytesSent: number): void {
    // Requests that matched no distribution have no series to count in.
    if (state.distributionId === undefined) return;
    const durationMs = performance.now() - request.startedAt;
    // Only access logs read the viewer's headers, so other requests skip the lookups.
    const headers = state.logsRequests ? request.headers : NO_HEADERS;
    const record: RequestRecord = {
      distributionId: state.distributionId,
      timestampMs: Math.round(request.receivedAtMs + durationMs),
      edgeId: this.context.edgeId,
      method: request.method,
      path: request.path,
      query: request.rawQuery,
      host: state.hostName,
      protocol: request.protocol,
      httpVersion: request.httpVersion,
      status: state.status,
      bytesDownloaded: bytesSent,
      bytesUploaded: state.bytesUploaded,
      resultType: state.resultType,
      originLatencyMs: state.originLatencyMs,
      durationMs,
      clientIp: request.clientIp,
      userAgent: headers["user-agent"],
      referer: headers.referer,
      requestId: state.requestId,
      cookie: headers.cookie,
      forwardedFor: headers["x-forwarded-for"],
    };
    if (state.logsRequests) addAccessLogFields(record, request, this.loggedHeads.get(state));
    this.context.metrics.record(record);
  }

  /** Wraps the response of a request that an access log records, to keep the head it sends. */
  private recordingHead(response: ViewerResponse, state: ExchangeState): ViewerResponse {
    const recording = new HeadRecordingResponse(response);
    this.loggedHeads.set(state, recording);
    return recording;
  }
}

const NO_HEADERS: IncomingHttpHeaders = {};

/** Returns the path to fetch: DefaultRootObject replaces `/` only, as in CloudFront. */
function originPathFor(distribution: RoutedDistribution, path: string): string {
  if (path === "/" && distribution.defaultRootObject !== "") return `/${distribution.defaultRootObject}`;
  return path;
}
