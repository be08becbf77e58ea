import { randomBytes } from "node:crypto";
import { Readable, type Transform } from "node:stream";
import type { DiskStreamTarget, MetadataRefresh, WriteProgress } from "../cache/disk.js";
import { ifRangeAllows, isNotModified } from "../cache/etag.js";
import { holdStaleCopy, staleOnErrorUntilMs, type CachedResponse, type StaleWindows } from "../cache/entry.js";
import { errorCachingTtlSeconds, parseAgeSeconds, type StoreDecision } from "../cache/freshness.js";
import { invalidationPathsOf, type CacheableRequest } from "./cache-flow.js";
import { purgeEpoch, type EdgeContext } from "./context.js";
import { mergeNotModified } from "./entry-builder.js";
import type { OriginResponse } from "../origin/index.js";
import { openDiskBody } from "./disk-flow.js";
import { holdPeerFile } from "./peer-flow.js";
import type { ExchangeState, ViewerRequest, ViewerResponse } from "./exchange.js";
import { appendEdgeHeaders, cacheStatus, headerIn, headerText, originHeader } from "./headers.js";
import { contentRange, multipartFraming, resolveRange, resolveRanges, type ByteRange } from "./range.js";
import { streamUncached } from "./respond.js";
import { corsRequestOf } from "./respond.js";
import { applyHeadersPolicy } from "./response-headers.js";

/** Largest share of the disk budget one streamed object may take. */
const MAX_DISK_OBJECT_SHARE = 4;

export interface TeeFields {
  fullKey: string;
  varyNames: readonly string[];
  status: number;
  originHeaders: string[];
  receivedAtMs: number;
  /** When the origin fetch began; a purge after it makes the entry unusable. */
  startedAtMs: number;
  initialAgeSeconds: number;
  decision: StoreDecision;
  contentLength: number;
}

/**
 * Returns a pass-through stream that also writes a large origin body to the
 * disk tier, with the write's progress, or why it cannot: `too-large` when there is no disk tier or the
 * object exceeds a quarter of its budget, `disk-full` when the writes already
 * in progress leave no room for it.
 */
export function teeToDisk(
  context: EdgeContext,
  target: CacheableRequest,
  fields: TeeFields,
): { tap: Transform; progress: WriteProgress } | "too-large" | "disk-full" {
  const disk = context.disk;
  if (disk === undefined || fields.contentLength > disk.capacityBytes / MAX_DISK_OBJECT_SHARE) return "too-large";
  const decision = fields.decision;
  const tee = disk.tee({
    key: fields.fullKey,
    primaryKey: target.keyResult.key,
    varyNames: [...fields.varyNames],
    distributionId: target.distribution.id,
    invalidationPaths: invalidationPathsOf(target),
    status: fields.status,
    originHeaders: fields.originHeaders,
    responseAtMs: fields.receivedAtMs,
    initialAgeSeconds: fields.initialAgeSeconds,
    ttlSeconds: decision.ttlSeconds,
    staleAtMs: fields.receivedAtMs + (decision.ttlSeconds - fields.initialAgeSeconds) * 1000,
    staleWhileRevalidateSeconds: decision.staleWhileRevalidateSeconds,
    staleIfErrorSeconds: decision.staleIfErrorSeconds ?? null,
    mustRevalidate: decision.mustRevalidate,
    bodyBytes: fields.contentLength,
    storedAtMs: fields.startedAtMs,
  });
  if (tee === undefined) return "disk-full";
  const { tap, stored, progress } = tee;
  context.pendingWrites.add(stored);
  void stored.then((ok) => {
    context.pendingWrites.delete(stored);
    if (ok) context.vary.record(target.keyResult.key, fields.varyNames, target.keyResult.forwardedHeaders);
  });
  return { tap, progress };
}

/**
 * Serves a large entry from its disk file: 304, ranges, or the whole verified
 * body. `status` gives the Cache-Status value from the entry's remaining TTL,
 * a plain hit by default; a revalidated or stale entry passes its own.
 */
export async function serveDiskStream(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  target: CacheableRequest,
  disk: DiskStreamTarget,
  status: (ttlSeconds: number) => string = cacheStatus.hit,
  served: "Hit" | "RefreshHit" = "Hit",
): Promise<void> {
  const metadata = disk.metadata;
  const policy = target.behavior.headersPolicy;
  const nowMs = Date.now();
  const ageSeconds = metadata.initialAgeSeconds + Math.max(0, Math.floor((nowMs - metadata.responseAtMs) / 1000));
  const statusValue = status(metadata.ttlSeconds - ageSeconds);
  const exchangeHeaders = ["age", String(ageSeconds), "x-amz-cf-id", state.requestId, "cache-status", statusValue];
  const etag = headerIn(metadata.originHeaders, "etag");
  const lastModified = headerIn(metadata.originHeaders, "last-modified");
  const ifNoneMatchHeader = request.headers["if-none-match"];
  const ifNoneMatch = Array.isArray(ifNoneMatchHeader) ? ifNoneMatchHeader.join(", ") : ifNoneMatchHeader;
  const lastModifiedMs = lastModified === undefined ? Number.NaN : Date.parse(lastModified);

  if (metadata.status === 200 && isNotModified(ifNoneMatch, request.headers["if-modified-since"], etag, lastModifiedMs)) {
    const kept: string[] = [];
    for (let i = 0; i < metadata.originHeaders.length; i += 2) {
      if (!metadata.originHeaders[i]!.startsWith("content-")) kept.push(metadata.originHeaders[i]!, metadata.originHeaders[i + 1]!);
    }
    const headers = applyHeadersPolicy(kept, policy, corsRequestOf(request));
    appendEdgeHeaders(headers, context.identity, served);
    headers.push(...exchangeHeaders);
    state.status = 304;
    state.resultType = served;
    response.send(304, headers, undefined);
    return;
  }

  const rangeHeader = request.headers.range;
  const rangesApply =
    metadata.status === 200 && rangeHeader !== undefined && ifRangeAllows(headerText(request.headers["if-range"]), etag, lastModified);
  const ranges = rangesApply ? resolveRanges(rangeHeader, disk.bodyBytes) : ({ kind: "full" } as const);
  if (ranges.kind === "partial" && ranges.ranges.length > 1) {
    await serveDiskMultipart(context, state, request, response, disk, ranges.ranges, exchangeHeaders, policy, served);
    return;
  }
  const range = rangesApply ? resolveRange(rangeHeader, disk.bodyBytes) : ({ kind: "full" } as const);
  if (range.kind === "partial") {
    const headers = applyHeadersPolicy(metadata.originHeaders, policy, corsRequestOf(request));
    appendEdgeHeaders(headers, context.identity, served);
    headers.push(
      ...exchangeHeaders,
      "content-range",
      contentRange(range.start, range.end, disk.bodyBytes),
      "content-length",
      String(range.end - range.start + 1),
    );
    state.status = 206;
    state.resultType = served;
    if (request.method === "HEAD") {
      response.send(206, headers, undefined);
      return;
    }
    await response.stream(206, headers, openDiskBody(context, disk, range));
    return;
  }

  const unrangedRequest = range.kind === "full" ? { ...request, headers: { ...request.headers, range: undefined } } : request;
  await streamUncached(
    context,
    state,
    unrangedRequest,
    response,
    { status: metadata.status, headers: metadata.originHeaders.slice(), body: openDiskBody(context, disk, undefined), contentLength: disk.bodyBytes },
    statusValue,
    policy,
    { ageSeconds, served },
  );
}

/** Serves several ranges of a disk entry as one multipart/byteranges body, reading each range from the file in turn. */
async function serveDiskMultipart(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  disk: DiskStreamTarget,
  ranges: readonly ByteRange[],
  exchangeHeaders: readonly string[],
  policy: CacheableRequest["behavior"]["headersPolicy"],
  served: "Hit" | "RefreshHit",
): Promise<void> {
  const metadata = disk.metadata;
  const boundary = randomBytes(12).toString("hex");
  const framing = multipartFraming(ranges, headerIn(metadata.originHeaders, "content-type"), boundary, disk.bodyBytes);
  const originHeaders: string[] = [];
  for (let i = 0; i < metadata.originHeaders.length; i += 2) {
    const name = metadata.originHeaders[i]!;
    if (name !== "content-type" && name !== "content-length") originHeaders.push(name, metadata.originHeaders[i + 1]!);
  }
  const headers = applyHeadersPolicy(originHeaders, policy, corsRequestOf(request));
  appendEdgeHeaders(headers, context.identity, served);
  headers.push(...exchangeHeaders);
  headers.push("content-type", `multipart/byteranges; boundary=${boundary}`, "content-length", String(framing.totalBytes));
  state.status = 206;
  state.resultType = served;
  if (request.method === "HEAD") {
    response.send(206, headers, undefined);
    return;
  }
  async function* parts(): AsyncGenerator<Buffer> {
    for (const [index, range] of ranges.entries()) {
      yield framing.heads[index]!;
      // Leaving the loop early, when the viewer goes away, destroys the file stream.
      for await (const chunk of openDiskBody(context, disk, range)) yield chunk as Buffer;
    }
    yield framing.tail;
  }
  await response.stream(206, headers, Readable.from(parts(), { objectMode: false }));
}

/** Adds a stale disk entry's validators to an origin request, and returns whether it has any. */
export function addDiskValidators(headers: Record<string, string>, disk: DiskStreamTarget): boolean {
  const etag = headerIn(disk.metadata.originHeaders, "etag");
  const lastModified = headerIn(disk.metadata.originHeaders, "last-modified");
  if (etag !== undefined) headers["if-none-match"] = etag;
  if (lastModified !== undefined) headers["if-modified-since"] = lastModified;
  return etag !== undefined || lastModified !== undefined;
}

/** Returns the fields of a disk entry that decide whether it may be served stale. */
export function diskFreshnessOf(disk: DiskStreamTarget): Pick<CachedResponse, "status" | "mustRevalidate"> & StaleWindows {
  const metadata = disk.metadata;
  return {
    status: metadata.status,
    mustRevalidate: metadata.mustRevalidate,
    staleAtMs: metadata.staleAtMs,
    staleWhileRevalidateSeconds: metadata.staleWhileRevalidateSeconds,
    staleIfErrorSeconds: metadata.staleIfErrorSeconds ?? undefined,
  };
}

/**
 * Serves a stale large entry after a 304: records the merged headers and the
 * new freshness for the entry (RFC 9111 section 4.3.4) and serves the file.
 * When the new headers no longer allow caching, or a purge ran during the
 * request, the stale copy is served this once and the entry removed.
 */
export async function serveRevalidatedDisk(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  target: CacheableRequest,
  disk: DiskStreamTarget,
  notModified: OriginResponse,
  receivedAtMs: number,
  epochAtStart: number,
): Promise<void> {
  const metadata = disk.metadata;
  const { merged, decision } = mergeNotModified(metadata.status, metadata.originHeaders, notModified, receivedAtMs, target.distribution, target.behavior);
  if (!decision.store || purgeEpoch(context, target.distribution.id) !== epochAtStart) {
    // The entry goes once the file has been read: removing it first would cut the body short.
    await serveDiskStream(context, state, request, response, target, disk, () => cacheStatus.refreshed(0), "RefreshHit");
    if (disk.peer !== true) await context.disk?.delete(metadata.key);
    return;
  }
  const initialAgeSeconds = parseAgeSeconds(originHeader(notModified.headers, "age"));
  const refreshed: MetadataRefresh = {
    originHeaders: merged,
    responseAtMs: receivedAtMs,
    initialAgeSeconds,
    ttlSeconds: decision.ttlSeconds,
    staleAtMs: receivedAtMs + (decision.ttlSeconds - initialAgeSeconds) * 1000,
    staleWhileRevalidateSeconds: decision.staleWhileRevalidateSeconds,
    staleIfErrorSeconds: decision.staleIfErrorSeconds ?? null,
    mustRevalidate: decision.mustRevalidate,
    storedAtMs: Date.now(),
  };
  const refreshedDisk = { ...disk, metadata: { ...metadata, ...refreshed } };
  if (disk.peer === true) {
    // Another worker's file: this worker reads it under the new headers, and that worker stores them.
    const file = { metadata: refreshedDisk.metadata, path: disk.path, bodyOffset: disk.bodyOffset, inode: disk.inode };
    holdPeerFile(context, target.keyResult.key, file, epochAtStart);
    context.peers?.hold(target.keyResult.key, file);
  } else {
    context.disk?.refresh(metadata.key, refreshed);
  }
  await serveDiskStream(context, state, request, response, target, refreshedDisk, cacheStatus.refreshed, "RefreshHit");
}

/**
 * Serves a stale large entry because the origin failed (`originStatus`
 * undefined) or returned 500 or above, and keeps it in use for the error
 * caching TTL of `errorStatus`, as the memory path does.
 */
export async function serveStaleDiskOnError(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  target: CacheableRequest,
  disk: DiskStreamTarget,
  originStatus: number | undefined,
  errorStatus: number,
): Promise<void> {
  const metadata = disk.metadata;
  const holdSeconds = errorCachingTtlSeconds(target.distribution.errorCachingMinTtlSeconds, errorStatus);
  const windows = diskFreshnessOf(disk);
  const untilMs = staleOnErrorUntilMs(windows, holdSeconds, Date.now());
  if (untilMs > metadata.staleAtMs) {
    const shortened = holdStaleCopy(windows, untilMs);
    const heldMetadata = { ...metadata, ...shortened, staleIfErrorSeconds: shortened.staleIfErrorSeconds ?? null };
    // Another worker's file is held here, where this worker's misses and the other workers find it.
    if (disk.peer === true) {
      const file = { metadata: heldMetadata, path: disk.path, bodyOffset: disk.bodyOffset, inode: disk.inode };
      holdPeerFile(context, target.keyResult.key, file, purgeEpoch(context, target.distribution.id), untilMs);
      context.peers?.hold(target.keyResult.key, file);
    } else {
      context.disk?.refresh(metadata.key, heldMetadata);
    }
  }
  await serveDiskStream(context, state, request, response, target, disk, (ttlSeconds) => cacheStatus.staleOnError(originStatus, ttlSeconds));
}
