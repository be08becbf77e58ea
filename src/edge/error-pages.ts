import type { Readable } from "node:stream";
import type { CachedResponse } from "../cache/entry.js";
import { sendPreparedHit, type PreparedHit } from "./hit-head.js";
import type { ExchangeState, ViewerRequest, ViewerResponse } from "./exchange.js";
import type { RoutedDistribution } from "./routing.js";

function ignoreError(): void {}

/** Serves one internal request for an error page. */
export type PageFetcher = (pageRequest: ViewerRequest, pageResponse: ViewerResponse) => Promise<void>;

/** Request headers that must not carry over from the viewer's request to the error page's. */
const DROPPED_FOR_PAGE = ["range", "if-range", "if-none-match", "if-modified-since", "if-match", "if-unmodified-since"];

/** Response fields that describe the exchange rather than the page, so they come from the error response. */
const EXCHANGE_FIELDS = new Set(["age", "cache-status", "x-cache"]);

/**
 * Returns the page's headers with the error response's `Age`, `Cache-Status`
 * and `X-Cache`, which describe how the viewer's own request was served (an
 * origin error fetched or cached, `Error from portico`), not how the page was.
 */
function pageHeadersFor(pageHeaders: readonly string[], errorHeaders: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < pageHeaders.length; i += 2) {
    if (!EXCHANGE_FIELDS.has(pageHeaders[i]!)) out.push(pageHeaders[i]!, pageHeaders[i + 1]!);
  }
  for (let i = 0; i < errorHeaders.length; i += 2) {
    if (EXCHANGE_FIELDS.has(errorHeaders[i]!)) out.push(errorHeaders[i]!, errorHeaders[i + 1]!);
  }
  return out;
}

/**
 * Wraps a viewer response so that an error status with a CustomErrorResponse
 * that names a ResponsePagePath is replaced by that page, fetched through the
 * cache like any request, and sent with the ResponseCode (the original status
 * when none is set). The page is served only when it is itself a 200, so a
 * missing page never hides the original error.
 */
export class ErrorPageResponse implements ViewerResponse {
  private pending: Promise<void> | undefined;

  constructor(
    private readonly inner: ViewerResponse,
    private readonly distribution: RoutedDistribution,
    private readonly request: ViewerRequest,
    private readonly state: ExchangeState,
    private readonly fetchPage: PageFetcher,
  ) {}

  send(status: number, headers: readonly string[], body: Buffer | undefined): void {
    const page = this.pagePathFor(status);
    if (page === undefined) {
      this.inner.send(status, headers, body);
      return;
    }
    const pending = this.servePage(status, page, headers, () => this.inner.send(status, headers, body));
    // The handler awaits settled() only when the rest of the request succeeded, so a page that
    // fails after an earlier failure would otherwise be an unhandled rejection.
    pending.catch(ignoreError);
    this.pending = pending;
  }

  sendHit(prepared: PreparedHit, entry: CachedResponse, requestId: string, body: Buffer | undefined): void {
    // Prepared hits are never error statuses, so they pass through unchanged.
    sendPreparedHit(this.inner, prepared, entry, requestId, body);
  }

  async stream(status: number, headers: readonly string[], body: Readable): Promise<void> {
    const page = this.pagePathFor(status);
    if (page === undefined) return this.inner.stream(status, headers, body);
    body.destroy();
    await this.servePage(status, page, headers, () => this.inner.send(status, headers, undefined));
  }

  onDone(listener: (bytesSent: number) => void): void {
    this.inner.onDone(listener);
  }

  /** Resolves once a page started by `send` has been served. */
  async settled(): Promise<void> {
    await this.pending;
  }

  private pagePathFor(status: number): string | undefined {
    if (status < 400) return undefined;
    return this.distribution.customErrors.get(status)?.responsePagePath;
  }

  private async servePage(
    originalStatus: number,
    pagePath: string,
    originalHeaders: readonly string[],
    sendOriginal: () => void,
  ): Promise<void> {
    const rule = this.distribution.customErrors.get(originalStatus);
    const responseCode = rule?.responseCode ?? originalStatus;
    const headers = { ...this.request.headers };
    for (const name of DROPPED_FOR_PAGE) delete headers[name];
    const queryAt = pagePath.indexOf("?");
    const pageRequest: ViewerRequest = {
      ...this.request,
      method: this.request.method === "HEAD" ? "HEAD" : "GET",
      target: pagePath,
      path: queryAt < 0 ? pagePath : pagePath.slice(0, queryAt),
      rawQuery: queryAt < 0 ? "" : pagePath.slice(queryAt + 1),
      headers,
    };
    const state = this.state;
    const inner = this.inner;
    let answered = false;
    const pageResponse: ViewerResponse = {
      send(status, pageHeaders, body) {
        answered = true;
        if (status !== 200) {
          sendOriginal();
          return;
        }
        state.status = responseCode;
        state.resultType = "Error";
        inner.send(responseCode, pageHeadersFor(pageHeaders, originalHeaders), body);
      },
      async stream(status, pageHeaders, body) {
        answered = true;
        if (status !== 200) {
          body.destroy();
          sendOriginal();
          return;
        }
        state.status = responseCode;
        state.resultType = "Error";
        await inner.stream(responseCode, pageHeadersFor(pageHeaders, originalHeaders), body);
      },
      onDone: () => {},
    };
    await this.fetchPage(pageRequest, pageResponse);
    state.status = answered ? state.status : originalStatus;
    if (!answered) sendOriginal();
  }
}
