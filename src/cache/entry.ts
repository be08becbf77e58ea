import type { PreparedHit } from "../edge/hit-head.js";

/** One cached origin response with what the hit path needs precomputed. */
export interface CachedResponse {
  key: string;
  distributionId: string;
  /**
   * Paths in canonical percent-encoding that invalidations match: the path
   * fetched from the origin, and the viewer's path when a default root
   * object replaced it.
   */
  invalidationPaths: string[];
  status: number;
  /** Origin headers passed to viewers, as a flat `[name, value, ...]` list with lower-case names. */
  originHeaders: string[];
  body: Buffer;
  etag: string | undefined;
  lastModified: string | undefined;
  /** `Last-Modified` in epoch milliseconds, or NaN when absent or invalid. */
  lastModifiedMs: number;
  /** When the edge received the origin's response headers, in epoch milliseconds. */
  responseAtMs: number;
  /** The origin's `Age` when the response arrived. */
  initialAgeSeconds: number;
  ttlSeconds: number;
  /** When the entry stops being fresh, in epoch milliseconds. */
  staleAtMs: number;
  /** RFC 5861 stale-while-revalidate, in seconds past staleAtMs; 0 when not allowed. */
  staleWhileRevalidateSeconds: number;
  /** RFC 5861 stale-if-error, in seconds past staleAtMs; undefined when the origin gave none. */
  staleIfErrorSeconds: number | undefined;
  /** RFC 9111 section 5.2.2.2: never served stale. */
  mustRevalidate: boolean;
  /** The response headers policy `hitHeaders` was built with, or empty for none. */
  headersPolicyTag: string;
  /**
   * The header block of a hit, as a flat `[name, value, ...]` list, without
   * the headers that change per request (`Age`, `X-Amz-Cf-Id`, `Cache-Status`).
   */
  hitHeaders: string[];
  /** The bytes this entry counts against the memory budget. */
  sizeBytes: number;
  /** The response head of plain hits, rebuilt when the age ticks over; see edge/hit-head.ts. */
  preparedHit?: PreparedHit | undefined;
  /** Responses still sending this body; see MemoryTier.hold. */
  readers?: number;
  /** Whether the memory tier removed this entry while responses still sent its body. */
  heldOutside?: boolean;
}

/** Fixed per-entry overhead counted against the budget besides bodies and headers (an estimate). */
const ENTRY_OVERHEAD_BYTES = 256;

/** Returns the bytes an entry counts against the memory budget. */
export function entrySizeBytes(body: Buffer, headers: readonly string[], key: string): number {
  let size = ENTRY_OVERHEAD_BYTES + body.length + key.length;
  for (const part of headers) size += part.length;
  return size;
}

/** Returns the entry's age in whole seconds at `nowMs` (RFC 9111 section 4.2.3, without response delay). */
export function currentAgeSeconds(entry: CachedResponse, nowMs: number): number {
  return entry.initialAgeSeconds + Math.max(0, Math.floor((nowMs - entry.responseAtMs) / 1000));
}

/** Returns the seconds of freshness left at `nowMs`; zero or less means stale. */
export function remainingTtlSeconds(entry: CachedResponse, nowMs: number): number {
  return entry.ttlSeconds - currentAgeSeconds(entry, nowMs);
}

/** Returns whether a stale entry can be revalidated with a conditional request. */
export function hasValidator(entry: CachedResponse): boolean {
  return entry.etag !== undefined || entry.lastModified !== undefined;
}

/** Returns whether a stale entry may be served while a background refresh runs (RFC 5861 section 3). */
export function withinStaleWhileRevalidate(entry: CachedResponse, nowMs: number): boolean {
  return !entry.mustRevalidate && nowMs < entry.staleAtMs + entry.staleWhileRevalidateSeconds * 1000;
}

/**
 * Returns when a stale copy served after an origin error stops being used:
 * `holdSeconds` after `nowMs`, and no later than the end of its
 * stale-if-error window when it has one.
 */
export function staleOnErrorUntilMs(
  entry: Pick<CachedResponse, "staleIfErrorSeconds" | "staleAtMs">,
  holdSeconds: number,
  nowMs: number,
): number {
  const untilMs = nowMs + holdSeconds * 1000;
  if (entry.staleIfErrorSeconds === undefined) return untilMs;
  return Math.min(untilMs, entry.staleAtMs + entry.staleIfErrorSeconds * 1000);
}

/** The fields that define how long an entry is fresh and how long after that it may be served stale. */
export type StaleWindows = Pick<CachedResponse, "staleAtMs" | "staleWhileRevalidateSeconds" | "staleIfErrorSeconds">;

/**
 * Returns an entry's windows after an origin failure moves its expiry to `untilMs`. The
 * stale-while-revalidate and stale-if-error windows count from the expiry, so both shrink by as
 * much as it moves and still end when they did.
 */
export function holdStaleCopy(entry: StaleWindows, untilMs: number): StaleWindows {
  const movedSeconds = Math.max(0, untilMs - entry.staleAtMs) / 1000;
  return {
    staleAtMs: Math.max(entry.staleAtMs, untilMs),
    staleWhileRevalidateSeconds: Math.max(0, entry.staleWhileRevalidateSeconds - movedSeconds),
    staleIfErrorSeconds: entry.staleIfErrorSeconds === undefined ? undefined : Math.max(0, entry.staleIfErrorSeconds - movedSeconds),
  };
}

/**
 * Returns whether a stale entry may be served because the origin failed or returned 500 or
 * above. With stale-if-error, only within its window (RFC 5861 section 4). Without it, CloudFront
 * serves an expired copy in both cases, and so does the edge, unless must-revalidate forbids it
 * (RFC 9111 section 4.2.4). A stored 5xx is never served this way, since the origin's new error
 * is more recent.
 */
export function mayServeStaleOnError(
  entry: Pick<CachedResponse, "status" | "mustRevalidate" | "staleIfErrorSeconds" | "staleAtMs">,
  nowMs: number,
): boolean {
  if (entry.mustRevalidate || entry.status >= 500) return false;
  if (entry.staleIfErrorSeconds !== undefined) return nowMs < entry.staleAtMs + entry.staleIfErrorSeconds * 1000;
  return true;
}
