import type { Socket } from "node:net";

/**
 * Spreads viewer connections evenly over the edge workers.
 *
 * Where workers accept from shared listening sockets, whichever worker the
 * kernel wakes first takes every connection waiting. When a load generator
 * or a proxy opens many connections at once, one worker can end up with most
 * of them, and they stay there: in one run of 64 HTTP/2 connections, one
 * worker had 53 and the other 11. With `SO_REUSEPORT` listeners (listen.ts)
 * the kernel spreads them by a hash, which is close to even for many
 * connections but not for a few.
 *
 * Each worker reports its open connections to the primary, within
 * REPORT_INTERVAL_MS of a change or at once after a large one, and the
 * primary replies with the fair share: the open connections of all workers
 * divided by their number. A worker with more
 * than its share plus a slack hands each new connection, before reading from
 * it, to the primary, which passes it to the worker with the fewest.
 * A handed connection costs two IPC messages before its first byte is read.
 * Connections that are already open are never moved. Short connections even
 * out by themselves as they close. So a worker hands none on while more of
 * its connections closed within a second of opening, in the last second,
 * than are open. With a new connection per request, 5% of them were handed
 * on otherwise, and the rate dropped by about as much.
 */

/** The listener a connection arrived on. */
export type ViewerPort = "http" | "https";

/** Moves plain HTTP/1.1 keep-alive connections, between requests, off a worker with more than its share. */
export interface ConnectionMover {
  /** Returns whether this worker would move an idle connection now. */
  wantsToMove(): boolean;
  /** Hands an idle plain connection, unread since its last request, to another worker, and returns false when it stays. */
  move(socket: Socket): boolean;
}

/** Decides, for each accepted connection, whether this process serves it. */
export interface ConnectionGate extends ConnectionMover {
  /** Returns true when this process serves `socket`, false when it has handed it to another worker. */
  admit(socket: Socket, port: ViewerPort): boolean;
  /** Counts a connection that another worker handed to this one. */
  adopted(socket: Socket): void;
}

/** Messages about connections between the primary and a worker. */
export type BalanceMessage =
  /** Worker to primary: the worker's open viewer connections, and how many it has adopted since it started. */
  | { kind: "edge.connections"; open: number; adopted: number }
  /** Worker to primary, with the connection: serve it elsewhere. */
  | { kind: "edge.handoff"; port: ViewerPort; open: number; adopted: number }
  /** Primary to worker: the fair share of open connections. */
  | { kind: "edge.share"; share: number }
  /** Primary to worker, with the socket: serve this connection. */
  | { kind: "edge.adopt"; port: ViewerPort };

/** Maximum wait before a worker reports a change in its open connections. */
export const REPORT_INTERVAL_MS = 100;
/**
 * Connections a worker hands on per second at most. Each costs the primary's event loop, which
 * also serves the API, two IPC messages, so a flood of new connections is not passed through it.
 */
export const MAX_HANDOFFS_PER_SECOND = 200;

/**
 * Returns the number of open connections from which a worker hands new ones
 * on: its share plus an eighth, and at least 2 more, so that workers near
 * their share do not pass connections back and forth.
 */
export function handOffThreshold(share: number): number {
  return share + Math.max(2, Math.ceil(share / 8));
}

/**
 * With listening sockets of each worker's own, how long a worker stays at or
 * above its hand-off threshold before it hands new connections on. The kernel
 * splits a burst about evenly, but the workers report their counts one after
 * the other, so during a burst each worker's share lags its own count.
 * Handing on at once moved most of a burst of 64 connections through the
 * primary. A split that is still uneven after this long is corrected.
 * NOTE: 1 s, like MOVE_AFTER_MS, is a chosen value, and no other value was measured.
 */
export const KERNEL_SPREAD_SETTLE_MS = 1000;

/**
 * A worker that has had more than its share plus MOVE_SLACK open connections
 * for MOVE_AFTER_MS moves idle plain HTTP/1.1 keep-alive connections, between
 * two requests, to the worker with the fewest, until it is back to that. New
 * connections alone cannot even out a split when every connection is opened
 * at once and kept. The kernel's hash split a load generator's 64 connections
 * 26 and 38, and the viewers of the busier worker waited longer for every
 * response for as long as they stayed.
 */
export const MOVE_SLACK = 1;
export const MOVE_AFTER_MS = 1000;

/** The worker side: counts this worker's connections, reports them, and hands on those above its share. */
export class WorkerConnectionGate implements ConnectionGate {
  private open = 0;
  private adoptedCount = 0;
  private share: number | undefined;
  private reported = 0;
  private reportTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private handoffSecond = 0;
  private handoffsThisSecond = 0;
  private closeSecond = 0;
  /** Connections that closed within a second of opening, in this second and the one before. */
  private shortClosesThisSecond = 0;
  private shortClosesLastSecond = 0;
  /** The ports whose new connections the kernel spreads over the workers (spreadByKernel). */
  private readonly kernelSpread = new Set<ViewerPort>();
  /** Since when the worker has been at or above its hand-off threshold, without a break. */
  private aboveSinceMs: number | undefined;
  /** Since when the worker has had more than its share plus MOVE_SLACK, without a break. */
  private excessSinceMs: number | undefined;
  /** Connections moved to another worker whose sockets have not closed here yet. */
  private moving = 0;

  /** `send` delivers a message to the primary, with a socket when there is one, and returns false when it cannot. */
  constructor(private readonly send: (message: BalanceMessage, socket?: Socket) => boolean) {}

  get openConnections(): number {
    return this.held;
  }

  /** Open connections, less those moved away whose sockets have not closed here yet. */
  private get held(): number {
    return this.open - this.moving;
  }

  /** Tells the gate that the kernel spreads new connections to `port` over the workers (SO_REUSEPORT listeners). */
  spreadByKernel(port: ViewerPort): void {
    this.kernelSpread.add(port);
  }

  wantsToMove(): boolean {
    if (this.excessSinceMs === undefined || this.closed) return false;
    return Date.now() - this.excessSinceMs >= MOVE_AFTER_MS;
  }

  move(socket: Socket): boolean {
    if (!this.wantsToMove() || !this.mayHandOff(Math.floor(Date.now() / 1000))) return false;
    const open = this.held - 1;
    if (!this.send({ kind: "edge.handoff", port: "http", open, adopted: this.adoptedCount }, socket)) return false;
    // Counted as gone at once, so that the connections finishing in the same turn do not all move.
    this.moving += 1;
    socket.once("close", () => {
      this.moving -= 1;
      this.trackLoad(Date.now());
    });
    this.trackLoad(Date.now());
    return true;
  }

  admit(socket: Socket, port: ViewerPort): boolean {
    const nowMs = Date.now();
    this.trackLoad(nowMs);
    const settleMs = this.kernelSpread.has(port) ? KERNEL_SPREAD_SETTLE_MS : 0;
    const aboveShare = this.aboveSinceMs !== undefined && nowMs - this.aboveSinceMs >= settleMs;
    if (!this.closed && aboveShare && this.mayHandOff(Math.floor(nowMs / 1000))) {
      // Sent before the socket is read from, so no byte of the viewer's is left behind here.
      if (this.send({ kind: "edge.handoff", port, open: this.held, adopted: this.adoptedCount }, socket)) return false;
    }
    this.count(socket);
    return true;
  }

  private rollCloses(second: number): void {
    if (second === this.closeSecond) return;
    this.shortClosesLastSecond = second === this.closeSecond + 1 ? this.shortClosesThisSecond : 0;
    this.shortClosesThisSecond = 0;
    this.closeSecond = second;
  }

  /**
   * Returns whether a connection may be handed on in epoch second `second`, and counts it
   * against that second's allowance. It may not while more connections closed within a second
   * of opening, in the last second, than are open: they come and go, and even out by themselves.
   */
  private mayHandOff(second: number): boolean {
    this.rollCloses(second);
    if (this.shortClosesLastSecond > this.open) return false;
    if (second !== this.handoffSecond) {
      this.handoffSecond = second;
      this.handoffsThisSecond = 0;
    }
    if (this.handoffsThisSecond >= MAX_HANDOFFS_PER_SECOND) return false;
    this.handoffsThisSecond += 1;
    return true;
  }

  adopted(socket: Socket): void {
    this.adoptedCount += 1;
    this.count(socket);
  }

  /** Applies the fair share the primary computed. */
  setShare(share: number): void {
    this.share = share;
    this.trackLoad(Date.now());
  }

  /**
   * Notes when the worker went to or above its hand-off threshold, and above its share plus
   * MOVE_SLACK, or that it is below them.
   */
  private trackLoad(nowMs: number): void {
    const open = this.held;
    if (this.share === undefined || open < handOffThreshold(this.share)) this.aboveSinceMs = undefined;
    else this.aboveSinceMs ??= nowMs;
    if (this.share === undefined || open <= this.share + MOVE_SLACK) this.excessSinceMs = undefined;
    else this.excessSinceMs ??= nowMs;
  }

  /** Stops handing connections on, as when the worker drains. */
  close(): void {
    this.closed = true;
    clearTimeout(this.reportTimer);
    this.reportTimer = undefined;
  }

  private count(socket: Socket): void {
    this.open += 1;
    const openedAtMs = Date.now();
    this.trackLoad(openedAtMs);
    socket.once("close", () => {
      this.open -= 1;
      const nowMs = Date.now();
      this.trackLoad(nowMs);
      this.rollCloses(Math.floor(nowMs / 1000));
      if (nowMs - openedAtMs < 1000) this.shortClosesThisSecond += 1;
      this.scheduleReport();
    });
    this.scheduleReport();
  }

  /**
   * Reports the open connections within REPORT_INTERVAL_MS, or at once after a large change:
   * when a burst replaces connections that just closed, a share from before would let each
   * worker keep its old number before handing any on.
   */
  private scheduleReport(): void {
    if (this.closed) return;
    if (Math.abs(this.held - this.reported) >= Math.max(8, this.reported / 4)) {
      clearTimeout(this.reportTimer);
      this.reportTimer = undefined;
      this.report();
      return;
    }
    if (this.reportTimer !== undefined) return;
    this.reportTimer = setTimeout(() => {
      this.reportTimer = undefined;
      if (this.held !== this.reported) this.report();
    }, REPORT_INTERVAL_MS);
    this.reportTimer.unref();
  }

  private report(): void {
    this.reported = this.held;
    this.send({ kind: "edge.connections", open: this.held, adopted: this.adoptedCount });
  }
}

/**
 * The primary side: each worker's open connections as it last reported them,
 * plus the connections passed to it that it had not adopted by then, from
 * which it picks where a handed connection goes and computes the fair share.
 * A worker busy accepting a burst reads its messages late, so a connection
 * passed to it counts from the moment it is passed until the worker reports
 * having adopted it.
 */
export class ConnectionSpread {
  private readonly workers = new Map<number, { open: number; adopted: number; passed: number }>();
  private handed = 0;

  /** Records a worker's report: its open connections, and the connections it has adopted since it started. */
  report(worker: number, open: number, adopted: number): void {
    const counts = this.workers.get(worker);
    if (counts === undefined) this.workers.set(worker, { open, adopted, passed: 0 });
    else {
      counts.open = open;
      counts.adopted = adopted;
    }
  }

  remove(worker: number): void {
    this.workers.delete(worker);
  }

  /** The workers that have reported, which are the ones connections may be passed to. */
  get workerCount(): number {
    return this.workers.size;
  }

  /** Returns the fair share of open connections, rounded up; 0 without workers. */
  share(): number {
    if (this.workers.size === 0) return 0;
    let total = 0;
    for (const counts of this.workers.values()) total += countOf(counts);
    return Math.ceil(total / this.workers.size);
  }

  /**
   * Returns the worker that gets a connection handed on by `from`: the one
   * with the fewest connections, and `from` only when no other has fewer.
   * The connection counts for it from here on.
   */
  pick(from: number): number {
    let best = from;
    const own = this.workers.get(from);
    let bestCount = own === undefined ? Number.POSITIVE_INFINITY : countOf(own);
    for (const [worker, counts] of this.workers) {
      const count = countOf(counts);
      if (count < bestCount) {
        best = worker;
        bestCount = count;
      }
    }
    const counts = this.workers.get(best);
    if (counts !== undefined) counts.passed += 1;
    if (best !== from) this.handed += 1;
    return best;
  }

  /** Connections passed from one worker to another since the start; those sent back are not counted. */
  get handedOff(): number {
    return this.handed;
  }

  /** Returns each worker's open connections as last reported, by worker. */
  counts(): Array<[worker: number, open: number]> {
    return [...this.workers].map(([worker, counts]) => [worker, counts.open]);
  }
}

function countOf(counts: { open: number; adopted: number; passed: number }): number {
  return counts.open + Math.max(0, counts.passed - counts.adopted);
}
