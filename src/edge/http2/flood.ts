import type { Http2FloodKind } from "../../metrics/types.js";
import { ConnectionError, ErrorCode } from "./frames.js";

/*
 * Bounds on the frames a client may send that cost the server work without
 * carrying requests or request bodies (RFC 9113 section 10.5). Each bound is
 * a count that grows with the work the connection really does, a budget per
 * second, or both, so a flood ends with GOAWAY ENHANCE_YOUR_CALM while a
 * long-lived connection that keeps downloading never reaches one.
 */

/**
 * WINDOW_UPDATE frames allowed over a connection's life: 5 + 2 × (streams
 * opened + 10 × DATA frames sent). Envoy uses this formula with 10 as its
 * default `max_inbound_window_update_frames_per_data_frame_sent`. A client
 * that returns window as it reads sends at most one stream and one connection
 * update per DATA frame, so 10 leaves room for clients that update more often.
 */
const WINDOW_UPDATE_BASE = 5;
const WINDOW_UPDATES_PER_DATA_FRAME = 10;

/**
 * PRIORITY frames and frames of unknown types allowed over a connection's life:
 * 100 × (1 + streams opened), Envoy's default `max_inbound_priority_frames_per_stream`.
 * Unknown types share it because the one clients send, PRIORITY_UPDATE
 * (RFC 9218), comes at most a few times per stream, like PRIORITY.
 */
const PRIORITY_FRAMES_PER_STREAM = 100;

/**
 * RST_STREAM frames from the client and stream errors its frames cause, as a
 * token bucket: 400 at once, refilled by 33 a second. nghttp2 refills at 33 a
 * second too (with a bucket of 1000). 400 is three times the 128 streams a
 * client may have open, so a client that cancels every open stream at once
 * stays well inside it. Opening and resetting streams without end (the rapid
 * reset attack, CVE-2023-44487) soon empties it.
 */
const RESET_BURST = 400;
const RESET_REFILL_PER_SECOND = 33;

/**
 * Frames allowed per second of each kind that has a budget per second. Empty
 * frames are DATA without END_STREAM, and HEADERS or CONTINUATION without
 * END_HEADERS, that carry no payload.
 */
const PER_SECOND_LIMITS = { ping: 100, settings: 100, empty_frame: 400, goaway: 10 } as const;

type PerSecondKind = keyof typeof PER_SECOND_LIMITS;

const PER_SECOND_MESSAGES: Record<PerSecondKind, string> = {
  ping: "too many PING frames",
  settings: "too many SETTINGS frames",
  empty_frame: "too many empty frames",
  goaway: "too many GOAWAY frames",
};

/** Entries one SETTINGS frame may contain, nghttp2's default `max_settings`. */
export const MAX_SETTINGS_ENTRIES = 32;

/**
 * Bytes read, other than WINDOW_UPDATE frames, may be at most 8 times the
 * payload bytes plus 1 MiB, the bound nginx applies to all bytes read (its
 * "http2 flood detected"). WINDOW_UPDATE frames have a bound of their own
 * instead, because a client that only downloads sends little else. On a
 * long-lived connection its updates would pass nginx's bound, which nginx
 * avoids by closing connections after 1000 requests. Here, payload is every
 * byte not in a control frame or a frame of unknown type, so DATA and header
 * block frames count whole, frame headers and padding included.
 */
const OVERHEAD_RATIO = 8;
const OVERHEAD_ALLOWANCE_BYTES = 1024 * 1024;

/** A connection error for a client that passed a flood bound; always GOAWAY ENHANCE_YOUR_CALM. */
export class FloodError extends ConnectionError {
  constructor(
    readonly kind: Http2FloodKind,
    message: string,
  ) {
    super(ErrorCode.ENHANCE_YOUR_CALM, message);
    this.name = "FloodError";
  }
}

/** The flood counters of one connection. Each count method throws FloodError past its bound. */
export class FloodBudget {
  /** Streams the client opened, which the bounds that grow with them read. */
  streamsOpened = 0;
  /** DATA frames this server sent, the work that earns WINDOW_UPDATE frames. */
  dataFramesSent = 0;
  private windowUpdates = 0;
  private priorityFrames = 0;
  private resetTokens = RESET_BURST;
  private readonly thisSecond: Record<PerSecondKind, number> = { ping: 0, settings: 0, empty_frame: 0, goaway: 0 };
  private readBytes = 0;
  private windowUpdateBytes = 0;
  private overheadBytes = 0;

  /** Starts the per-second budgets over and refills the reset budget. The server's sweep calls it once a second. */
  startSecond(): void {
    this.thisSecond.ping = 0;
    this.thisSecond.settings = 0;
    this.thisSecond.empty_frame = 0;
    this.thisSecond.goaway = 0;
    this.resetTokens = Math.min(RESET_BURST, this.resetTokens + RESET_REFILL_PER_SECOND);
  }

  countWindowUpdate(frameBytes: number): void {
    this.windowUpdateBytes += frameBytes;
    const allowed = WINDOW_UPDATE_BASE + 2 * (this.streamsOpened + WINDOW_UPDATES_PER_DATA_FRAME * this.dataFramesSent);
    if (++this.windowUpdates > allowed) {
      throw new FloodError("window_update", "too many WINDOW_UPDATE frames");
    }
  }

  /** Counts a PRIORITY frame or a frame of an unknown type, whose bytes are overhead. */
  countPriority(frameBytes: number): void {
    this.overheadBytes += frameBytes;
    if (++this.priorityFrames > PRIORITY_FRAMES_PER_STREAM * (1 + this.streamsOpened)) {
      throw new FloodError("priority", "too many PRIORITY or unknown frames");
    }
  }

  /** Counts an RST_STREAM from the client, or a stream error that its frames caused. */
  countReset(): void {
    if (--this.resetTokens < 0) throw new FloodError("reset", "too many stream resets");
  }

  /** Counts a control frame with a budget per second, whose bytes are overhead. */
  countControl(kind: PerSecondKind, frameBytes: number): void {
    this.overheadBytes += frameBytes;
    this.countPerSecond(kind);
  }

  /** Counts a DATA, HEADERS or CONTINUATION frame that carries no payload and ends nothing. */
  countEmpty(): void {
    this.countPerSecond("empty_frame");
  }

  /** Counts an RST_STREAM frame's bytes as overhead. countReset bounds their number. */
  countOverhead(frameBytes: number): void {
    this.overheadBytes += frameBytes;
  }

  /** Adds the bytes of one read and checks the ratio of overhead to payload. */
  countRead(bytes: number): void {
    this.readBytes += bytes;
    const counted = this.readBytes - this.windowUpdateBytes;
    const payload = counted - this.overheadBytes;
    if (counted / OVERHEAD_RATIO > payload + OVERHEAD_ALLOWANCE_BYTES) {
      throw new FloodError("overhead", "too many bytes outside requests and request bodies");
    }
  }

  private countPerSecond(kind: PerSecondKind): void {
    if (++this.thisSecond[kind] > PER_SECOND_LIMITS[kind]) {
      throw new FloodError(kind, PER_SECOND_MESSAGES[kind]);
    }
  }
}
