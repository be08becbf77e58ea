import { Readable } from "node:stream";
import type { LockOutcome } from "../cache/lock.js";
import { parseVary } from "../cache/vary.js";
import { currentAgeSeconds, type CachedResponse } from "../cache/entry.js";
import { decideFreshness, parseAgeSeconds } from "../cache/freshness.js";
import type { OriginResponse } from "../origin/index.js";
import type { CacheableRequest } from "./cache-flow.js";
import { invalidationPathsOf } from "./cache-flow.js";
import { purgeEpoch, type EdgeContext } from "./context.js";
import { lookupDisk, persistEntry } from "./disk-flow.js";
import { createEntry, freshnessHeadersOf } from "./entry-builder.js";
import type { ExchangeState, ViewerRequest, ViewerResponse } from "./exchange.js";
import { originRequestHeaders } from "./forward.js";
import { cacheStatus, headerIn, originHeader, passOriginHeaders } from "./headers.js";
import { parseRangeHeader, type RangeSpec } from "./range.js";
import { streamUncached, ttlLeft } from "./respond.js";
import { forwardsCookies } from "./routing.js";

/**
 * Range requests for objects that are not cached are fetched from the origin
 * in aligned slices of this size, each cached as an entry of its own. A
 * viewer seeking in a large object thus fetches only the slices it reads.
 * The size is capped at the largest memory entry.
 */
export const RANGE_SLICE_BYTES = 1024 * 1024;

/** Returns the slice size of the edge: RANGE_SLICE_BYTES, or less when memory entries are smaller. */
export function sliceBytesOf(context: EdgeContext): number {
  return Math.min(RANGE_SLICE_BYTES, context.maxObjectBytes);
}

/**
 * The part of an object a viewer asked for, before the object's length is
 * known: a single byte range, or only the headers of the whole object (a HEAD).
 */
export type RequestedRange = RangeSpec | { kind: "head" };

/**
 * Returns the one byte range of a `Range` header that slicing can serve, or
 * undefined: for other units, several ranges, invalid syntax (served whole,
 * as RFC 9110 section 14.2 allows) and empty suffixes.
 */
export function sliceableRange(header: string | undefined): RequestedRange | undefined {
  if (header === undefined) return undefined;
  const specs = parseRangeHeader(header);
  if (specs === undefined || specs.length !== 1) return undefined;
  const spec = specs[0]!;
  if (spec.kind === "suffix") return spec.length === 0 || !Number.isSafeInteger(spec.length) ? undefined : spec;
  if (!Number.isSafeInteger(spec.start) || (spec.end !== undefined && !Number.isSafeInteger(spec.end))) return undefined;
  return spec;
}

/** How long range requests for an object whose slices did not add up fetch the whole object instead. */
export const UNSLICEABLE_MS = 10 * 60_000;
/** Maximum number of objects remembered as unsliceable. The oldest is forgotten first. */
const MAX_UNSLICEABLE = 4096;

/** Returns whether range requests for the object under `key` are served by slices. */
export function sliceable(context: EdgeContext, key: string): boolean {
  const untilMs = context.unsliceable.get(key);
  if (untilMs === undefined) return true;
  if (Date.now() < untilMs) return false;
  context.unsliceable.delete(key);
  return true;
}

/**
 * Stops slicing an object for UNSLICEABLE_MS. The response that found the
 * fault is cut off because its headers were sent already. Without this,
 * every later range request for the object would be cut off the same way.
 */
function stopSlicing(plan: SlicePlan): void {
  const unsliceable = plan.context.unsliceable;
  const key = plan.target.keyResult.key;
  unsliceable.delete(key);
  if (unsliceable.size >= MAX_UNSLICEABLE) unsliceable.delete(unsliceable.keys().next().value!);
  unsliceable.set(key, Date.now() + UNSLICEABLE_MS);
}

/** Returns the cache key of slice `index` of the object under `key`. */
export function sliceKey(key: string, index: number): string {
  return `${key}\ns:${index}`;
}

/** The work the slice path hands back to the whole-object path. */
export type SliceHandoff =
  /**
   * A response to the first slice request that is not a slice, to process as a whole-object
   * response. `originStatus` is the status the origin sent when the response has another, as
   * for a 206 that contains the whole object.
   */
  | { kind: "response"; fetch: () => Promise<OriginResponse>; epochAtStart: number; originStatus?: number }
  /** A request that slicing does not serve, so the whole object is fetched. */
  | { kind: "whole" };

/** `Content-Range: bytes first-last/complete` of a 206 (RFC 9110 section 14.4). */
interface SliceBounds {
  first: number;
  last: number;
  complete: number;
}

function parseContentRange(value: string | undefined): SliceBounds | undefined {
  if (value === undefined) return undefined;
  const match = /^\s*bytes\s+(\d+)-(\d+)\/(\d+)\s*$/i.exec(value);
  if (match === null) return undefined;
  const bounds = { first: Number(match[1]), last: Number(match[2]), complete: Number(match[3]) };
  if (!Number.isSafeInteger(bounds.complete) || bounds.last < bounds.first || bounds.last >= bounds.complete) return undefined;
  return bounds;
}

/** The length and validator that every slice of one response must share with the first. */
interface ObjectIdentity {
  complete: number;
  etag: string | undefined;
  lastModified: string | undefined;
}

function identityMatches(identity: ObjectIdentity, complete: number, headers: readonly string[]): boolean {
  if (complete !== identity.complete) return false;
  const etag = headerIn(headers, "etag");
  if (identity.etag !== undefined || etag !== undefined) return etag === identity.etag;
  return headerIn(headers, "last-modified") === identity.lastModified;
}

interface CachedSlice {
  kind: "cached";
  entry: CachedResponse;
  bounds: SliceBounds;
}

interface FetchedSlice {
  kind: "fetched";
  response: OriginResponse;
  /** The origin headers that pass to viewers. */
  headers: string[];
  bounds: SliceBounds;
  receivedAtMs: number;
  /** Tells the requests waiting for this slice how its fetch ended. */
  settle: (outcome: LockOutcome) => void;
}

/** One slice ready to serve: stored, or a 206 from the origin whose body is still to read. */
type Slice = CachedSlice | FetchedSlice;

/** The slice plan of one viewer request. */
interface SlicePlan {
  context: EdgeContext;
  state: ExchangeState;
  request: ViewerRequest;
  target: CacheableRequest;
  sliceBytes: number;
  epochAtStart: number;
}

/**
 * Serves a single-range GET or a HEAD for an object the cache does not hold
 * by fetching only the slices it needs. CloudFront does the same: it requests
 * a larger, aligned range from the origin. Returns undefined once the viewer
 * is served, or the handoff to the whole-object path: when the origin ignores
 * Range, or when the object fits in one slice and is stored whole.
 */
export async function serveSlices(
  context: EdgeContext,
  state: ExchangeState,
  request: ViewerRequest,
  response: ViewerResponse,
  target: CacheableRequest,
  requested: RequestedRange,
): Promise<SliceHandoff | undefined> {
  const plan: SlicePlan = {
    context,
    state,
    request,
    target,
    sliceBytes: sliceBytesOf(context),
    epochAtStart: purgeEpoch(context, target.distribution.id),
  };
  // A suffix range needs the object's length first, which any slice gives.
  const firstIndex = requested.kind === "from" ? Math.floor(requested.start / plan.sliceBytes) : 0;
  let first: Slice | undefined = await cachedSlice(plan, firstIndex, undefined);
  if (first === undefined) {
    const fetched = await fetchSlice(plan, firstIndex, undefined);
    if (fetched.kind === "handoff") return fetched.handoff;
    first = fetched.slice;
  }
  const complete = first.bounds.complete;
  if (first.kind === "fetched" && first.bounds.first === 0 && first.bounds.last === complete - 1) {
    // The whole object fits in one slice: it is stored and served as the object itself.
    first.settle("not-stored");
    const whole = asWholeResponse(first.response, complete);
    return { kind: "response", fetch: async () => whole, epochAtStart: plan.epochAtStart, originStatus: first.response.status };
  }

  const firstHeaders = first.kind === "cached" ? first.entry.originHeaders : first.headers;
  // A response built from slices, some fetched now, takes its Age from its first slice.
  const firstAgeSeconds =
    first.kind === "cached" ? currentAgeSeconds(first.entry, Date.now()) : parseAgeSeconds(originHeader(first.response.headers, "age"));
  let start = 0;
  if (requested.kind === "suffix") start = Math.max(0, complete - requested.length);
  else if (requested.kind === "from") start = requested.start;
  if (requested.kind === "head" || start >= complete) {
    // With the length known, streamUncached builds the HEAD response, or the
    // 416 for a range past the end, from the first slice's headers.
    if (first.kind === "fetched") void drainSlice(plan, firstIndex, first);
    const headers = withoutHeaders(firstHeaders, ["content-range", "content-length"]);
    const status =
      first.kind === "cached" ? cacheStatus.hit(ttlLeft(first.entry)) : cacheStatus.miss("uri-miss", 206, false, "range-slices");
    const hit = first.kind === "cached" ? { ageSeconds: currentAgeSeconds(first.entry, Date.now()) } : undefined;
    const empty = Readable.from([]);
    await streamUncached(
      context,
      state,
      request,
      response,
      { status: 200, headers, body: empty, contentLength: complete, originAgeSeconds: firstAgeSeconds },
      status,
      target.behavior.headersPolicy,
      hit,
    );
    return undefined;
  }
  const end = requested.kind === "suffix" || requested.end === undefined ? complete - 1 : Math.min(requested.end, complete - 1);
  const identity: ObjectIdentity = {
    complete,
    etag: headerIn(firstHeaders, "etag"),
    lastModified: headerIn(firstHeaders, "last-modified"),
  };
  const startIndex = Math.floor(start / plan.sliceBytes);
  const lastIndex = Math.floor(end / plan.sliceBytes);
  let ready: Slice | undefined = first;
  if (startIndex !== firstIndex) {
    // A suffix range past the first slice: that slice is still worth keeping.
    if (first.kind === "fetched") void drainSlice(plan, firstIndex, first);
    ready = await cachedSlice(plan, startIndex, identity);
  }

  const hit = ready?.kind === "cached" && allSlicesCached(plan, startIndex + 1, lastIndex, identity) ? ready.entry : undefined;
  const viewerHeaders = withoutHeaders(firstHeaders, ["content-range", "content-length"]);
  viewerHeaders.push("content-range", `bytes ${start}-${end}/${complete}`);
  const body = Readable.from(sliceStream(plan, ready, startIndex, lastIndex, start, end, identity), { objectMode: false });
  // A viewer that leaves before the body is read must not leave the first origin response open.
  body.once("close", () => {
    if (ready?.kind === "fetched" && !ready.response.body.readableEnded) abandon(ready);
  });
  if (first.kind === "fetched") state.originLatencyMs = first.response.firstByteLatencyMs;
  await streamUncached(
    context,
    state,
    request,
    response,
    { status: 206, headers: viewerHeaders, body, contentLength: end - start + 1, originAgeSeconds: firstAgeSeconds },
    hit !== undefined ? cacheStatus.hit(ttlLeft(hit)) : cacheStatus.miss("uri-miss", 206, false, "range-slices"),
    target.behavior.headersPolicy,
    hit !== undefined ? { ageSeconds: currentAgeSeconds(hit, Date.now()) } : undefined,
  );
  return undefined;
}

/** Yields the bytes `start` to `end` from slices `startIndex` to `lastIndex`, fetching those not cached. */
async function* sliceStream(
  plan: SlicePlan,
  ready: Slice | undefined,
  startIndex: number,
  lastIndex: number,
  start: number,
  end: number,
  identity: ObjectIdentity,
): AsyncGenerator<Buffer> {
  for (let index = startIndex; index <= lastIndex; index++) {
    let slice = index === startIndex ? ready : await cachedSlice(plan, index, identity);
    if (slice === undefined) {
      const fetched = await fetchSlice(plan, index, identity);
      if (fetched.kind === "handoff") {
        forgetSlices(plan, startIndex, lastIndex);
        stopSlicing(plan);
        plan.context.log.warn(
          { distributionId: plan.target.distribution.id, requestId: plan.state.requestId, slice: index },
          "origin slice missing or of another object version; cut the response off and fetch the object whole for a while",
        );
        throw new Error(`origin slice ${index} is missing or does not match the first slice`);
      }
      slice = fetched.slice;
    }
    const sliceStart = index * plan.sliceBytes;
    const from = Math.max(start, sliceStart) - sliceStart;
    const to = Math.min(end, slice.bounds.last) - sliceStart + 1;
    if (slice.kind === "cached") {
      // Counted against the memory budget while the viewer reads it, even if evicted meanwhile.
      plan.context.memory.hold(slice.entry);
      try {
        yield slice.entry.body.subarray(from, to);
      } finally {
        plan.context.memory.release(slice.entry);
      }
    } else {
      yield* readSlice(plan, index, slice, from, to);
    }
  }
}

/**
 * Reads a fetched slice's body, yielding the bytes from `from` to `to`
 * (offsets within the slice), and stores the whole slice once it is read.
 */
async function* readSlice(plan: SlicePlan, index: number, slice: FetchedSlice, from: number, to: number): AsyncGenerator<Buffer> {
  const context = plan.context;
  const expected = slice.bounds.last - slice.bounds.first + 1;
  // Without room in the in-flight budget the slice is passed on without being kept.
  const reserved = context.inFlight.reserve(expected) ? expected : 0;
  const chunks: Buffer[] = [];
  let offset = 0;
  let outcome: LockOutcome = "failed";
  try {
    for await (const chunk of slice.response.body as AsyncIterable<Buffer>) {
      const chunkStart = offset;
      offset += chunk.length;
      if (offset > expected) {
        stopSlicing(plan);
        throw new Error("an origin slice was longer than its Content-Range");
      }
      if (reserved > 0) chunks.push(chunk);
      const yieldFrom = Math.max(from, chunkStart);
      const yieldTo = Math.min(to, offset);
      if (yieldTo > yieldFrom) yield chunk.subarray(yieldFrom - chunkStart, yieldTo - chunkStart);
    }
    if (offset !== expected) {
      stopSlicing(plan);
      throw new Error("an origin slice was shorter than its Content-Range");
    }
    outcome = reserved > 0 && storeSlice(plan, index, slice, Buffer.concat(chunks, expected)) ? "stored" : "not-stored";
  } finally {
    if (outcome === "failed") slice.response.body.destroy();
    if (reserved > 0) context.inFlight.release(reserved);
    slice.settle(outcome);
  }
}

/** Reads and stores a fetched slice that no viewer needs. */
async function drainSlice(plan: SlicePlan, index: number, slice: FetchedSlice): Promise<void> {
  try {
    for await (const _ of readSlice(plan, index, slice, 0, 0)) {
      // Nothing to pass on.
    }
  } catch (error) {
    // Keeping the slice was only an optimisation, so the failure is logged and dropped.
    plan.context.log.debug({ err: error, distributionId: plan.target.distribution.id, slice: index }, "failed to keep an unneeded slice");
  }
}

/** Returns the stored slice `index` when it is fresh, well formed and of the same object as `identity`. */
async function cachedSlice(plan: SlicePlan, index: number, identity: ObjectIdentity | undefined): Promise<CachedSlice | undefined> {
  const context = plan.context;
  const key = sliceKey(plan.target.keyResult.key, index);
  let entry = context.memory.get(key);
  if (entry === undefined && context.disk !== undefined) {
    const found = await lookupDisk(context, key);
    if (found?.kind === "entry") entry = found.entry;
  }
  return entry === undefined ? undefined : usableSlice(plan, index, entry, identity);
}

function usableSlice(plan: SlicePlan, index: number, entry: CachedResponse, identity: ObjectIdentity | undefined): CachedSlice | undefined {
  if (Date.now() >= entry.staleAtMs) return undefined;
  const bounds = parseContentRange(headerIn(entry.originHeaders, "content-range"));
  const first = index * plan.sliceBytes;
  if (bounds === undefined || bounds.first !== first || bounds.last !== Math.min(first + plan.sliceBytes, bounds.complete) - 1) {
    return undefined;
  }
  if (entry.body.length !== bounds.last - bounds.first + 1) return undefined;
  if (identity !== undefined && !identityMatches(identity, bounds.complete, entry.originHeaders)) return undefined;
  return { kind: "cached", entry, bounds };
}

/** Returns whether every slice from `from` to `to` is in memory, fresh and of the same object. */
function allSlicesCached(plan: SlicePlan, from: number, to: number, identity: ObjectIdentity): boolean {
  for (let index = from; index <= to; index++) {
    const entry = plan.context.memory.peek(sliceKey(plan.target.keyResult.key, index));
    if (entry === undefined || usableSlice(plan, index, entry, identity) === undefined) return false;
  }
  return true;
}

type FetchResult = { kind: "slice"; slice: Slice } | { kind: "handoff"; handoff: SliceHandoff };

/**
 * Fetches slice `index` from the origin, or waits for the request already
 * fetching it. For the first slice of a response (no `identity`), a response
 * that is not that slice goes back to the whole-object path. For later
 * slices, a slice of another version of the object is rejected.
 */
async function fetchSlice(plan: SlicePlan, index: number, identity: ObjectIdentity | undefined): Promise<FetchResult> {
  const { context, target } = plan;
  const ticket = context.lock.acquire(sliceKey(target.keyResult.key, index));
  let settle: (outcome: LockOutcome) => void = () => {};
  if (ticket.role === "waiter") {
    if ((await ticket.wait()) === "stored") {
      const stored = await cachedSlice(plan, index, identity);
      if (stored !== undefined) return { kind: "slice", slice: stored };
    }
  } else {
    settle = (outcome) => ticket.release(outcome);
  }

  const first = index * plan.sliceBytes;
  const last = first + plan.sliceBytes - 1;
  const headers = originRequestHeaders(context, plan.state, plan.request, target.keyResult);
  headers.range = `bytes=${first}-${last}`;
  let response: OriginResponse;
  try {
    response = await target.origin.fetch({
      method: "GET",
      path: target.originPath,
      query: target.keyResult.forwardedQuery,
      headers,
      body: undefined,
      viewerProtocol: plan.request.protocol,
    });
  } catch (error) {
    settle("failed");
    if (identity !== undefined) throw error;
    return { kind: "handoff", handoff: { kind: "response", fetch: () => Promise.reject(error), epochAtStart: plan.epochAtStart } };
  }
  const receivedAtMs = Date.now();
  const passed = passOriginHeaders(response.headers, forwardsCookies(target.behavior));
  const bounds = response.status === 206 ? parseContentRange(originHeader(response.headers, "content-range")) : undefined;
  const usable =
    bounds !== undefined &&
    bounds.first === first &&
    bounds.last === Math.min(last, bounds.complete - 1) &&
    (identity === undefined || identityMatches(identity, bounds.complete, passed));
  if (!usable) {
    settle("not-stored");
    if (identity === undefined && response.status === 416 && first === 0) {
      // Only an empty object has no first byte. The whole-object path fetches it without Range.
      response.body.destroy();
      return { kind: "handoff", handoff: { kind: "whole" } };
    }
    if (identity === undefined && response.status !== 206) {
      return { kind: "handoff", handoff: { kind: "response", fetch: async () => response, epochAtStart: plan.epochAtStart } };
    }
    response.body.destroy();
    return { kind: "handoff", handoff: { kind: "whole" } };
  }
  return { kind: "slice", slice: { kind: "fetched", response, headers: passed, bounds, receivedAtMs, settle } };
}

/** Stores a slice read whole as its own entry, and returns whether it was stored. */
function storeSlice(plan: SlicePlan, index: number, slice: FetchedSlice, body: Buffer): boolean {
  const { context, target } = plan;
  // The behavior's key does not select among Vary variants, so varying slices are not kept.
  if (parseVary(headerIn(slice.headers, "vary")).kind !== "none") return false;
  const decision = decideFreshness(
    200,
    freshnessHeadersOf(slice.headers, originHeader(slice.response.headers, "age")),
    target.behavior.cache.ttl,
    slice.receivedAtMs,
    target.distribution.errorCachingMinTtlSeconds,
  );
  // A purge that ran during the fetch may have targeted this object.
  if (!decision.store || purgeEpoch(context, target.distribution.id) !== plan.epochAtStart) return false;
  // Slices are never revalidated, so one that arrived stale would never be used.
  const initialAgeSeconds = parseAgeSeconds(originHeader(slice.response.headers, "age"));
  if (decision.ttlSeconds <= initialAgeSeconds) return false;
  const entry = createEntry(
    context,
    {
      key: sliceKey(target.keyResult.key, index),
      distributionId: target.distribution.id,
      invalidationPaths: invalidationPathsOf(target),
      status: 206,
      originHeaders: slice.headers,
      body,
      receivedAtMs: slice.receivedAtMs,
      initialAgeSeconds,
      decision,
    },
    target.behavior.headersPolicy,
  );
  if (!context.memory.put(entry)) return false;
  persistEntry(context, entry, entry.key, []);
  return true;
}

/** Drops the stored slices of a response whose object changed under it, so the next request starts afresh. */
function forgetSlices(plan: SlicePlan, from: number, to: number): void {
  for (let index = from; index <= to; index++) {
    const key = sliceKey(plan.target.keyResult.key, index);
    plan.context.memory.delete(key);
    void plan.context.disk?.delete(key);
  }
}

function abandon(slice: FetchedSlice): void {
  slice.response.body.destroy();
  slice.settle("failed");
}

/** Turns a 206 that covers the whole object into the 200 that the whole-object path stores. */
function asWholeResponse(response: OriginResponse, complete: number): OriginResponse {
  const headers: OriginResponse["headers"] = {};
  for (const [name, value] of Object.entries(response.headers)) {
    if (name !== "content-range") headers[name] = value;
  }
  headers["content-length"] = String(complete);
  return { ...response, status: 200, headers };
}

function withoutHeaders(headers: readonly string[], names: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (!names.includes(headers[i]!)) out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}
