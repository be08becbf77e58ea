import { entrySizeBytes, type CachedResponse } from "../cache/entry.js";
import {
  decideFreshness,
  parseAgeSeconds,
  type FreshnessDecision,
  type FreshnessHeaders,
  type StoreDecision,
} from "../cache/freshness.js";
import type { OriginResponse } from "../origin/index.js";
import type { EdgeContext } from "./context.js";
import { originHeader, passOriginHeaders, headerIn, headerValues } from "./headers.js";
import { buildHitHeaders } from "./respond.js";
import type { CompiledHeadersPolicy } from "./response-headers.js";
import { forwardsCookies, type RoutedBehavior, type RoutedDistribution } from "./routing.js";

export interface EntryFields {
  key: string;
  distributionId: string;
  invalidationPaths: string[];
  status: number;
  originHeaders: string[];
  body: Buffer;
  receivedAtMs: number;
  initialAgeSeconds: number;
  decision: StoreDecision;
}

/** Builds an entry with its hit header block and its size. */
export function createEntry(
  context: EdgeContext,
  fields: EntryFields,
  policy: CompiledHeadersPolicy | undefined,
): CachedResponse {
  const lastModified = headerIn(fields.originHeaders, "last-modified");
  const decision = fields.decision;
  const base = {
    key: fields.key,
    distributionId: fields.distributionId,
    invalidationPaths: fields.invalidationPaths,
    status: fields.status,
    originHeaders: fields.originHeaders,
    body: fields.body,
    etag: headerIn(fields.originHeaders, "etag"),
    lastModified,
    lastModifiedMs: lastModified === undefined ? Number.NaN : Date.parse(lastModified),
    responseAtMs: fields.receivedAtMs,
    initialAgeSeconds: fields.initialAgeSeconds,
    ttlSeconds: decision.ttlSeconds,
    staleAtMs: fields.receivedAtMs + (decision.ttlSeconds - fields.initialAgeSeconds) * 1000,
    staleWhileRevalidateSeconds: decision.staleWhileRevalidateSeconds,
    staleIfErrorSeconds: decision.staleIfErrorSeconds,
    mustRevalidate: decision.mustRevalidate,
    headersPolicyTag: policy?.tag ?? "",
    sizeBytes: 0,
  };
  const hitHeaders = buildHitHeaders(context, base, policy);
  return { ...base, hitHeaders, sizeBytes: entrySizeBytes(fields.body, hitHeaders, fields.key) };
}

/**
 * Reads the freshness inputs of a flat header list, with the origin's `Age`,
 * which the list of headers passed to viewers does not keep.
 */
export function freshnessHeadersOf(headers: readonly string[], age: string | undefined): FreshnessHeaders {
  return {
    cacheControl: headerValues(headers, "cache-control"),
    cdnCacheControl: headerValues(headers, "cdn-cache-control"),
    expires: headerIn(headers, "expires"),
    date: headerIn(headers, "date"),
    age,
    etag: headerIn(headers, "etag"),
    lastModified: headerIn(headers, "last-modified"),
  };
}

/**
 * Merges a 304's headers into the stored headers of a response with `status`
 * (RFC 9111 section 4.3.4), and decides the freshness of the result.
 */
export function mergeNotModified(
  status: number,
  storedHeaders: readonly string[],
  notModified: OriginResponse,
  receivedAtMs: number,
  distribution: RoutedDistribution,
  behavior: RoutedBehavior,
): { merged: string[]; decision: FreshnessDecision } {
  const updates = passOriginHeaders(notModified.headers, forwardsCookies(behavior));
  const updatedNames = new Set<string>();
  for (let i = 0; i < updates.length; i += 2) updatedNames.add(updates[i]!);
  const merged: string[] = [];
  for (let i = 0; i < storedHeaders.length; i += 2) {
    const name = storedHeaders[i]!;
    // Content-Type and similar describe the stored body, which a 304 does not replace.
    if (!updatedNames.has(name) || name.startsWith("content-")) merged.push(name, storedHeaders[i + 1]!);
  }
  for (let i = 0; i < updates.length; i += 2) {
    const name = updates[i]!;
    // The stored ETag may be the weak form of a compressed copy; keep it.
    if (name.startsWith("content-") || (name === "etag" && headerIn(storedHeaders, "content-encoding") !== undefined)) continue;
    merged.push(name, updates[i + 1]!);
  }
  const decision = decideFreshness(
    status,
    freshnessHeadersOf(merged, originHeader(notModified.headers, "age")),
    behavior.cache.ttl,
    receivedAtMs,
    distribution.errorCachingMinTtlSeconds,
  );
  return { merged, decision };
}

/**
 * Merges a 304's headers into a stale entry and recomputes its freshness
 * (RFC 9111 section 4.3.4); undefined when the result is no longer cacheable.
 */
export function refreshEntry(
  context: EdgeContext,
  stale: CachedResponse,
  notModified: OriginResponse,
  receivedAtMs: number,
  distribution: RoutedDistribution,
  behavior: RoutedBehavior,
): CachedResponse | undefined {
  const { merged, decision } = mergeNotModified(stale.status, stale.originHeaders, notModified, receivedAtMs, distribution, behavior);
  if (!decision.store) return undefined;
  return createEntry(
    context,
    {
      key: stale.key,
      distributionId: stale.distributionId,
      invalidationPaths: stale.invalidationPaths,
      status: stale.status,
      originHeaders: merged,
      body: stale.body,
      receivedAtMs,
      initialAgeSeconds: parseAgeSeconds(originHeader(notModified.headers, "age")),
      decision,
    },
    behavior.headersPolicy,
  );
}
