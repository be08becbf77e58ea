import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Struct } from "./codec.js";
import { cloudWatchErrors } from "./errors.js";

/**
 * Key of the NextToken signatures. It is made per process, so a token from
 * another endpoint, or from before a restart, is rejected as InvalidNextToken.
 */
const TOKEN_KEY = randomBytes(32);

/** Start of the next page: the result at index `result`, after the time stamp `afterMs` when set. */
export interface PageCursor {
  result: number;
  afterMs: number | undefined;
}

/** One query's data points, sorted in the request's ScanBy order. */
export interface QueryResult {
  id: string;
  label: string;
  points: Array<[number, number]>;
}

export interface MetricDataPage {
  results: Struct[];
  next: PageCursor | undefined;
}

/**
 * Returns a digest of every GetMetricData input member except NextToken, so a
 * token works only with the request that produced it.
 */
export function requestFingerprint(input: Struct): string {
  const { NextToken: _token, ...rest } = input;
  return createHash("sha256").update(JSON.stringify(rest)).digest("base64url");
}

/** Returns a NextToken that carries `value` as JSON, signed so that only this process accepts it back. */
export function encodeSignedToken(value: unknown): string {
  const payload = Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${payload}.${sign(payload)}`;
}

/** Returns the value of a token from `encodeSignedToken` of this process, else raises InvalidNextToken. */
export function decodeSignedToken(token: string): unknown {
  const [payload, signature, extra] = token.split(".");
  if (payload === undefined || signature === undefined || extra !== undefined) throw cloudWatchErrors.invalidNextToken();
  const expected = Buffer.from(sign(payload));
  const actual = Buffer.from(signature);
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) throw cloudWatchErrors.invalidNextToken();
  return JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as unknown;
}

export function encodeNextToken(fingerprint: string, cursor: PageCursor): string {
  return encodeSignedToken({ f: fingerprint, r: cursor.result, t: cursor.afterMs ?? null });
}

/** Returns the cursor of a token this process issued for the same request, else raises InvalidNextToken. */
export function decodeNextToken(token: string, fingerprint: string): PageCursor {
  const parsed = decodeSignedToken(token) as { f: string; r: number; t: number | null };
  if (parsed.f !== fingerprint) throw cloudWatchErrors.invalidNextToken();
  return { result: parsed.r, afterMs: parsed.t ?? undefined };
}

function sign(payload: string): string {
  return createHmac("sha256", TOKEN_KEY).update(payload).digest("base64url");
}

/**
 * Cuts one page of at most `maxDatapoints` points from the results, in
 * order: results before the cursor's are done, the cursor's continues after
 * its time stamp, and later ones start at their first point. Every result
 * appears on every page, with StatusCode PartialData while it has points left.
 */
export function cutPage(
  results: QueryResult[],
  maxDatapoints: number,
  cursor: PageCursor | undefined,
  ascending: boolean,
): MetricDataPage {
  const start = cursor ?? { result: 0, afterMs: undefined };
  let budget = maxDatapoints;
  let next: PageCursor | undefined;
  const page = results.map((result, index): Struct => {
    let remaining: Array<[number, number]> = [];
    if (index > start.result) remaining = result.points;
    if (index === start.result) remaining = pointsAfter(result.points, start.afterMs, ascending);
    const taken = remaining.slice(0, budget);
    budget -= taken.length;
    const partial = taken.length < remaining.length;
    if (partial && next === undefined) {
      // With nothing taken from this result, the page ends where it began.
      let afterMs = index === start.result ? start.afterMs : undefined;
      const last = taken[taken.length - 1];
      if (last !== undefined) afterMs = last[0];
      next = { result: index, afterMs };
    }
    return {
      Id: result.id,
      Label: result.label,
      Timestamps: taken.map(([timestampMs]) => timestampMs),
      Values: taken.map(([, value]) => value),
      StatusCode: partial ? "PartialData" : "Complete",
      Messages: [],
    };
  });
  return { results: page, next };
}

function pointsAfter(points: Array<[number, number]>, afterMs: number | undefined, ascending: boolean): Array<[number, number]> {
  if (afterMs === undefined) return points;
  return points.filter(([timestampMs]) => (ascending ? timestampMs > afterMs : timestampMs < afterMs));
}
