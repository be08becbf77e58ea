import { STATUS_CODES } from "node:http";
import type { CachedResponse } from "../cache/entry.js";
import type { ViewerResponse } from "./exchange.js";
import { cacheStatus } from "./headers.js";

/**
 * The response head of a plain cache hit, prepared once and reused by every
 * hit on the entry until the entry's age ticks over. Only `X-Amz-Cf-Id` and
 * the connection's framing headers change per response, so the hit path
 * copies one prepared buffer instead of serialising a header list.
 */
export interface PreparedHit {
  /** Whole seconds since the entry arrived when this head was built; `Age` and the TTL derive from it. */
  elapsedSeconds: number;
  /** The epoch second of the generated `Date` line, or -1 when the origin's `Date` is passed on. */
  dateSecond: number;
  /** The response headers policy tag the entry's header block was built with. */
  policyTag: string;
  status: number;
  /** Status line and header lines in latin1, ending with `x-amz-cf-id: ` for the request id to follow. */
  http1Head: Buffer;
  /** The `Cache-Status` value, and the generated `Date` value when the origin sent none. */
  cacheStatus: string;
  date: string | undefined;
  /** The same fields as an HTTP/2 header list, `x-amz-cf-id` excepted; built on the first HTTP/2 hit. */
  http2Fields: string[] | undefined;
  /** Bytes of the header fields, as an estimate of what the head costs on the wire. */
  headerBytes: number;
}

const REQUEST_ID_NAME = "x-amz-cf-id: ";

/** Returns the `Date` header value for `nowMs` (RFC 9110 section 5.6.7, IMF-fixdate). */
function httpDate(nowMs: number): string {
  return new Date(nowMs).toUTCString();
}

/**
 * Returns the prepared hit head of `entry` at `nowMs`, reusing the one on the
 * entry while it is current. The entry's `hitHeaders` must be up to date with
 * the behavior's response headers policy; the caller checks `headersPolicyTag`.
 */
export function preparedHitFor(entry: CachedResponse, nowMs: number): PreparedHit {
  const elapsedSeconds = Math.max(0, Math.floor((nowMs - entry.responseAtMs) / 1000));
  const prepared = entry.preparedHit;
  if (
    prepared !== undefined &&
    prepared.elapsedSeconds === elapsedSeconds &&
    prepared.policyTag === entry.headersPolicyTag &&
    (prepared.dateSecond === -1 || prepared.dateSecond === Math.floor(nowMs / 1000))
  ) {
    return prepared;
  }
  const built = buildPreparedHit(entry, elapsedSeconds, nowMs);
  entry.preparedHit = built;
  return built;
}

function buildPreparedHit(entry: CachedResponse, elapsedSeconds: number, nowMs: number): PreparedHit {
  const ageSeconds = entry.initialAgeSeconds + elapsedSeconds;
  const headers = entry.hitHeaders;
  let text = `HTTP/1.1 ${entry.status} ${STATUS_CODES[entry.status] ?? "Unknown"}\r\n`;
  let hasDate = false;
  let headerBytes = 0;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    if (name === "date") hasDate = true;
    text += `${name}: ${value}\r\n`;
    headerBytes += name.length + value.length + 4;
  }
  const age = String(ageSeconds);
  const status = cacheStatus.hit(entry.ttlSeconds - ageSeconds);
  text += `age: ${age}\r\ncache-status: ${status}\r\n`;
  headerBytes += age.length + status.length + 21;
  let dateSecond = -1;
  let date: string | undefined;
  if (!hasDate) {
    dateSecond = Math.floor(nowMs / 1000);
    date = httpDate(dateSecond * 1000);
    text += `date: ${date}\r\n`;
    headerBytes += date.length + 8;
  }
  text += REQUEST_ID_NAME;
  return {
    elapsedSeconds,
    dateSecond,
    policyTag: entry.headersPolicyTag,
    status: entry.status,
    http1Head: Buffer.from(text, "latin1"),
    cacheStatus: status,
    date,
    http2Fields: undefined,
    headerBytes,
  };
}

/** Sends a prepared hit through `response`, as a flat header list when the front end has no `sendHit`. */
export function sendPreparedHit(
  response: ViewerResponse,
  prepared: PreparedHit,
  entry: CachedResponse,
  requestId: string,
  body: Buffer | undefined,
): void {
  if (response.sendHit !== undefined) {
    response.sendHit(prepared, entry, requestId, body);
    return;
  }
  const headers = entry.hitHeaders.slice();
  headers.push("age", String(entry.initialAgeSeconds + prepared.elapsedSeconds), "cache-status", prepared.cacheStatus);
  if (prepared.date !== undefined) headers.push("date", prepared.date);
  headers.push("x-amz-cf-id", requestId);
  response.send(prepared.status, headers, body);
}
