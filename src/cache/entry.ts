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
  /**
   * The header block of a hit, as a flat `[name, value, ...]` list, without
   * the headers that change per request (`Age`, `X-Amz-Cf-Id`, `Cache-Status`).
   */
  hitHeaders: string[];
  /** The bytes this entry counts against the memory budget. */
  sizeBytes: number;
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
