import { Readable } from "node:stream";
import { hasValidator, entrySizeBytes, type CachedResponse } from "../cache/entry.js";
import { decideFreshness, parseAgeSeconds } from "../cache/freshness.js";
import { canonicalizePath } from "../cache/invalidation.js";
import type { CacheKeyResult } from "../cache/key.js";
import type { LockOutcome } from "../cache/lock.js";
import type { Origin, OriginResponse } from "../origin/index.js";
import { purgeEpoch, type EdgeContext } from "./context.js";
import type { ExchangeState, ViewerRequest, ViewerResponse } from "./exchange.js";
import { declaredLength, noteOriginDenied, originRequestHeaders, sendOriginFailure } from "./forward.js";
import { cacheStatus, originHeader, passOriginHeaders } from "./headers.js";
import { buildHitHeaders, serveEntry, streamUncached, ttlLeft } from "./respond.js";
import type { RoutedBehavior, RoutedDistribution } from "./routing.js";

/** How many times a request waits on another writer before it fetches on its own. */
const MAX_WAIT_ROUNDS = 2;

/** One cacheable request (GET or HEAD) after routing. */
export interface CacheableRequest {
  distribution: RoutedDistribution;
  behavior: RoutedBehavior;
  origin: Origin;
  /** The path sent to the origin, after the default root object. */
  originPath: string;
  /** The viewer's path, which invalidations also match. */
  viewerPath: string;
  keyResult: CacheKeyResult;
}

function isFresh(entry: CachedResponse, nowMs: number): boolean {
  return nowMs < entry.staleAtMs;
}

/**
 * Serves a GET or HEAD through the cache. A fresh entry is a hit. Otherwise
 * one writer per key fetches from the origin, with a conditional request
 * when the stale entry has a validator, and concurrent requests for the key
 * wait for its outcome.
 */
export async function serveCacheable(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  target: CacheableRequest,
): Promise<void> {
  const key = target.keyResult.key;
  const cached = context.memory.get(key);
  if (cached !== undefined && isFresh(cached, Date.now())) {
    serveEntry(context, state, request, response, cached, "Hit", cacheStatus.hit(ttlLeft(cached)));
    return;
  }

  for (let round = 0; round < MAX_WAIT_ROUNDS; round++) {
    const ticket = context.lock.acquire(key);
    if (ticket.role === "writer") {
      let outcome: LockOutcome = "failed";
      const settle = (value: LockOutcome): void => {
        outcome = value;
        ticket.release(value);
      };
      try {
        await fetchAsWriter(context, state, request, response, target, settle);
      } finally {
        // Releasing twice is harmless; this covers a writer that threw before settling.
        ticket.release(outcome);
      }
      return;
    }

    const outcome = await ticket.wait();
    if (outcome === "stored") {
      const stored = context.memory.get(key);
      if (stored !== undefined && isFresh(stored, Date.now())) {
        serveEntry(context, state, request, response, stored, "Hit", cacheStatus.hit(ttlLeft(stored)));
        return;
      }
    }
    // After a failed writer, a waiter may become the next writer. Other
    // outcomes mean the response cannot be shared, so the waiter fetches alone.
    if (outcome !== "failed" && outcome !== "stored") break;
  }

  await fetchAsWriter(context, state, request, response, target, () => {});
}

/**
 * Fetches from the origin and stores what is cacheable. `settle` is called as
 * soon as waiters can proceed: after the entry is stored, or as soon as the
 * response is known not to be stored.
 */
async function fetchAsWriter(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  target: CacheableRequest,
  settle: (outcome: LockOutcome) => void,
): Promise<void> {
  const { distribution, behavior, keyResult } = target;
  const epochAtStart = purgeEpoch(context, distribution.id);
  const stale = context.memory.get(keyResult.key);
  const revalidating = stale !== undefined && hasValidator(stale);

  const headers = originRequestHeaders(context, state, request, keyResult);
  if (revalidating) {
    if (stale.etag !== undefined) headers["if-none-match"] = stale.etag;
    if (stale.lastModified !== undefined) headers["if-modified-since"] = stale.lastModified;
  }

  let originResponse: OriginResponse;
  try {
    // A HEAD is fetched as GET so that the stored entry can serve later GETs.
    originResponse = await target.origin.fetch({
      method: "GET",
      path: target.originPath,
      query: keyResult.forwardedQuery,
      headers,
      body: undefined,
      viewerProtocol: request.protocol,
    });
  } catch (error) {
    settle("failed");
    sendOriginFailure(context, state, response, distribution, error);
    return;
  }
  state.originLatencyMs = originResponse.firstByteLatencyMs;
  const receivedAtMs = Date.now();
  noteOriginDenied(context, state, distribution, target.originPath, originResponse.status);

  if (originResponse.status === 304 && revalidating) {
    // RFC 9111 section 4.3.4: the 304's headers update the stored ones.
    originResponse.body.resume();
    const refreshed = refreshEntry(context, stale, originResponse, receivedAtMs, behavior);
    if (refreshed !== undefined && purgeEpoch(context, distribution.id) === epochAtStart && context.memory.put(refreshed)) {
      settle("stored");
      serveEntry(context, state, request, response, refreshed, "RefreshHit", cacheStatus.refreshed(ttlLeft(refreshed)));
      return;
    }
    // No longer cacheable under the new headers: serve the stale copy this once and drop it.
    context.memory.delete(keyResult.key);
    settle("not-stored");
    serveEntry(context, state, request, response, stale, "RefreshHit", cacheStatus.refreshed(0));
    return;
  }

  const keepSetCookie = behavior.cache.key.cookies.mode !== "none";
  const passedHeaders = passOriginHeaders(originResponse.headers, keepSetCookie);
  const decision = decideFreshness(
    originResponse.status,
    {
      cacheControl: originHeader(originResponse.headers, "cache-control"),
      expires: originHeader(originResponse.headers, "expires"),
      date: originHeader(originResponse.headers, "date"),
    },
    behavior.cache.ttl,
    receivedAtMs,
  );
  const contentLength = declaredLength(originResponse);
  const forward = revalidating ? "stale" : "uri-miss";

  const streamWithoutStoring = async (body: Readable, detail: string): Promise<void> => {
    if (stale !== undefined) context.memory.delete(keyResult.key);
    settle("not-stored");
    await streamUncached(
      context,
      state,
      request,
      response,
      { status: originResponse.status, headers: passedHeaders, body, contentLength },
      cacheStatus.miss(forward, originResponse.status, false, detail),
    );
  };

  if (!decision.store) {
    await streamWithoutStoring(originResponse.body, decision.reason);
    return;
  }
  if (contentLength !== undefined && contentLength > context.maxObjectBytes) {
    await streamWithoutStoring(originResponse.body, "too-large");
    return;
  }

  const buffered = await readUpTo(originResponse.body, context.maxObjectBytes);
  if (buffered.rest !== undefined) {
    await streamWithoutStoring(buffered.rest, "too-large");
    return;
  }

  const entry = createEntry(context, {
    key: keyResult.key,
    distributionId: distribution.id,
    invalidationPaths: invalidationPathsOf(target),
    status: originResponse.status,
    originHeaders: passedHeaders,
    body: buffered.body,
    receivedAtMs,
    initialAgeSeconds: parseAgeSeconds(originHeader(originResponse.headers, "age")),
    ttlSeconds: decision.ttlSeconds,
  });
  // A purge that ran during the fetch may have targeted this very response.
  const stored = purgeEpoch(context, distribution.id) === epochAtStart && context.memory.put(entry);
  if (!stored && stale !== undefined) context.memory.delete(keyResult.key);
  settle(stored ? "stored" : "not-stored");
  serveEntry(
    context,
    state,
    request,
    response,
    entry,
    "Miss",
    cacheStatus.miss(forward, originResponse.status, stored, stored ? undefined : "purged-or-too-large"),
  );
}

function invalidationPathsOf(target: CacheableRequest): string[] {
  const originPath = canonicalizePath(target.originPath);
  const viewerPath = canonicalizePath(target.viewerPath);
  return originPath === viewerPath ? [originPath] : [originPath, viewerPath];
}

interface EntryFields {
  key: string;
  distributionId: string;
  invalidationPaths: string[];
  status: number;
  originHeaders: string[];
  body: Buffer;
  receivedAtMs: number;
  initialAgeSeconds: number;
  ttlSeconds: number;
}

function headerIn(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] === name) return headers[i + 1];
  }
  return undefined;
}

/** Builds an entry with its hit header block and its size. */
function createEntry(context: EdgeContext, fields: EntryFields): CachedResponse {
  const lastModified = headerIn(fields.originHeaders, "last-modified");
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
    ttlSeconds: fields.ttlSeconds,
    staleAtMs: fields.receivedAtMs + (fields.ttlSeconds - fields.initialAgeSeconds) * 1000,
    sizeBytes: 0,
  };
  const hitHeaders = buildHitHeaders(context, base);
  return { ...base, hitHeaders, sizeBytes: entrySizeBytes(fields.body, hitHeaders, fields.key) };
}

/** Merges a 304's headers into a stale entry and recomputes its freshness; undefined when no longer cacheable. */
function refreshEntry(
  context: EdgeContext,
  stale: CachedResponse,
  notModified: OriginResponse,
  receivedAtMs: number,
  behavior: RoutedBehavior,
): CachedResponse | undefined {
  const updates = passOriginHeaders(notModified.headers, behavior.cache.key.cookies.mode !== "none");
  const updatedNames = new Set<string>();
  for (let i = 0; i < updates.length; i += 2) updatedNames.add(updates[i]!);
  const merged: string[] = [];
  for (let i = 0; i < stale.originHeaders.length; i += 2) {
    const name = stale.originHeaders[i]!;
    // Content-Type and similar describe the stored body, which a 304 does not replace.
    if (!updatedNames.has(name) || name.startsWith("content-")) merged.push(name, stale.originHeaders[i + 1]!);
  }
  for (let i = 0; i < updates.length; i += 2) {
    if (!updates[i]!.startsWith("content-")) merged.push(updates[i]!, updates[i + 1]!);
  }

  const decision = decideFreshness(
    stale.status,
    {
      cacheControl: headerIn(merged, "cache-control"),
      expires: headerIn(merged, "expires"),
      date: headerIn(merged, "date"),
    },
    behavior.cache.ttl,
    receivedAtMs,
  );
  if (!decision.store) return undefined;
  return createEntry(context, {
    key: stale.key,
    distributionId: stale.distributionId,
    invalidationPaths: stale.invalidationPaths,
    status: stale.status,
    originHeaders: merged,
    body: stale.body,
    receivedAtMs,
    initialAgeSeconds: parseAgeSeconds(originHeader(notModified.headers, "age")),
    ttlSeconds: decision.ttlSeconds,
  });
}

/**
 * Reads a body into memory up to `maxBytes`. Past that it stops buffering and
 * returns a stream that replays what was read and then continues with the rest.
 */
async function readUpTo(body: Readable, maxBytes: number): Promise<{ body: Buffer; rest: Readable | undefined }> {
  const iterator = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const next = await iterator.next();
    if (next.done === true) return { body: Buffer.concat(chunks, total), rest: undefined };
    chunks.push(next.value);
    total += next.value.length;
    if (total > maxBytes) break;
  }
  async function* replayThenContinue(): AsyncGenerator<Buffer> {
    yield* chunks.splice(0);
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) return;
      yield next.value;
    }
  }
  return { body: Buffer.alloc(0), rest: Readable.from(replayThenContinue(), { objectMode: false }) };
}
