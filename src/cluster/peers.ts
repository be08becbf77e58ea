import type { Worker } from "node:cluster";
import { WriteProgress, type DiskMetadata } from "../cache/disk.js";
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
 * outlive an invalidation that the receiver has already applied. Large
 * entries stay in their worker's disk tier and travel as the path of their
 * file. The other workers read a whole file with each block checked, and
 * follow a file still being written as the writer reports its progress
 * through the primary.
 */

/** An entry as it crosses the IPC pipe. `storedAtMs` is when its origin response arrived. */
export interface SharedEntry {
  metadata: DiskMetadata;
  body: Uint8Array;
}

/** A large entry in another worker's disk tier, to read from its file. */
export interface SharedFile {
  metadata: DiskMetadata;
  path: string;
  bodyOffset: number;
  /** Tells the file apart from a later one at the same path. */
  inode: number;
}

/** The response of a large object being written to the disk tier, as the readers of the write serve it. */
export interface FillResponse {
  status: number;
  /** The headers the writer's viewer got from the origin, as a flat `[name, value, ...]` list. */
  headers: string[];
  /** The time the edge received the origin's response, in epoch milliseconds. */
  receivedAtMs: number;
  initialAgeSeconds: number;
  ttlSeconds: number;
  distributionId: string;
  invalidationPaths: string[];
  /** When the fetch began; a purge since then makes the write unusable. */
  startedAtMs: number;
}

/**
 * A large object that another worker is fetching and writing to its disk
 * tier as it arrives, to read from the file as it grows.
 */
export interface SharedFill extends FillResponse {
  /** The primary's number for this write, which its progress reports carry. */
  id: number;
  /** The file being written, and the entry's file once the write is published. */
  path: string;
  bodyOffset: number;
  bodyBytes: number;
  writtenBodyBytes: number;
}

/** How far a shared write has come; `state` is "stored" or "failed" once it has ended. */
export interface FillProgress {
  writtenBodyBytes: number;
  path: string;
  state: WriteProgress["state"];
}

/** The result of asking the primary about a miss. */
export type PeerGrant =
  /**
   * No worker has a fresh copy of the key or is fetching it: this one fetches and must call
   * `release`. `stale` is another worker's stale copy, and `staleFile` another worker's stale
   * large copy, to revalidate or to serve if the origin fails.
   */
  | { kind: "writer"; stale?: SharedEntry; staleFile?: SharedFile }
  /**
   * Another worker's entry, from a fetch this request waited on or from its memory tier.
   * `fetched` is the way that fetch ended, when there was one.
   */
  | { kind: "filled"; entry: SharedEntry; collapsed: boolean; fetched?: FetchEnd }
  /** Another worker's large entry in its disk tier, fresh or held for a failing origin; `fetched` as for "filled". */
  | { kind: "file"; file: SharedFile; collapsed: boolean; fetched?: FetchEnd }
  /** Another worker's fetch of a large object, which it writes to its disk tier as it arrives. */
  | { kind: "fill"; fill: SharedFill }
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
  /**
   * `fetched` is absent when the writer left no entry. `borrowed`: the writer served another
   * worker's stale copy, which stays that worker's.
   */
  | { kind: "peer.release"; key: string; fetched?: FetchEnd; borrowed?: boolean }
  | { kind: "peer.peek"; sequence: number; key: string }
  | { kind: "peer.peeked"; sequence: number; entry: SharedEntry | undefined; file?: SharedFile }
  /**
   * The writer's fetch of `key` writes a large object to its disk tier as it arrives. `fill.id`
   * is the writer's own number for the write, which the primary replaces with one of its own.
   */
  | { kind: "peer.streaming"; key: string; fill: SharedFill }
  /** About write `id`: from the writer, in its own numbers; from the primary, in the primary's. */
  | { kind: "peer.progress"; key: string; id: number; progress: FillProgress }
  /** A worker found that a purge covers write `id` of `key`: later misses of the key must not read it. */
  | { kind: "peer.supersede"; key: string; id: number }
  /** Asks for another worker's fresh copy of `key` without fetching it for the edge when there is none. */
  | { kind: "peer.find"; sequence: number; key: string; stale: boolean }
  /**
   * A worker serves another worker's stale file of `key` while the origin fails, and keeps it in
   * use until the expiry in `file.metadata`, or revalidated the file and gives it the freshness
   * in `file.metadata`. The worker whose file it is takes that freshness too.
   */
  | { kind: "peer.hold"; key: string; file: SharedFile }
  | { kind: "peer.found"; sequence: number; found: Found };

/** Largest body that is handed between workers; a bigger entry is fetched by each worker that needs it. */
export const MAX_SHARED_BODY_BYTES = 8 * 1024 * 1024;
/** Progress reports a worker keeps for writes it was handed and does not follow yet. */
const MAX_UNCLAIMED_REPORTS = 256;
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
  private readonly finds = new Map<number, (found: Found) => void>();
  /** Other workers' writes that this worker reads, by the primary's number, with their stall timers. */
  private readonly followed = new Map<number, { progress: WriteProgress; timer: NodeJS.Timeout }>();
  /**
   * The last progress report of writes that this worker was handed but does not follow yet. A
   * report can arrive in the same read from the pipe as the grant that hands the write over,
   * before the request that got the grant has run again to follow it.
   */
  private readonly unclaimed = new Map<number, FillProgress>();
  /** This worker's number for its next write that other workers read. */
  private nextFill = 1;
  private readonly onMessage = (value: unknown): void => {
    if (!isPeerMessage(value)) return;
    if (value.kind === "peer.progress") {
      this.advanceFollowed(value.id, value.progress);
      return;
    }
    if (value.kind === "peer.found") {
      this.finds.get(value.sequence)?.(value.found);
      return;
    }
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
    if (value.kind === "peer.peek") void this.answerPeek(value.sequence, value.key);
    if (value.kind === "peer.hold") void this.holdFile(value.key, value.file);
  };

  /**
   * `provide` returns this worker's entry for a key from its memory tier, or
   * undefined; `provideFile` its large entry on disk. `holdFile` gives one of
   * this worker's files the freshness that another worker requests after it
   * revalidated the file, or while it serves the file because the origin fails.
   * `waitTimeoutMs` bounds how long `acquire` waits for another worker's
   * fetch, and how long a followed write may go without progress.
   */
  constructor(
    private readonly provide: (key: string) => SharedEntry | undefined,
    private readonly provideFile: (key: string) => Promise<SharedFile | undefined>,
    private readonly holdFile: (key: string, file: SharedFile) => Promise<void>,
    private readonly waitTimeoutMs: number,
    private readonly log: Logger,
  ) {
    process.on("message", this.onMessage);
  }

  private async answerPeek(sequence: number, key: string): Promise<void> {
    let entry: SharedEntry | undefined;
    let file: SharedFile | undefined;
    try {
      entry = this.provide(key);
      if (entry === undefined) file = await this.provideFile(key);
    } catch (error) {
      this.log.warn({ err: error }, "failed to read an entry for another worker");
    }
    send(file === undefined ? { kind: "peer.peeked", sequence, entry } : { kind: "peer.peeked", sequence, entry: undefined, file });
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
   * Returns another worker's fresh copy of `key`, from its memory tier or its
   * disk tier, or its write of the key in progress, which this worker then
   * reads as it grows, or else another worker's stale large copy. Returns none
   * of them when no worker has one or the primary does not reply in time.
   * With `stale`, only a large copy, which may be stale, is returned as `file`.
   * Unlike `acquire`, it never makes this worker the writer.
   */
  find(key: string, stale = false): Promise<Found> {
    if (process.send === undefined || !process.connected) return Promise.resolve({});
    const sequence = this.nextSequence++;
    return new Promise((resolve) => {
      const done = (found: Found): void => {
        clearTimeout(timer);
        this.finds.delete(sequence);
        resolve(found);
      };
      const timer = setTimeout(() => done({}), PRIMARY_REPLY_TIMEOUT_MS + PEEK_TIMEOUT_MS);
      timer.unref();
      this.finds.set(sequence, done);
      send({ kind: "peer.find", sequence, key, stale });
    });
  }

  /**
   * Ends this worker's fetch of `key`, with how it ended: undefined when it
   * left no entry and the origin did not fail. The primary requests the entry
   * only when other workers wait for it, so a miss that no other worker waits
   * for sends no body over the pipe. With `borrowed`, the fetch failed and
   * this worker served another worker's stale copy, which stays that worker's.
   */
  release(key: string, fetched?: FetchEnd, borrowed = false): void {
    if (fetched === undefined) send({ kind: "peer.release", key });
    else send(borrowed ? { kind: "peer.release", key, fetched, borrowed } : { kind: "peer.release", key, fetched });
  }

  /**
   * Announces that this worker's fetch of `key`, as the writer for the whole
   * edge, writes a large object to its disk tier as it arrives. Then reports
   * the write's progress until it ends, at most once per turn of the event
   * loop, so that other workers read the file as it grows.
   */
  shareFill(key: string, fill: Omit<SharedFill, "id">, progress: WriteProgress): void {
    const id = this.nextFill++;
    send({ kind: "peer.streaming", key, fill: { ...fill, id } });
    let scheduled = false;
    const report = (): void => {
      scheduled = false;
      send({ kind: "peer.progress", key, id, progress: progressOf(progress) });
    };
    const onChange = (): void => {
      if (progress.state !== "writing") {
        progress.off("change", onChange);
        report();
        return;
      }
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        if (scheduled) report();
      });
    };
    progress.on("change", onChange);
  }

  /**
   * Requests that the worker whose stale file of `key` this worker serves
   * while the origin fails, or revalidated, gives it the freshness in `file.metadata`.
   */
  hold(key: string, file: SharedFile): void {
    send({ kind: "peer.hold", key, file });
  }

  /**
   * Tells the primary that a purge this worker applied covers another
   * worker's write `id` of `key`, so that the next miss of the key fetches it
   * again for the whole edge. Readers of the write keep reading it.
   */
  supersede(key: string, id: number): void {
    send({ kind: "peer.supersede", key, id });
  }

  /**
   * Returns the progress of another worker's write, kept up to date from the
   * primary's reports, for readers in this worker; the same progress for every
   * reader of one write. A write that reports nothing for `waitTimeoutMs`
   * counts as failed.
   */
  follow(fill: SharedFill): WriteProgress {
    // Requests that reach the same write by different ways, a grant and a find, share one
    // progress, since reports update only the progress recorded under the write's number.
    const known = this.followed.get(fill.id);
    if (known !== undefined) return known.progress;
    const progress = new WriteProgress(fill.path, fill.bodyOffset, fill.bodyBytes);
    progress.follow(fill.writtenBodyBytes, fill.path, "writing");
    const stalled = (): void => {
      this.followed.delete(fill.id);
      progress.end(false);
    };
    const timer = setTimeout(stalled, this.waitTimeoutMs);
    timer.unref();
    this.followed.set(fill.id, { progress, timer });
    const early = this.unclaimed.get(fill.id);
    if (early !== undefined) {
      this.unclaimed.delete(fill.id);
      this.advanceFollowed(fill.id, early);
    }
    return progress;
  }

  private advanceFollowed(id: number, report: FillProgress): void {
    const followed = this.followed.get(id);
    if (followed === undefined) {
      this.unclaimed.delete(id);
      this.unclaimed.set(id, report);
      // A write that no request here follows in the end leaves its report behind; the oldest go.
      if (this.unclaimed.size > MAX_UNCLAIMED_REPORTS) this.unclaimed.delete(this.unclaimed.keys().next().value!);
      return;
    }
    followed.timer.refresh();
    if (report.state !== "writing") {
      clearTimeout(followed.timer);
      this.followed.delete(id);
    }
    followed.progress.follow(report.writtenBodyBytes, report.path, report.state);
  }

  close(): void {
    process.off("message", this.onMessage);
    for (const { done } of [...this.pending.values()]) done({ kind: "alone" });
    for (const done of [...this.finds.values()]) done({});
    for (const { progress, timer } of this.followed.values()) {
      clearTimeout(timer);
      progress.end(false);
    }
    this.followed.clear();
    this.unclaimed.clear();
  }
}

function progressOf(progress: WriteProgress): FillProgress {
  return { writtenBodyBytes: progress.writtenBodyBytes, path: progress.path, state: progress.state };
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
  /** The writer's write of a large object to its disk tier, once it began. */
  fill?: SharedWrite;
}

/** A write of a large object to a worker's disk tier that other workers read. */
interface SharedWrite {
  key: string;
  writer: Worker;
  /** The write's key in the primary's table: the writer's worker id and its own number for the write. */
  tableKey: string;
  /** The write as the readers know it, numbered by the primary. */
  shared: SharedFill;
  readers: Set<Worker>;
  /** Whether a purge covers the write, so that the key's next miss fetches it again. */
  superseded: boolean;
}

/** The primary's side: one writer per key across workers, and a directory of who holds what. */
export class PeerCoordinator {
  private readonly flights = new Map<string, Flight>();
  private readonly holders = new Map<string, Worker>();
  private readonly peeks = new Map<number, (peeked: Peeked) => void>();
  private nextPeek = 1;
  private nextFill = 1;
  /** Writes that workers read, by the writer's worker id and its own number for the write. */
  private readonly writes = new Map<string, SharedWrite>();

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
        case "peer.find":
          this.find(worker, value.sequence, value.key, value.stale);
          return;
        case "peer.release":
          this.release(worker, value.key, value.fetched, value.borrowed === true);
          return;
        case "peer.peeked":
          this.peeks.get(value.sequence)?.({ entry: value.entry, file: value.file });
          return;
        case "peer.streaming":
          this.startFill(worker, value.key, value.fill);
          return;
        case "peer.progress":
          this.advanceFill(worker, value.id, value.progress);
          return;
        case "peer.supersede":
          this.supersede(value.key, value.id);
          return;
        case "peer.hold": {
          const holder = this.holders.get(value.key);
          if (holder !== undefined && holder !== worker && holder.isConnected()) holder.send(value);
          return;
        }
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
    if (flight?.fill !== undefined) {
      flight.fill.readers.add(worker);
      grant(worker, sequence, key, { kind: "fill", fill: flight.fill.shared });
      return;
    }
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
    void this.peek(holder!, key).then(({ entry, file }) => {
      if (this.flights.get(key) !== started) return;
      if (entry !== undefined && Date.now() < entry.metadata.staleAtMs) {
        this.finish(key, started, { kind: "filled", entry, collapsed: false });
        return;
      }
      if (file !== undefined && Date.now() < file.metadata.staleAtMs) {
        this.finish(key, started, { kind: "file", file, collapsed: false });
        return;
      }
      // A holder of a stale large copy stays known: the writer revalidates that copy, and serves it
      // if the origin fails.
      if (file === undefined) this.holders.delete(key);
      // The first waiter becomes the writer, with the holder's stale copy if there is one. The
      // rest, and the holder's own misses, keep waiting for it.
      const first = started.waiters.shift()!;
      started.writer = first.worker;
      const writer: PeerGrant =
        entry !== undefined ? { kind: "writer", stale: entry } : file !== undefined ? { kind: "writer", staleFile: file } : { kind: "writer" };
      grant(first.worker, first.sequence, key, writer);
    });
  }

  /**
   * Replies to a worker's request for a copy that another worker holds: a
   * fresh one, another worker's write in progress, which the requesting
   * worker then reads, or else a stale large copy. With `stale`, the reply is
   * a large copy that may be stale.
   */
  private find(worker: Worker, sequence: number, key: string, stale: boolean): void {
    const answer = (found: Found): void => {
      if (worker.isConnected()) worker.send({ kind: "peer.found", sequence, found } satisfies PeerMessage);
    };
    const write = this.flights.get(key)?.fill;
    if (!stale && write !== undefined && write.writer !== worker) {
      write.readers.add(worker);
      answer({ fill: write.shared });
      return;
    }
    const holder = this.holders.get(key);
    if (holder === undefined || holder === worker) {
      answer({});
      return;
    }
    void this.peek(holder, key).then(({ entry, file }) => {
      const nowMs = Date.now();
      if (entry !== undefined && nowMs < entry.metadata.staleAtMs) answer({ entry });
      else if (file !== undefined && (stale || nowMs < file.metadata.staleAtMs)) answer({ file });
      else if (file !== undefined) answer({ staleFile: file });
      else answer({});
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

  private release(worker: Worker, key: string, fetched: FetchEnd | undefined, borrowed: boolean): void {
    const flight = this.flights.get(key);
    // A write to disk that began ends with its last progress report instead.
    if (flight === undefined || flight.writer !== worker || flight.fill !== undefined) return;
    // A stale copy served on a failure may be on the writer's disk only, which no peek returns.
    const originFailed = fetched === "failed" || fetched === "served-stale";
    const alone: PeerGrant = originFailed ? { kind: "alone", originFailed } : { kind: "alone" };
    if (fetched === undefined || fetched === "failed") {
      this.finish(key, flight, alone);
      return;
    }
    // A borrowed copy stays known by the worker that stored it, whose file outlives the borrowing.
    if (!borrowed) this.remember(key, worker);
    if (flight.waiters.length === 0) {
      this.finish(key, flight, alone);
      return;
    }
    // Workers that missed meanwhile, and any that miss before the reply, get the writer's copy.
    void this.peek(worker, key).then(({ entry, file }) => {
      if (this.flights.get(key) !== flight) return;
      const result: PeerGrant =
        entry !== undefined
          ? { kind: "filled", entry, collapsed: true, fetched }
          : file !== undefined
            ? { kind: "file", file, collapsed: true, fetched }
            : alone;
      this.finish(key, flight, result);
    });
  }

  /**
   * Hands the writer's file of `key`, which it writes as the object arrives,
   * to the waiting workers and to those that miss the key until the write
   * ends. They read the file as it grows.
   */
  private startFill(worker: Worker, key: string, fill: SharedFill): void {
    const flight = this.flights.get(key);
    if (flight === undefined || flight.writer !== worker || flight.fill !== undefined) return;
    // The write ends with its last report, or with the writer's exit; the writer's own timeouts bound it.
    clearTimeout(flight.timer);
    const tableKey = `${worker.id}:${fill.id}`;
    const write: SharedWrite = { key, writer: worker, tableKey, shared: { ...fill, id: this.nextFill++ }, readers: new Set(), superseded: false };
    this.writes.set(tableKey, write);
    flight.fill = write;
    for (const waiter of flight.waiters) {
      write.readers.add(waiter.worker);
      grant(waiter.worker, waiter.sequence, key, { kind: "fill", fill: write.shared });
    }
    flight.waiters = [];
  }

  /** Lets the next miss of `key` start a new fetch, when write `id` is the one its misses read. */
  private supersede(key: string, id: number): void {
    const flight = this.flights.get(key);
    if (flight?.fill === undefined || flight.fill.shared.id !== id) return;
    flight.fill.superseded = true;
    this.flights.delete(key);
  }

  /**
   * Passes the progress of the writer's write `id` on to the workers that
   * read it, and ends the key's flight when the write ends.
   */
  private advanceFill(worker: Worker, id: number, progress: FillProgress): void {
    const write = this.writes.get(`${worker.id}:${id}`);
    if (write !== undefined) this.advanceWrite(write, progress);
  }

  private advanceWrite(write: SharedWrite, progress: FillProgress): void {
    write.shared.writtenBodyBytes = progress.writtenBodyBytes;
    write.shared.path = progress.path;
    for (const reader of write.readers) sendProgress(reader, write.key, write.shared.id, progress);
    if (progress.state === "writing") return;
    this.writes.delete(write.tableKey);
    if (this.flights.get(write.key)?.fill === write) this.flights.delete(write.key);
    if (progress.state === "stored" && !write.superseded) this.remember(write.key, write.writer);
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

  private peek(holder: Worker, key: string): Promise<Peeked> {
    if (!holder.isConnected()) return Promise.resolve({});
    const sequence = this.nextPeek++;
    return new Promise((resolve) => {
      const done = (peeked: Peeked): void => {
        clearTimeout(timer);
        this.peeks.delete(sequence);
        resolve(peeked);
      };
      const timer = setTimeout(() => done({}), PEEK_TIMEOUT_MS);
      timer.unref();
      this.peeks.set(sequence, done);
      holder.send({ kind: "peer.peek", sequence, key } satisfies PeerMessage);
    });
  }

  /**
   * Lets the waiters of a worker that exited fetch alone, ends the writes it
   * was making for other workers as failed, and removes it from the directory of holders.
   */
  private detach(worker: Worker): void {
    for (const write of [...this.writes.values()]) {
      write.readers.delete(worker);
      if (write.writer !== worker) continue;
      this.advanceWrite(write, { writtenBodyBytes: write.shared.writtenBodyBytes, path: write.shared.path, state: "failed" });
    }
    for (const [key, flight] of [...this.flights]) {
      flight.waiters = flight.waiters.filter((waiter) => waiter.worker !== worker);
      if (flight.writer === worker) this.finish(key, flight, { kind: "alone" });
    }
    for (const [key, holder] of [...this.holders]) if (holder === worker) this.holders.delete(key);
  }
}

/** A holder's reply to a peek: an entry from its memory tier, a large entry's file, or neither. */
interface Peeked {
  entry?: SharedEntry | undefined;
  file?: SharedFile | undefined;
}

/**
 * Another worker's fresh copy of a key, from its memory tier or as a large entry's file, its write of
 * the key in progress, or none of them. `staleFile` is a stale large copy, to revalidate, when there
 * is nothing else.
 */
export interface Found extends Peeked {
  fill?: SharedFill;
  staleFile?: SharedFile;
}

function sendProgress(worker: Worker, key: string, id: number, progress: FillProgress): void {
  if (worker.isConnected()) worker.send({ kind: "peer.progress", key, id, progress } satisfies PeerMessage);
}

function grant(worker: Worker, sequence: number, key: string, result: PeerGrant): void {
  if (worker.isConnected()) worker.send({ kind: "peer.grant", sequence, key, grant: result } satisfies PeerMessage);
}

function sendQueued(worker: Worker, sequence: number): void {
  if (worker.isConnected()) worker.send({ kind: "peer.queued", sequence } satisfies PeerMessage);
}
