import type { Worker } from "node:cluster";
import type { DiskMetadata } from "../cache/disk.js";
import type { Logger } from "../common/logger.js";

/**
 * Cache sharing between the edge workers of one machine. Each worker keeps
 * its own memory tier, and the primary coordinates their misses:
 *
 * - Collapsing: the first worker to miss a key becomes the one writer for
 *   the whole edge. Workers that miss the key meanwhile wait, and get the
 *   writer's entry as soon as it is stored, so 200 concurrent misses spread
 *   over every worker make one origin request.
 * - Peer fill: the primary remembers which worker last stored each key. A
 *   worker that misses a key another worker holds gets that worker's copy
 *   instead of going to the origin.
 *
 * Entries travel as the disk tier's metadata plus the body. A receiver
 * applies its own purge checks before it stores one, so an entry can never
 * outlive an invalidation that the receiver has already applied.
 */

/** An entry as it crosses the IPC pipe. `storedAtMs` is when its origin response arrived. */
export interface SharedEntry {
  metadata: DiskMetadata;
  body: Uint8Array;
}

/** The result of asking the primary about a miss. */
export type PeerGrant =
  /**
   * No worker has a fresh copy of the key or is fetching it: this one fetches and must call
   * `release`. `stale` is another worker's stale copy, to revalidate or to serve if the origin fails.
   */
  | { kind: "writer"; stale?: SharedEntry }
  /**
   * Another worker's entry, from a fetch this request waited on or from its memory tier.
   * `fetched` is the way that fetch ended, when there was one.
   */
  | { kind: "filled"; entry: SharedEntry; collapsed: boolean; fetched?: FetchEnd }
  /**
   * The coordination gave no entry (writer failed, not cacheable, timed out): fetch without
   * sharing. With `originFailed`, the writer's origin failed, so a stale copy may be served.
   */
  | { kind: "alone"; originFailed?: boolean };

/**
 * The end of a writer's fetch. `stored`: a new response. `revalidated`: a
 * stale copy the origin confirmed with 304. `served-stale`: a stale copy kept
 * in use because the origin failed. `stored-failure`: the edge's 502 or 504,
 * stored for an origin that gave no response. `failed`: an origin failure
 * that left no entry.
 */
export type FetchEnd = "stored" | "revalidated" | "served-stale" | "stored-failure" | "failed";

/** Messages between a worker and the primary about shared misses. */
export type PeerMessage =
  | { kind: "peer.acquire"; sequence: number; key: string }
  | { kind: "peer.grant"; sequence: number; key: string; grant: PeerGrant }
  /** The primary's reply when the worker must wait for another worker's fetch or copy. */
  | { kind: "peer.queued"; sequence: number }
  /** `fetched` is absent when the writer left no entry. */
  | { kind: "peer.release"; key: string; fetched?: FetchEnd }
  | { kind: "peer.peek"; sequence: number; key: string }
  | { kind: "peer.peeked"; sequence: number; entry: SharedEntry | undefined };

/** Largest body that is handed between workers; a bigger entry is fetched by each worker that needs it. */
export const MAX_SHARED_BODY_BYTES = 8 * 1024 * 1024;
/** Keys whose holder the primary remembers; the oldest are forgotten first. */
const MAX_DIRECTORY_KEYS = 200_000;
/** How long the primary waits for a holder's reply to a peek before it grants a fetch. */
const PEEK_TIMEOUT_MS = 1_000;
/**
 * How long a worker waits for the primary's first reply about a miss before it fetches alone,
 * so that a primary that is stopped or stalled delays a miss by no more than this.
 */
const PRIMARY_REPLY_TIMEOUT_MS = 1_000;

function isPeerMessage(value: unknown): value is PeerMessage {
  if (typeof value !== "object" || value === null) return false;
  const kind = (value as { kind?: unknown }).kind;
  return typeof kind === "string" && kind.startsWith("peer.");
}

/** The worker's side: asks the primary about misses and hands out its entries when asked. */
export class PeerClient {
  private nextSequence = 1;
  private readonly pending = new Map<number, { done: (grant: PeerGrant) => void; queued: () => void }>();
  private readonly onMessage = (value: unknown): void => {
    if (!isPeerMessage(value)) return;
    if (value.kind === "peer.grant") {
      const waiter = this.pending.get(value.sequence);
      if (waiter !== undefined) waiter.done(value.grant);
      // The miss timed out and went ahead alone, so the key is handed back at once.
      else if (value.grant.kind === "writer") this.release(value.key);
      return;
    }
    if (value.kind === "peer.queued") {
      this.pending.get(value.sequence)?.queued();
      return;
    }
    if (value.kind === "peer.peek") {
      let entry: SharedEntry | undefined;
      try {
        entry = this.provide(value.key);
      } catch (error) {
        this.log.warn({ err: error }, "failed to read an entry for another worker");
      }
      send({ kind: "peer.peeked", sequence: value.sequence, entry });
    }
  };

  /**
   * `provide` returns a fresh entry of this worker for a key, or undefined.
   * `waitTimeoutMs` bounds how long `acquire` waits for another worker's fetch.
   */
  constructor(
    private readonly provide: (key: string) => SharedEntry | undefined,
    private readonly waitTimeoutMs: number,
    private readonly log: Logger,
  ) {
    process.on("message", this.onMessage);
  }

  /**
   * Requests the primary's decision on a miss of `key`. Resolves "alone" when
   * the primary does not reply within PRIMARY_REPLY_TIMEOUT_MS, or, once it
   * has queued the miss behind another worker, when no entry comes within
   * `waitTimeoutMs`.
   */
  acquire(key: string): Promise<PeerGrant> {
    if (process.send === undefined || !process.connected) return Promise.resolve({ kind: "alone" });
    const sequence = this.nextSequence++;
    return new Promise((resolve) => {
      const expire = (ms: number): NodeJS.Timeout => {
        const timer = setTimeout(() => done({ kind: "alone" }), ms);
        timer.unref();
        return timer;
      };
      let timer = expire(PRIMARY_REPLY_TIMEOUT_MS);
      const done = (grant: PeerGrant): void => {
        clearTimeout(timer);
        this.pending.delete(sequence);
        resolve(grant);
      };
      const queued = (): void => {
        clearTimeout(timer);
        timer = expire(this.waitTimeoutMs);
      };
      this.pending.set(sequence, { done, queued });
      send({ kind: "peer.acquire", sequence, key });
    });
  }

  /**
   * Ends this worker's fetch of `key`, with how it ended: undefined when it
   * left no entry and the origin did not fail. The primary requests the entry
   * only when other workers wait for it, so a miss that no other worker waits
   * for sends no body over the pipe.
   */
  release(key: string, fetched?: FetchEnd): void {
    send(fetched === undefined ? { kind: "peer.release", key } : { kind: "peer.release", key, fetched });
  }

  close(): void {
    process.off("message", this.onMessage);
    for (const { done } of [...this.pending.values()]) done({ kind: "alone" });
  }
}

function send(message: PeerMessage): void {
  if (process.send !== undefined && process.connected) process.send(message);
}

interface Waiter {
  worker: Worker;
  sequence: number;
}

/** A key being fetched, or being looked up in a holder, for the whole edge. */
interface Flight {
  /** The worker fetching from the origin; undefined while a holder is asked first. */
  writer: Worker | undefined;
  waiters: Waiter[];
  timer: NodeJS.Timeout;
}

/** The primary's side: one writer per key across workers, and a directory of who holds what. */
export class PeerCoordinator {
  private readonly flights = new Map<string, Flight>();
  private readonly holders = new Map<string, Worker>();
  private readonly peeks = new Map<number, (entry: SharedEntry | undefined) => void>();
  private nextPeek = 1;

  /** `writerTimeoutMs` bounds how long one worker may hold a key for the others. */
  constructor(
    private readonly writerTimeoutMs: number,
    private readonly log: Logger,
  ) {}

  /** Starts coordinating a worker's misses; call once per forked worker. */
  attach(worker: Worker): void {
    worker.on("message", (value: unknown) => {
      if (!isPeerMessage(value)) return;
      switch (value.kind) {
        case "peer.acquire":
          this.acquire(worker, value.sequence, value.key);
          return;
        case "peer.release":
          this.release(worker, value.key, value.fetched);
          return;
        case "peer.peeked":
          this.peeks.get(value.sequence)?.(value.entry);
          return;
        default:
          return;
      }
    });
    worker.once("exit", () => this.detach(worker));
  }

  /** The keys being fetched for the whole edge. */
  get flightCount(): number {
    return this.flights.size;
  }

  private acquire(worker: Worker, sequence: number, key: string): void {
    const flight = this.flights.get(key);
    if (flight !== undefined) {
      flight.waiters.push({ worker, sequence });
      sendQueued(worker, sequence);
      return;
    }
    const holder = this.holders.get(key);
    const started = this.startFlight(key, holder === undefined || holder === worker ? worker : undefined);
    if (started.writer !== undefined) {
      grant(worker, sequence, key, { kind: "writer" });
      return;
    }
    // Another worker stored this key last: its copy saves an origin request if it is still fresh.
    started.waiters.push({ worker, sequence });
    sendQueued(worker, sequence);
    void this.peek(holder!, key).then((entry) => {
      if (this.flights.get(key) !== started) return;
      if (entry !== undefined && Date.now() < entry.metadata.staleAtMs) {
        this.finish(key, started, { kind: "filled", entry, collapsed: false });
        return;
      }
      this.holders.delete(key);
      // The first waiter becomes the writer, with the holder's stale copy if there is one. The
      // rest, and the holder's own misses, keep waiting for it.
      const first = started.waiters.shift()!;
      started.writer = first.worker;
      grant(first.worker, first.sequence, key, entry === undefined ? { kind: "writer" } : { kind: "writer", stale: entry });
    });
  }

  private startFlight(key: string, writer: Worker | undefined): Flight {
    const flight: Flight = {
      writer,
      waiters: [],
      timer: setTimeout(() => {
        if (this.flights.get(key) !== flight) return;
        this.log.warn({ key, waiters: flight.waiters.length }, "shared fetch timed out; workers fetch on their own");
        this.finish(key, flight, { kind: "alone" });
      }, this.writerTimeoutMs),
    };
    flight.timer.unref();
    this.flights.set(key, flight);
    return flight;
  }

  private release(worker: Worker, key: string, fetched: FetchEnd | undefined): void {
    const flight = this.flights.get(key);
    if (flight === undefined || flight.writer !== worker) return;
    // A stale copy served on a failure may be on the writer's disk only, which no peek returns.
    const originFailed = fetched === "failed" || fetched === "served-stale";
    const alone: PeerGrant = originFailed ? { kind: "alone", originFailed } : { kind: "alone" };
    if (fetched === undefined || fetched === "failed") {
      this.finish(key, flight, alone);
      return;
    }
    this.remember(key, worker);
    if (flight.waiters.length === 0) {
      this.finish(key, flight, alone);
      return;
    }
    // Workers that missed meanwhile, and any that miss before the reply, get the writer's copy.
    void this.peek(worker, key).then((entry) => {
      if (this.flights.get(key) !== flight) return;
      this.finish(key, flight, entry === undefined ? alone : { kind: "filled", entry, collapsed: true, fetched });
    });
  }

  private finish(key: string, flight: Flight, result: PeerGrant): void {
    clearTimeout(flight.timer);
    this.flights.delete(key);
    for (const waiter of flight.waiters) grant(waiter.worker, waiter.sequence, key, result);
  }

  private remember(key: string, worker: Worker): void {
    this.holders.delete(key);
    this.holders.set(key, worker);
    if (this.holders.size > MAX_DIRECTORY_KEYS) {
      const oldest = this.holders.keys().next().value;
      if (oldest !== undefined) this.holders.delete(oldest);
    }
  }

  private peek(holder: Worker, key: string): Promise<SharedEntry | undefined> {
    if (!holder.isConnected()) return Promise.resolve(undefined);
    const sequence = this.nextPeek++;
    return new Promise((resolve) => {
      const done = (entry: SharedEntry | undefined): void => {
        clearTimeout(timer);
        this.peeks.delete(sequence);
        resolve(entry);
      };
      const timer = setTimeout(() => done(undefined), PEEK_TIMEOUT_MS);
      timer.unref();
      this.peeks.set(sequence, done);
      holder.send({ kind: "peer.peek", sequence, key } satisfies PeerMessage);
    });
  }

  /** Lets the waiters of a worker that exited fetch alone, and forgets what it held. */
  private detach(worker: Worker): void {
    for (const [key, flight] of [...this.flights]) {
      flight.waiters = flight.waiters.filter((waiter) => waiter.worker !== worker);
      if (flight.writer === worker) this.finish(key, flight, { kind: "alone" });
    }
    for (const [key, holder] of [...this.holders]) if (holder === worker) this.holders.delete(key);
  }
}

function grant(worker: Worker, sequence: number, key: string, result: PeerGrant): void {
  if (worker.isConnected()) worker.send({ kind: "peer.grant", sequence, key, grant: result } satisfies PeerMessage);
}

function sendQueued(worker: Worker, sequence: number): void {
  if (worker.isConnected()) worker.send({ kind: "peer.queued", sequence } satisfies PeerMessage);
}
