import { finished } from "node:stream/promises";
import { Readable } from "node:stream";
import { newRequestId } from "../common/ids.js";
import {
  hasValidator,
  holdStaleCopy,
  mayServeStaleOnError,
  staleOnErrorUntilMs,
  withinStaleWhileRevalidate,
  type CachedResponse,
} from "../cache/entry.js";
import { decideFreshness, errorCachingTtlSeconds, parseAgeSeconds, type FreshnessDecision } from "../cache/freshness.js";
import { canonicalizePath } from "../cache/invalidation.js";
import { notModifiedApplies } from "../cache/etag.js";
import type { CacheKeyResult } from "../cache/key.js";
import type { LockOutcome } from "../cache/lock.js";
import type { FetchEnd } from "../cluster/peers.js";
import { parseVary, varySignature } from "../cache/vary.js";
import type { DiskStreamTarget } from "../cache/disk.js";
import { OriginError, type Origin, type OriginResponse } from "../origin/index.js";
import { lookupDisk, persistEntry } from "./disk-flow.js";
import {
  acceptSharedEntry,
  acceptSharedFile,
  acceptSharedFill,
  fillPurged,
  heldPeerFile,
  holdPeerFile,
  sharedFillOf,
  type PeerCache,
} from "./peer-flow.js";
import { serveSlices, sliceable, sliceableRange, sliceBytesOf } from "./slice-flow.js";
import { hostNameOf } from "./host.js";
import {
  addDiskValidators,
  diskFreshnessOf,
  serveDiskStream,
  serveRevalidatedDisk,
  serveStaleDiskOnError,
  teeToDisk,
} from "./disk-serve.js";
import { fillBody, followFill, liveFill, registerFill, type StreamingFill } from "./fill-follow.js";
import { chooseEncoding, compressBody, compressedHeaders, isCompressible, varyingByAcceptEncoding } from "./compression.js";
import { purgeEpoch, purgedSince, type EdgeContext } from "./context.js";
import { createEntry, freshnessHeadersOf, refreshEntry } from "./entry-builder.js";
import type { ExchangeState, ViewerRequest, ViewerResponse } from "./exchange.js";
import {
  declaredLength,
  logOriginFailure,
  noteOriginDenied,
  originFailureDetail,
  originFailureOf,
  originRequestHeaders,
  sendOriginFailure,
} from "./forward.js";
import { cacheStatus, originHeader, passOriginHeaders, headerIn } from "./headers.js";
import { sendEdgeResponse, serveEntry, serveFreshHit, streamUncached, ttlLeft } from "./respond.js";
import { forwardsCookies, type RoutedBehavior, type RoutedDistribution } from "./routing.js";

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
  /** A stale large entry on disk, set by the lookup, which the fetch revalidates or falls back on. */
  staleOnDisk?: DiskStreamTarget;
}

/**
 * Returns whether a stale copy may be served because the origin failed: its
 * freshness allows it, and it is still stored. An invalidation that ran
 * while the fetch was waiting has removed it, and then it is never served.
 */
function staleServable(context: EdgeContext, entry: CachedResponse, nowMs: number): boolean {
  return mayServeStaleOnError(entry, nowMs) && context.memory.peek(entry.key) === entry;
}

/** Returns whether a stale disk entry may be served because the origin failed, as `staleServable` does. */
function diskStaleServable(context: EdgeContext, disk: DiskStreamTarget, nowMs: number): boolean {
  return mayServeStaleOnError(diskFreshnessOf(disk), nowMs) && context.disk?.has(disk.metadata.key) === true;
}

/**
 * Returns whether a large copy found earlier is still there: this worker's in
 * its disk tier, and either worker's not covered by a purge applied since.
 */
function diskCopyKept(context: EdgeContext, disk: DiskStreamTarget): boolean {
  const metadata = disk.metadata;
  if (disk.peer !== true && context.disk?.has(metadata.key) !== true) return false;
  return !purgedSince(context, metadata.distributionId, metadata.invalidationPaths, metadata.storedAtMs);
}

function isFresh(entry: CachedResponse, nowMs: number): boolean {
  return nowMs < entry.staleAtMs;
}

/** Looks up the stored variant for a request: the primary key plus the secondary key its Vary names select. */
function lookup(context: EdgeContext, target: CacheableRequest): CachedResponse | undefined {
  const keyResult = target.keyResult;
  return context.memory.get(context.vary.fullKey(keyResult.key, keyResult.forwardedHeaders));
}

/**
 * Serves a GET or HEAD through the cache. A fresh entry is a hit; a stale one
 * within stale-while-revalidate is served while one background fetch
 * refreshes it. Otherwise one writer per key fetches from the origin, with
 * a conditional request when the stale entry has a validator, and
 * concurrent requests for the key wait for its outcome.
 */
export function serveCacheable(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  target: CacheableRequest,
): Promise<void> | undefined {
  // A fresh entry in memory is served synchronously, without a promise.
  const cached = lookup(context, target);
  if (cached !== undefined && isFresh(cached, request.receivedAtMs)) {
    serveFreshHit(context, state, request, response, cached, target.behavior.headersPolicy);
    return undefined;
  }
  return serveFromDiskOrOrigin(context, state, request, response, target, cached);
}

async function serveFromDiskOrOrigin(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  target: CacheableRequest,
  inMemory: CachedResponse | undefined,
): Promise<void> {
  const key = target.keyResult.key;
  const policy = target.behavior.headersPolicy;
  let cached = inMemory;
  if (cached === undefined && context.disk !== undefined) {
    const found = await lookupDisk(context, context.vary.fullKey(key, target.keyResult.forwardedHeaders));
    if (found?.kind === "entry") cached = found.entry;
    else if (found?.kind === "stream") {
      if (Date.now() < found.target.metadata.staleAtMs) {
        await serveDiskStream(context, state, request, response, target, found.target);
        return;
      }
      target.staleOnDisk = found.target;
    }
  }
  // Another worker's large copy that this worker keeps in use, such as a stale one while the origin fails.
  if (cached === undefined && target.staleOnDisk === undefined && context.peerFiles.size > 0) {
    const keptFile = await heldPeerFile(context, key);
    if (keptFile !== undefined) {
      await serveDiskStream(context, state, request, response, target, keptFile, cacheStatus.peer);
      return;
    }
  }
  // A large object that another request is writing to disk: read it as it grows. A range far
  // ahead of the write comes from the origin in slices instead.
  const fill = liveFill(context, key, request);
  if (fill !== undefined && (await followFill(context, state, request, response, fill, policy, sliceBytesOf(context)))) return;
  if (cached === undefined && request.headers["if-range"] === undefined) {
    const requested =
      request.method === "HEAD"
        ? ({ kind: "head" } as const)
        : request.method === "GET"
          ? sliceableRange(request.headers.range)
          : undefined;
    if (requested !== undefined && sliceable(context, key)) {
      // Another worker's copy serves ranges and HEADs without the origin.
      if (context.peers !== undefined && (await serveFoundCopy(context, context.peers, state, request, response, target))) return;
      // A stale large copy, this worker's or another's, is revalidated below with one conditional
      // request, which costs less than fetching slices when the origin confirms it.
      if (target.staleOnDisk === undefined) {
        const handoff = await serveSlices(context, state, request, response, target, requested);
        if (handoff === undefined) return;
        if (handoff.kind === "response") {
          // The origin sent the whole object, or the object fits in one slice.
          await fetchAsWriter(context, state, request, response, target, undefined, () => {}, handoff);
          return;
        }
      }
    }
  }
  const nowMs = Date.now();
  if (cached !== undefined && isFresh(cached, nowMs)) {
    serveFreshHit(context, state, request, response, cached, policy);
    return;
  }
  if (cached !== undefined && withinStaleWhileRevalidate(cached, nowMs)) {
    serveEntry(context, state, request, response, cached, "Hit", cacheStatus.staleWhileRevalidate(ttlLeft(cached)), policy);
    refreshInBackground(context, request, target, cached);
    return;
  }

  for (let round = 0; round < MAX_WAIT_ROUNDS; round++) {
    const ticket = context.lock.acquire(key);
    if (ticket.role === "writer") {
      let outcome: LockOutcome = "failed";
      let shareWithPeers: ((value: LockOutcome) => void) | undefined;
      let refreshAfterRelease: CachedResponse | undefined;
      const settle = (value: LockOutcome): void => {
        outcome = value;
        ticket.release(value);
        shareWithPeers?.(value);
        shareWithPeers = undefined;
      };
      try {
        if (context.peers !== undefined) {
          const peerResult = await askPeers(context, state, request, response, target, settle, cached);
          if (peerResult === "served") return;
          if (typeof peerResult === "object") {
            // Another worker's stale copy, now stored here too: serve it under
            // stale-while-revalidate, else revalidate it, or serve it if the origin fails.
            cached = peerResult.stale;
            shareWithPeers = peerResult.share;
            if (withinStaleWhileRevalidate(cached, Date.now())) {
              serveEntry(context, state, request, response, cached, "Hit", cacheStatus.staleWhileRevalidate(ttlLeft(cached)), policy);
              settle("stored");
              refreshAfterRelease = cached;
              return;
            }
          } else {
            shareWithPeers = peerResult;
          }
        }
        // NOTE: workers that wait on this fetch through the primary are not counted, so a HEAD
        // that reads no body leaves them to fetch on their own.
        await fetchAsWriter(context, state, request, response, target, cached, settle, undefined, () => context.lock.hasWaiters(key));
      } finally {
        // Releasing twice is harmless; this covers a writer that threw before settling.
        ticket.release(outcome);
        shareWithPeers?.("failed");
        if (refreshAfterRelease !== undefined) refreshInBackground(context, request, target, refreshAfterRelease);
      }
      return;
    }

    const outcome = await ticket.wait();
    if (outcome === "streaming") {
      const fill = liveFill(context, key, request);
      if (fill !== undefined && (await followFill(context, state, request, response, fill, policy))) return;
      // The write failed before this request read it: the next round elects one writer again.
      continue;
    }
    const fetched = entryEndOf(outcome);
    const forward = forwardOf(cached, target);
    if (fetched !== undefined) {
      // A stale copy served on an origin failure is held fresh for the error caching TTL.
      const served = fetched === "revalidated" ? "RefreshHit" : "Hit";
      const stored = lookup(context, target);
      const nowMs = Date.now();
      if (stored !== undefined && isFresh(stored, nowMs)) {
        const status = collapsedStatus(fetched, forward, stored.status, ttlLeft(stored));
        serveEntry(context, state, request, response, stored, served, status, policy);
        return;
      }
      if (stored !== undefined && withinStaleWhileRevalidate(stored, nowMs)) {
        serveEntry(context, state, request, response, stored, "Hit", cacheStatus.staleWhileRevalidate(ttlLeft(stored)), policy);
        refreshInBackground(context, request, target, stored);
        return;
      }
      // A large entry in another worker's disk tier, which this worker's writer was handed.
      const peerFile = stored === undefined ? await heldPeerFile(context, key) : undefined;
      if (peerFile !== undefined) {
        await serveDiskStream(context, state, request, response, target, peerFile, cacheStatus.peer);
        return;
      }
      // A large entry is on disk only: the writer stored it there, or refreshed or held its file.
      if (stored === undefined && target.staleOnDisk !== undefined) {
        const found = await lookupDisk(context, target.staleOnDisk.metadata.key);
        if (found?.kind === "stream" && Date.now() < found.target.metadata.staleAtMs) {
          const status = (ttlSeconds: number): string => collapsedStatus(fetched, forward, found.target.metadata.status, ttlSeconds);
          await serveDiskStream(context, state, request, response, target, found.target, status, served);
          return;
        }
        if (found?.kind === "stream") target.staleOnDisk = found.target;
      }
    }
    if ((outcome === "failed" || outcome === "served-stale") && cached !== undefined && staleServable(context, cached, Date.now())) {
      serveEntry(context, state, request, response, cached, "Hit", cacheStatus.staleOnError(undefined, ttlLeft(cached)), policy);
      return;
    }
    // After a failed writer, a waiter may become the next writer. Other
    // outcomes mean the response cannot be shared, so the waiter fetches alone.
    if (outcome !== "failed" && fetched === undefined) break;
  }

  await fetchAsWriter(context, state, request, response, target, cached, () => {});
}

/**
 * Asks the sibling workers about a miss this worker is about to fetch.
 * Returns "served" when another worker's fresh entry served the request,
 * another worker's stale entry to revalidate, or the function that tells
 * them how this worker's fetch ended when it is the writer for the whole
 * edge (undefined when it fetches without sharing).
 */
async function askPeers(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  target: CacheableRequest,
  settle: (outcome: LockOutcome) => void,
  ownStale: CachedResponse | undefined,
): Promise<"served" | PeerStale | ((outcome: LockOutcome) => void) | undefined> {
  const peers = context.peers!;
  const key = target.keyResult.key;
  let epochAtAcquire = purgeEpoch(context, target.distribution.id);
  let grant = await peers.acquire(key);
  if (grant.kind === "fill" && fillPurged(context, grant.fill, epochAtAcquire)) {
    // A purge that this worker applied covers the write that the key's misses read: a new fetch
    // for the whole edge replaces it.
    peers.supersede(key, grant.fill.id);
    epochAtAcquire = purgeEpoch(context, target.distribution.id);
    grant = await peers.acquire(key);
  }
  const serverError = grant.kind === "filled" && grant.entry.metadata.status >= 500;
  if (serverError || (grant.kind === "alone" && grant.originFailed === true)) {
    // Another worker's fetch failed, or ended in a server error, and left no stale copy this
    // worker can take. This worker serves its own where it may, as after that failure itself.
    const originStatus = grant.kind === "filled" ? grant.entry.metadata.status : undefined;
    const errorStatus = originStatus ?? 502;
    const nowMs = Date.now();
    if (ownStale !== undefined && staleServable(context, ownStale, nowMs)) {
      serveStaleOnError(context, state, request, response, target, ownStale, originStatus, errorStatus);
      settle("served-stale");
      return "served";
    }
    const diskStale = target.staleOnDisk;
    if (ownStale === undefined && diskStale !== undefined && diskStaleServable(context, diskStale, nowMs)) {
      const serving = serveStaleDiskOnError(context, state, request, response, target, diskStale, originStatus, errorStatus);
      settle("served-stale");
      await serving;
      return "served";
    }
  }
  if (grant.kind === "writer") {
    const share = shareWith(context, peers, key);
    if (grant.staleFile !== undefined && ownStale === undefined && target.staleOnDisk === undefined) {
      // Another worker's stale large copy: this worker revalidates it for the whole edge, and
      // serves it if the origin fails. The file stays that worker's.
      const file = await acceptSharedFile(context, grant.staleFile, epochAtAcquire);
      if (file !== undefined) target.staleOnDisk = file;
    }
    if (grant.stale === undefined) return share;
    // Another worker's stale copy: this worker revalidates it for the whole edge.
    const stale = acceptSharedEntry(context, grant.stale, epochAtAcquire);
    if (stale === undefined || lookup(context, target) !== stale) return share;
    return { stale, share };
  }
  if (grant.kind === "alone") return undefined;
  if (grant.kind === "fill") {
    // Another worker writes the object to its disk tier as it arrives: this worker's requests read
    // the file as it grows.
    if (request.method !== "GET" && request.method !== "HEAD") return undefined;
    const fill = acceptSharedFill(context, peers, grant.fill, epochAtAcquire);
    if (fill === undefined) return undefined;
    registerFill(context, key, fill);
    settle("streaming");
    return (await followFill(context, state, request, response, fill, target.behavior.headersPolicy)) ? "served" : undefined;
  }
  if (grant.kind === "file") {
    const file = await acceptSharedFile(context, grant.file, epochAtAcquire);
    if (file === undefined || Date.now() >= file.metadata.staleAtMs) return undefined;
    holdPeerFile(context, key, grant.file, epochAtAcquire);
    const fetched = grant.fetched === undefined || grant.fetched === "failed" ? "stored" : grant.fetched;
    settle(fetched);
    const forward = forwardOf(ownStale, target);
    const status = grant.collapsed
      ? (ttlSeconds: number): string => collapsedStatus(fetched, forward, file.metadata.status, ttlSeconds)
      : cacheStatus.peer;
    await serveDiskStream(context, state, request, response, target, file, status, fetched === "revalidated" ? "RefreshHit" : "Hit");
    return "served";
  }

  const entry = acceptSharedEntry(context, grant.entry, epochAtAcquire);
  const nowMs = Date.now();
  if (entry === undefined || lookup(context, target) !== entry) return undefined;
  if (!isFresh(entry, nowMs)) return { stale: entry };
  const fetched = grant.fetched === undefined || grant.fetched === "failed" ? "stored" : grant.fetched;
  settle(fetched);
  const forward = forwardOf(ownStale, target);
  const status = grant.collapsed ? collapsedStatus(fetched, forward, entry.status, ttlLeft(entry)) : cacheStatus.peer(ttlLeft(entry));
  serveEntry(context, state, request, response, entry, fetched === "revalidated" ? "RefreshHit" : "Hit", status, target.behavior.headersPolicy);
  return "served";
}

/**
 * Returns the stale disk copy that may stand in for a failed origin request:
 * this worker's own large copy, or, when it has no copy at all, another
 * worker's.
 */
async function staleDiskStandIn(
  context: EdgeContext,
  target: CacheableRequest,
  stale: CachedResponse | undefined,
  diskStale: DiskStreamTarget | undefined,
  epochAtStart: number,
  nowMs: number,
): Promise<DiskStreamTarget | undefined> {
  if (diskStale !== undefined && diskStale.peer !== true) return diskStaleServable(context, diskStale, nowMs) ? diskStale : undefined;
  if (stale !== undefined) return undefined;
  // Another worker's copy, even one this worker was about to revalidate, is requested again,
  // because its holder keeps it in use while the origin fails.
  return peerStaleOnError(context, target, epochAtStart);
}

/**
 * Returns another worker's stale large copy of the key when it may be served
 * because the origin failed, unless a purge that this worker applied since
 * `epochAtStart`, or since the copy was stored, could have covered it.
 */
async function peerStaleOnError(context: EdgeContext, target: CacheableRequest, epochAtStart: number): Promise<DiskStreamTarget | undefined> {
  const peers = context.peers;
  if (peers === undefined) return undefined;
  const found = await peers.find(target.keyResult.key, true);
  if (found.file === undefined) return undefined;
  const file = await acceptSharedFile(context, found.file, epochAtStart);
  if (file === undefined || !mayServeStaleOnError(diskFreshnessOf(file), Date.now())) return undefined;
  return file;
}

/**
 * Serves another worker's fresh copy of the key, from its memory tier, its
 * disk tier or its write in progress, and returns whether it served the
 * request. A purge that this worker applied since the copy was stored keeps
 * it from being served.
 */
async function serveFoundCopy(
  context: EdgeContext,
  peers: PeerCache,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  target: CacheableRequest,
): Promise<boolean> {
  const key = target.keyResult.key;
  const epochAtFind = purgeEpoch(context, target.distribution.id);
  const found = await peers.find(key);
  if (found.entry !== undefined) {
    const entry = acceptSharedEntry(context, found.entry, epochAtFind);
    if (entry === undefined || lookup(context, target) !== entry || !isFresh(entry, Date.now())) return false;
    serveEntry(context, state, request, response, entry, "Hit", cacheStatus.peer(ttlLeft(entry)), target.behavior.headersPolicy);
    return true;
  }
  if (found.fill !== undefined) {
    // Another worker's write in progress, which this worker's later requests follow too. A range
    // far ahead of the write comes from the origin in slices instead.
    const fill = liveFill(context, key, request) ?? acceptSharedFill(context, peers, found.fill, epochAtFind);
    if (fill === undefined) return false;
    if (context.fills.get(key) !== fill) registerFill(context, key, fill);
    return followFill(context, state, request, response, fill, target.behavior.headersPolicy, sliceBytesOf(context));
  }
  if (found.staleFile !== undefined && target.staleOnDisk === undefined) {
    // Another worker's stale large copy: the caller revalidates it instead of fetching range slices.
    const stale = await acceptSharedFile(context, found.staleFile, epochAtFind);
    if (stale !== undefined) target.staleOnDisk = stale;
    return false;
  }
  if (found.file === undefined) return false;
  const file = await acceptSharedFile(context, found.file, epochAtFind);
  if (file === undefined || Date.now() >= file.metadata.staleAtMs) return false;
  holdPeerFile(context, key, found.file, epochAtFind);
  await serveDiskStream(context, state, request, response, target, file, cacheStatus.peer);
  return true;
}

/**
 * Returns the function that reports to the other workers how this worker's fetch
 * of `key`, the writer for the whole edge, ended. A fetch that writes a
 * large object to the disk tier as it arrives lets them read the file as it
 * grows, and reports its progress to them until the write ends.
 */
function shareWith(context: EdgeContext, peers: PeerCache, key: string): (outcome: LockOutcome) => void {
  return (outcome) => {
    const fill = outcome === "streaming" ? context.fills.get(key) : undefined;
    if (fill !== undefined && fill.progress.state === "writing") peers.shareFill(key, sharedFillOf(fill), fill.progress);
    // A stale copy served on a failure, or revalidated, without one of this worker's own is another worker's.
    const borrowed =
      (outcome === "served-stale" || outcome === "revalidated") && context.memory.peek(key) === undefined && context.disk?.has(key) !== true;
    peers.release(key, fetchEndOf(outcome), borrowed);
  };
}

/** Returns the Cache-Status `fwd` of a request: "stale" when it found a stale copy in memory or on disk. */
function forwardOf(stale: CachedResponse | undefined, target: CacheableRequest): "stale" | "uri-miss" {
  return stale !== undefined || target.staleOnDisk !== undefined ? "stale" : "uri-miss";
}

/** An end of a writer's fetch that left an entry for its waiters. */
type EntryEnd = Exclude<FetchEnd, "failed">;

/** Returns how a writer's fetch ended, for the other workers; undefined when it left no entry and the origin did not fail. */
function fetchEndOf(outcome: LockOutcome): FetchEnd | undefined {
  return outcome === "failed" ? "failed" : entryEndOf(outcome);
}

/** Returns how a writer's fetch ended when it left an entry for its waiters, or undefined. */
function entryEndOf(outcome: LockOutcome): EntryEnd | undefined {
  switch (outcome) {
    case "stored":
    case "revalidated":
    case "served-stale":
    case "stored-failure":
      return outcome;
    default:
      return undefined;
  }
}

/**
 * Returns the Cache-Status of a request that waited for a fetch that ended
 * as `fetched`. `forward` is "stale" when the request found a stale copy.
 */
function collapsedStatus(fetched: EntryEnd, forward: "stale" | "uri-miss", status: number, ttlSeconds: number): string {
  if (fetched === "served-stale") return cacheStatus.staleOnError(undefined, ttlSeconds);
  if (fetched === "revalidated") return cacheStatus.refreshedCollapsed(ttlSeconds);
  if (fetched === "stored-failure") return cacheStatus.originFailureCollapsed(forward, originFailureDetail(status), ttlSeconds);
  return cacheStatus.collapsed(forward, status, ttlSeconds);
}

/**
 * Another worker's stale copy, now stored here too. With `share`, this worker
 * is the writer for the whole edge, and `share` reports to the others how
 * its fetch ended.
 */
interface PeerStale {
  stale: CachedResponse;
  share?: (outcome: LockOutcome) => void;
}

/** A viewer response that discards everything, for background refreshes. */
const discardingResponse: ViewerResponse = {
  send: () => {},
  stream: async (_status, _headers, body) => {
    body.resume();
    await finished(body).catch(() => {});
  },
  onDone: () => {},
};

/** Starts one background refresh of a stale entry unless another fetch for the key is running. */
function refreshInBackground(
  context: EdgeContext,
  request: ViewerRequest,
  target: CacheableRequest,
  stale: CachedResponse,
): void {
  const ticket = context.lock.acquire(target.keyResult.key);
  if (ticket.role !== "writer") return;
  const state: ExchangeState = {
    requestId: newRequestId(),
    head: false,
    hostName: hostNameOf(request.headers.host),
    distributionId: target.distribution.id,
    logsRequests: false,
    status: 0,
    resultType: "Miss",
    originLatencyMs: undefined,
    bytesUploaded: 0,
  };
  const refreshRequest: ViewerRequest = { ...request, method: "GET", headers: { ...request.headers, range: undefined } };
  let outcome: LockOutcome = "failed";
  let shareWithPeers: ((value: LockOutcome) => void) | undefined;
  const settle = (value: LockOutcome): void => {
    outcome = value;
    ticket.release(value);
    shareWithPeers?.(value);
    shareWithPeers = undefined;
  };
  const refresh = async (): Promise<void> => {
    const peers = context.peers;
    if (peers !== undefined) {
      // One refresh for the whole edge: a worker that finds another's running takes its result.
      const key = target.keyResult.key;
      const epochAtAcquire = purgeEpoch(context, target.distribution.id);
      const grant = await peers.acquire(key);
      if (grant.kind === "filled") {
        // A server error from the other worker's fetch leaves this worker's stale copy in place.
        const accepted = grant.entry.metadata.status < 500 && acceptSharedEntry(context, grant.entry, epochAtAcquire) !== undefined;
        settle(accepted ? "stored" : "failed");
        return;
      }
      // Another worker has or writes a large copy: once this stale copy may no longer be served, misses read that one.
      if (grant.kind === "file" || grant.kind === "fill") {
        settle("failed");
        return;
      }
      if (grant.kind === "writer") shareWithPeers = shareWith(context, peers, key);
    }
    await fetchAsWriter(context, state, refreshRequest, discardingResponse, target, stale, settle);
  };
  refresh()
    .catch((error: unknown) => {
      context.log.warn({ err: error, distributionId: target.distribution.id }, "background refresh failed");
    })
    .finally(() => {
      ticket.release(outcome);
      shareWithPeers?.("failed");
    });
}

/**
 * Fetches from the origin and stores what is cacheable. `settle` is called as
 * soon as waiters can proceed: after the entry is stored, or as soon as the
 * response is known not to be stored. `stale` is the stored variant, if any.
 * `waitedOn` returns whether other requests wait for this fetch's outcome.
 */
async function fetchAsWriter(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  target: CacheableRequest,
  stale: CachedResponse | undefined,
  settle: (outcome: LockOutcome) => void,
  prefetched?: { fetch: () => Promise<OriginResponse>; epochAtStart: number; originStatus?: number },
  waitedOn: () => boolean = () => false,
): Promise<void> {
  const { distribution, behavior, keyResult } = target;
  const policy = behavior.headersPolicy;
  const epochAtStart = prefetched?.epochAtStart ?? purgeEpoch(context, distribution.id);
  const fetchStartedAtMs = Date.now();
  const revalidating = stale !== undefined && hasValidator(stale);
  // A large stale entry is on disk only, and is revalidated the same way.
  let diskStale = stale === undefined ? target.staleOnDisk : undefined;
  if (diskStale !== undefined && !diskCopyKept(context, diskStale)) {
    // An invalidation or an eviction removed the copy since the request found it.
    diskStale = undefined;
    delete target.staleOnDisk;
  }

  const headers = originRequestHeaders(context, state, request, keyResult);
  if (revalidating) {
    if (stale.etag !== undefined) headers["if-none-match"] = stale.etag;
    if (stale.lastModified !== undefined) headers["if-modified-since"] = stale.lastModified;
  }
  const diskRevalidating = diskStale !== undefined && addDiskValidators(headers, diskStale);

  let originResponse: OriginResponse;
  try {
    // A HEAD is fetched as GET so that the stored entry can serve later GETs.
    originResponse = await (prefetched?.fetch() ?? target.origin.fetch({
      method: "GET",
      path: target.originPath,
      query: keyResult.forwardedQuery,
      headers,
      body: undefined,
      viewerProtocol: request.protocol,
    }));
  } catch (error) {
    const nowMs = Date.now();
    const staleUsable = stale !== undefined && staleServable(context, stale, nowMs);
    const diskStandIn = staleUsable ? undefined : await staleDiskStandIn(context, target, stale, diskStale, epochAtStart, nowMs);
    if (!staleUsable && diskStandIn === undefined) {
      // No stored copy may stand in, so the failure is cached like an origin's 502 or 504. It
      // replaces a copy that may not be served on errors, such as an expired error.
      const stored = storeOriginFailure(context, state, request, response, target, error, epochAtStart, stale);
      settle(stored ? "stored-failure" : "failed");
      return;
    }
    const viewerStatus = error instanceof OriginError ? error.viewerStatus : 502;
    if (staleUsable) {
      context.log.warn(
        { err: error, distributionId: distribution.id, requestId: state.requestId },
        "origin request failed; served a stale copy",
      );
      serveStaleOnError(context, state, request, response, target, stale!, undefined, viewerStatus);
      settle("served-stale");
      return;
    }
    context.log.warn(
      { err: error, distributionId: distribution.id, requestId: state.requestId },
      diskStandIn!.peer === true ? "origin request failed; served another worker's stale copy" : "origin request failed; served a stale copy from disk",
    );
    // The copy is held before the function first waits, so the waiters released here find it held.
    const serving = serveStaleDiskOnError(context, state, request, response, target, diskStandIn!, undefined, viewerStatus);
    settle("served-stale");
    await serving;
    return;
  }
  state.originLatencyMs = originResponse.firstByteLatencyMs;
  const receivedAtMs = Date.now();
  await noteOriginDenied(context, state, distribution, target.originPath, originResponse);

  if (originResponse.status === 304 && (revalidating || diskRevalidating) && prefetched === undefined) {
    const diskHeaders = diskStale?.metadata.originHeaders ?? [];
    const applies = notModifiedApplies(
      revalidating ? stale.etag : headerIn(diskHeaders, "etag"),
      revalidating ? stale.lastModified : headerIn(diskHeaders, "last-modified"),
      originHeader(originResponse.headers, "etag"),
      originHeader(originResponse.headers, "last-modified"),
    );
    // A purge or an eviction during the revalidation of a disk copy removed its file, which then
    // cannot be served.
    const fileGone = diskRevalidating && (purgeEpoch(context, distribution.id) !== epochAtStart || !diskCopyKept(context, diskStale!));
    if (!applies || fileGone) {
      originResponse.body.resume();
      if (!applies) {
        context.log.warn(
          { distributionId: distribution.id, requestId: state.requestId, etag: originHeader(originResponse.headers, "etag") },
          "origin's 304 names another version than the stored copy; fetching the object again",
        );
        // The copy is no longer the origin's current one, so no later request revalidates it,
        // even when this request, a HEAD, stores nothing in its place.
        if (revalidating) context.memory.delete(stale.key);
        else if (diskStale!.peer !== true) await context.disk?.delete(diskStale!.metadata.key);
      }
      // Without a stored copy, the next request carries no validators, so it cannot end here again.
      delete target.staleOnDisk;
      await fetchAsWriter(context, state, request, response, target, undefined, settle, undefined, waitedOn);
      return;
    }
  }

  if (originResponse.status === 304 && revalidating) {
    originResponse.body.resume();
    const refreshed = refreshEntry(context, stale, originResponse, receivedAtMs, distribution, behavior);
    if (refreshed !== undefined && purgeEpoch(context, distribution.id) === epochAtStart && context.memory.put(refreshed)) {
      settle("revalidated");
      persistEntry(context, refreshed, keyResult.key, varyNamesOf(originResponse, stale));
      serveEntry(context, state, request, response, refreshed, "RefreshHit", cacheStatus.refreshed(ttlLeft(refreshed)), policy);
      return;
    }
    // No longer cacheable under the new headers: serve the stale copy this once and drop it.
    context.memory.delete(stale.key);
    void context.disk?.delete(stale.key);
    settle("not-stored");
    serveEntry(context, state, request, response, stale, "RefreshHit", cacheStatus.refreshed(0), policy);
    return;
  }

  if (originResponse.status === 304 && diskRevalidating) {
    originResponse.body.resume();
    // The refresh is recorded before the function first waits, so the waiters find the file fresh.
    const serving = serveRevalidatedDisk(context, state, request, response, target, diskStale!, originResponse, receivedAtMs, epochAtStart);
    settle("revalidated");
    await serving;
    return;
  }

  const diskStandIn =
    originResponse.status >= 500 ? await staleDiskStandIn(context, target, stale, diskStale, epochAtStart, receivedAtMs) : undefined;
  if (diskStandIn !== undefined) {
    originResponse.body.resume();
    context.log.warn(
      { distributionId: distribution.id, requestId: state.requestId, status: originResponse.status },
      diskStandIn.peer === true
        ? "origin answered with an error; served another worker's stale copy"
        : "origin answered with an error; served a stale copy from disk",
    );
    const serving = serveStaleDiskOnError(context, state, request, response, target, diskStandIn, originResponse.status, originResponse.status);
    settle("served-stale");
    await serving;
    return;
  }

  if (originResponse.status >= 500 && stale !== undefined && staleServable(context, stale, receivedAtMs)) {
    // RFC 5861 section 4: an error status is an error for stale-if-error.
    originResponse.body.resume();
    context.log.warn(
      { distributionId: distribution.id, requestId: state.requestId, status: originResponse.status },
      "origin answered with an error; served a stale copy",
    );
    serveStaleOnError(context, state, request, response, target, stale, originResponse.status, originResponse.status);
    settle("served-stale");
    return;
  }

  const keepSetCookie = forwardsCookies(behavior);
  let passedHeaders = passOriginHeaders(originResponse.headers, keepSetCookie);
  const vary = parseVary(originHeader(originResponse.headers, "vary"));
  const originAge = originHeader(originResponse.headers, "age");
  let decision: FreshnessDecision = decideFreshness(
    originResponse.status,
    freshnessHeadersOf(passedHeaders, originAge),
    behavior.cache.ttl,
    receivedAtMs,
    distribution.errorCachingMinTtlSeconds,
  );
  // RFC 9111 section 4.1: a stored Vary: * response never matches a later
  // request, so it is not stored at all.
  if (vary.kind === "star") decision = { store: false, reason: "vary-star" };
  const contentLength = declaredLength(originResponse);
  const forward = stale !== undefined || diskStale !== undefined ? "stale" : context.vary.varies(keyResult.key) ? "vary-miss" : "uri-miss";
  // RFC 9211 section 2.3: fwd-status is what the origin sent, a 206 even when it held the whole object.
  const forwardedStatus = prefetched?.originStatus ?? originResponse.status;
  const initialAgeSeconds = parseAgeSeconds(originAge);

  const streamWithoutStoring = async (body: Readable, detail: string): Promise<void> => {
    if (stale !== undefined) {
      context.memory.delete(stale.key);
      void context.disk?.delete(stale.key);
    }
    settle("not-stored");
    await streamUncached(
      context,
      state,
      request,
      response,
      { status: originResponse.status, headers: passedHeaders, body, contentLength, originAgeSeconds: initialAgeSeconds },
      cacheStatus.miss(forward, forwardedStatus, false, detail),
      policy,
    );
  };

  if (!decision.store) {
    await streamWithoutStoring(originResponse.body, decision.reason);
    return;
  }
  // A HEAD needs only the head. It reads at most one range slice of the body, as much as a HEAD
  // costs with an origin that honours Range, unless other requests wait for this fetch.
  const headOnly = request.method === "HEAD" && !waitedOn();
  const headReadBytes = sliceBytesOf(context);
  if (headOnly && contentLength !== undefined && contentLength > headReadBytes) {
    await streamWithoutStoring(originResponse.body, "head-only");
    return;
  }
  const varyNames = vary.kind === "headers" ? vary.names : [];
  // NOTE: a large body without Content-Length (chunked) is not written to
  // disk, because the file's head records the body length before the body.
  if (contentLength !== undefined && contentLength > context.maxObjectBytes) {
    const tee = teeToDisk(context, target, {
      fullKey: keyResult.key + varySignature(varyNames, keyResult.forwardedHeaders),
      varyNames,
      status: originResponse.status,
      originHeaders: passedHeaders,
      receivedAtMs,
      startedAtMs: fetchStartedAtMs,
      initialAgeSeconds,
      decision,
      contentLength,
    });
    if (typeof tee === "string") {
      await streamWithoutStoring(originResponse.body, tee);
      return;
    }
    // The stale copy in memory, such as an expired error, would be found before the new file.
    if (stale !== undefined) context.memory.delete(stale.key);
    const tap = tee.tap;
    if (varyNames.length === 0) {
      // The fetch fills the disk file at the disk's pace, and every viewer of the object, this
      // one included, reads the file as it grows, so a viewer that leaves ends only its own
      // response. The other misses for the key read it too instead of fetching it again.
      // Other workers read it too when this fetch is the writer for the whole edge (`shareWith`).
      const originBody = originResponse.body;
      // The write's progress reports how it ended to its readers, so the tap's own error is not needed.
      tap.on("error", () => {});
      originBody.on("error", (error) => tap.destroy(error));
      // A body closed before its end without an error still ends the write, as failed.
      originBody.on("close", () => {
        if (!originBody.readableEnded) tap.destroy();
      });
      originBody.pipe(tap).resume();
      const fill: StreamingFill = {
        progress: tee.progress,
        status: originResponse.status,
        headers: passedHeaders,
        receivedAtMs,
        initialAgeSeconds,
        ttlSeconds: decision.ttlSeconds,
        distributionId: distribution.id,
        invalidationPaths: invalidationPathsOf(target),
        startedAtMs: fetchStartedAtMs,
        purgeEpoch: epochAtStart,
        abort: () => {
          originBody.destroy();
          tap.destroy();
        },
      };
      registerFill(context, keyResult.key, fill);
      settle("streaming");
      await streamUncached(
        context,
        state,
        request,
        response,
        { status: fill.status, headers: passedHeaders.slice(), body: fillBody(fill.progress), contentLength, originAgeSeconds: initialAgeSeconds },
        cacheStatus.miss(forward, forwardedStatus, true, "streamed-to-disk", fill.ttlSeconds - fill.initialAgeSeconds),
        policy,
      );
      return;
    }
    // With Vary, the object goes to the viewer and the disk at the viewer's pace, and the other
    // misses for the key fetch on their own.
    settle("not-stored");
    originResponse.body.on("error", (error) => tap.destroy(error));
    // A viewer that goes away destroys the tee; the origin connection must not be left paused.
    tap.on("close", () => {
      if (!originResponse.body.readableEnded) originResponse.body.destroy();
    });
    await streamUncached(
      context,
      state,
      request,
      response,
      { status: originResponse.status, headers: passedHeaders, body: originResponse.body.pipe(tap), contentLength, originAgeSeconds: initialAgeSeconds },
      cacheStatus.miss(forward, forwardedStatus, true, "streamed-to-disk", decision.ttlSeconds - initialAgeSeconds),
      policy,
    );
    return;
  }

  // Reserve the bytes before buffering, so concurrent misses never hold
  // more than the in-flight budget in memory at once.
  const reservedBytes = contentLength ?? context.maxObjectBytes;
  if (!context.inFlight.reserve(reservedBytes)) {
    await streamWithoutStoring(originResponse.body, "buffers-full");
    return;
  }
  let body: Buffer;
  let rest: Readable | undefined;
  // Released here on failure; otherwise by the replay of an oversized body,
  // or once the entry is stored or its response is done.
  let releaseNow = true;
  try {
    const readLimitBytes = Math.min(reservedBytes, context.maxObjectBytes, headOnly ? headReadBytes : Number.POSITIVE_INFINITY);
    const buffered = await readUpTo(originResponse.body, readLimitBytes);
    body = buffered.body;
    rest = buffered.rest;
    if (rest !== undefined) {
      // The bytes read so far stay in memory until the viewer has taken
      // them, so they stay reserved until then.
      releaseNow = false;
      releaseAfterReplay(rest, () => context.inFlight.release(reservedBytes));
    }
    if (rest === undefined && behavior.compress && isCompressible(originResponse.status, passedHeaders, body.length)) {
      const encoding = chooseEncoding(keyResult.acceptEncoding);
      if (encoding !== undefined) {
        // The compressed copy is counted against the same reservation as the body it replaces.
        body = await compressBody(body, encoding);
        passedHeaders = compressedHeaders(passedHeaders, encoding);
      } else {
        passedHeaders = varyingByAcceptEncoding(passedHeaders);
      }
    }
    releaseNow = false;
  } catch (error) {
    releaseNow = rest === undefined;
    // The origin's body broke off while it was read into memory, before the viewer got any of it.
    if (stale !== undefined && staleServable(context, stale, Date.now())) {
      serveStaleOnError(context, state, request, response, target, stale, undefined, 502);
      settle("served-stale");
      return;
    }
    settle("failed");
    sendOriginFailure(context, state, response, distribution, error);
    return;
  } finally {
    if (releaseNow) context.inFlight.release(reservedBytes);
  }
  if (rest !== undefined) {
    await streamWithoutStoring(rest, headOnly ? "head-only" : "too-large");
    return;
  }

  const fullKey = keyResult.key + varySignature(varyNames, keyResult.forwardedHeaders);
  const entry = createEntry(
    context,
    {
      key: fullKey,
      distributionId: distribution.id,
      invalidationPaths: invalidationPathsOf(target),
      status: originResponse.status,
      originHeaders: passedHeaders,
      body,
      receivedAtMs,
      initialAgeSeconds,
      decision,
    },
    policy,
  );
  // A purge that ran during the fetch may have targeted this very response.
  const stored = purgeEpoch(context, distribution.id) === epochAtStart && context.memory.put(entry);
  if (stored) {
    // The body now counts against the memory tier's budget instead.
    context.inFlight.release(reservedBytes);
  } else {
    // An unstored body stays in memory until its viewer has it, so it keeps its reservation.
    state.reservedBytes = reservedBytes;
  }
  if (stored) {
    context.vary.record(keyResult.key, varyNames, keyResult.forwardedHeaders);
    persistEntry(context, entry, keyResult.key, varyNames);
  }
  if (!stored && stale !== undefined) context.memory.delete(stale.key);
  // The viewer's response is written before the waiters are released: releasing the other
  // workers' waiters sends a message to the primary, whose write costs about as much as the
  // response's.
  try {
    serveEntry(
      context,
      state,
      request,
      response,
      entry,
      "Miss",
      cacheStatus.miss(
        forward,
        forwardedStatus,
        stored,
        stored ? undefined : notStoredDetail(context, distribution.id, epochAtStart, entry),
        stored ? ttlLeft(entry) : undefined,
      ),
      policy,
    );
  } finally {
    settle(stored ? "stored" : "not-stored");
  }
}

/**
 * Serves a stale copy because the origin failed (`originStatus` undefined) or
 * returned 500 or above. As CloudFront does, the copy stays in use for the
 * error caching TTL of `errorStatus`, so requests in that time are served from
 * it instead of going to the failing origin.
 */
function serveStaleOnError(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  target: CacheableRequest,
  stale: CachedResponse,
  originStatus: number | undefined,
  errorStatus: number,
): void {
  const holdSeconds = errorCachingTtlSeconds(target.distribution.errorCachingMinTtlSeconds, errorStatus);
  const untilMs = staleOnErrorUntilMs(stale, holdSeconds, Date.now());
  if (untilMs > stale.staleAtMs) Object.assign(stale, holdStaleCopy(stale, untilMs));
  const status = cacheStatus.staleOnError(originStatus, ttlLeft(stale));
  serveEntry(context, state, request, response, stale, "Hit", status, target.behavior.headersPolicy);
}

/**
 * Sends 502 or 504 for an origin that gave no response (refused,
 * unreachable or timed out), and stores that response for the error caching
 * TTL of its status. CloudFront counts such a failure as a 5xx from the origin
 * and caches it, so the requests in that time, and the ones waiting for this
 * fetch, get the error at once instead of each trying the origin again.
 * Returns whether the response was stored; when it was not, it was still sent.
 */
function storeOriginFailure(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  target: CacheableRequest,
  error: unknown,
  epochAtStart: number,
  stale: CachedResponse | undefined,
): boolean {
  const { distribution, behavior, keyResult } = target;
  logOriginFailure(context, state, distribution, error);
  const failure = originFailureOf(error);
  const forward = forwardOf(stale, target);
  const nowMs = Date.now();
  const originHeaders = ["content-type", "text/plain; charset=utf-8"];
  const decision = decideFreshness(
    failure.status,
    freshnessHeadersOf(originHeaders, undefined),
    behavior.cache.ttl,
    nowMs,
    distribution.errorCachingMinTtlSeconds,
  );
  if (decision.store && purgeEpoch(context, distribution.id) === epochAtStart) {
    const entry = createEntry(
      context,
      {
        key: keyResult.key,
        distributionId: distribution.id,
        invalidationPaths: invalidationPathsOf(target),
        status: failure.status,
        originHeaders,
        body: Buffer.from(`${failure.message}\n`),
        receivedAtMs: nowMs,
        initialAgeSeconds: 0,
        decision,
      },
      behavior.headersPolicy,
    );
    if (context.memory.put(entry)) {
      // The failure has no Vary, so later requests look it up by the bare key, as for an origin error.
      context.vary.record(keyResult.key, [], keyResult.forwardedHeaders);
      if (stale !== undefined && stale.key !== entry.key) context.memory.delete(stale.key);
      const status = cacheStatus.originFailure(forward, failure.detail, ttlLeft(entry));
      serveEntry(context, state, request, response, entry, "Miss", status, behavior.headersPolicy);
      return true;
    }
  }
  sendEdgeResponse(context, state, response, failure.status, failure.message, [], cacheStatus.originFailure(forward, failure.detail));
  return false;
}

/** Why a buffered entry was not stored: purged meanwhile, larger than the budget, or no room beside held bodies. */
function notStoredDetail(context: EdgeContext, distributionId: string, epochAtStart: number, entry: CachedResponse): string {
  if (purgeEpoch(context, distributionId) !== epochAtStart) return "purged";
  return entry.sizeBytes > context.memory.capacityBytes ? "too-large" : "buffers-full";
}

function varyNamesOf(response: OriginResponse, stale: CachedResponse): string[] {
  const vary = parseVary(originHeader(response.headers, "vary") ?? headerIn(stale.originHeaders, "vary"));
  return vary.kind === "headers" ? [...vary.names] : [];
}

/**
 * Returns the paths whose invalidation purges an entry: the path sent to the
 * origin and the viewer's. The default root object and `/` share one cache
 * key, so an entry filled by either request is purged by either path.
 */
export function invalidationPathsOf(target: CacheableRequest): string[] {
  const paths = new Set([canonicalizePath(target.originPath), canonicalizePath(target.viewerPath)]);
  const root = target.distribution.defaultRootObject;
  if (root !== "" && target.originPath === `/${root}`) paths.add("/");
  return [...paths];
}

/** A stream returned by `readUpTo` that calls its listener once the bytes read ahead have left it. */
interface ReplayStream extends Readable {
  onReplayed?: () => void;
}

/**
 * Calls `release` once, when `rest` has handed out the bytes `readUpTo`
 * buffered, or when it closes first (the viewer left, or the origin failed).
 */
function releaseAfterReplay(rest: Readable, release: () => void): void {
  let released = false;
  const once = (): void => {
    if (released) return;
    released = true;
    release();
  };
  (rest as ReplayStream).onReplayed = once;
  rest.once("close", once);
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
    try {
      // Each chunk leaves the array as it is handed out, so the stream holds no
      // more of the read-ahead than the viewer has yet to take.
      while (chunks.length > 0) yield chunks.shift()!;
      (rest as ReplayStream).onReplayed?.();
      for (;;) {
        const next = await iterator.next();
        if (next.done === true) return;
        yield next.value;
      }
    } finally {
      // Reached early when the returned stream is destroyed, as when the viewer leaves.
      // Returning the body's iterator destroys the body, which frees its origin connection.
      await iterator.return?.();
    }
  }
  const rest: ReplayStream = Readable.from(replayThenContinue(), { objectMode: false });
  return { body: Buffer.alloc(0), rest };
}
