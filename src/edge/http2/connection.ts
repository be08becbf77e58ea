import type { Socket } from "node:net";
import type { Logger } from "../../common/logger.js";
import type { Http2FloodKind } from "../../metrics/types.js";
import { undeliveredBytes, type RequestListener } from "../http1/connection.js";
import { RequestBody } from "../http1/body.js";
import {
  CLIENT_PREFACE,
  ConnectionError,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  ErrorCode,
  Flag,
  FRAME_HEADER_BYTES,
  FrameType,
  goawayFrame,
  LARGEST_MAX_FRAME_SIZE,
  MAX_WINDOW,
  rstStreamFrame,
  Setting,
  settingsFrame,
  StreamError,
  windowUpdateFrame,
  writeFrameHeader,
  frame,
} from "./frames.js";
import { HpackDecoder, HpackError } from "./hpack.js";
import { HpackEncoder, type ResponseHead } from "./hpack-encoder.js";
import { dispatchRequest, type DispatchContext } from "./dispatch.js";
import { FloodBudget, FloodError, MAX_SETTINGS_ENTRIES } from "./flood.js";
import { parseRequestFields, validTableField } from "./request.js";
import { Http2Stream, type StreamSink } from "./stream.js";
import { StreamTable } from "./stream-table.js";
import { giveBackToSlab, takeFromSlab } from "../output-slab.js";
import { readIntoSharedBuffer } from "../http1/read-buffer.js";

export interface Http2Limits {
  /** Largest decoded header list of a request (names, values and 32 octets a field). */
  maxHeaderListBytes: number;
  /** Streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxConcurrentStreams: number;
  /** How long a connection may stay without open streams. */
  idleTimeoutMs: number;
  /** How long a header block may take to arrive whole, over HEADERS and CONTINUATION frames. */
  headersTimeoutMs: number;
  /** How long a request body may go without receiving DATA. */
  bodyIdleTimeoutMs: number;
}

/** The window this server grants each request body, and the whole connection. */
const STREAM_RECEIVE_WINDOW = 256 * 1024;
const CONNECTION_RECEIVE_WINDOW = 4 * 1024 * 1024;
/** The HPACK table size this server advertises for the client's requests. */
const HEADER_TABLE_SIZE = 4096;
/**
 * DATA frames are at most this large whatever SETTINGS_MAX_FRAME_SIZE allows, and no more DATA is
 * written while this much waits unsent in the socket, so a viewer that does not read holds little:
 * the TLS layer copies what it encrypts.
 */
const MAX_DATA_FRAME_BYTES = 64 * 1024;
/** Bodies up to this size are copied behind the frame headers of a whole response; larger ones are not copied. */
const COPY_BODY_MAX_BYTES = 2 * 1024;
const MAX_UNSENT_BYTES = 256 * 1024;
const EMPTY = Buffer.alloc(0);
/**
 * CONTINUATION frames one header block may take. A block of the largest allowed size fits in a
 * few frames of 16 KiB, so a client that sends many small or empty ones only makes work.
 */
const MAX_CONTINUATION_FRAMES = 64;

/**
 * The edge's HTTP/2 server for one connection (RFC 9113), behind TLS with
 * ALPN h2, or on a plain connection that starts with the connection preface
 * (h2c with prior knowledge, section 3.3). It reads frames itself so that a
 * cache hit costs one write of a prepared HEADERS and DATA pair, where
 * node:http2 makes several objects and calls per stream. It enforces the protocol's rules on every frame, flow
 * control in both directions, the client's SETTINGS, and the bounds of
 * FloodBudget on frames that cost work without producing requests, which are
 * the HTTP/2 flood attacks.
 */
export class Http2Connection implements StreamSink {
  /** When the connection times out, in epoch milliseconds; checked by the server's sweep. */
  deadlineMs: number;
  private input: Buffer = EMPTY;
  private prefaceReceived = false;
  private settingsReceived = false;
  private readonly decoder = new HpackDecoder(HEADER_TABLE_SIZE, validTableField);
  private readonly encoder = new HpackEncoder();
  private readonly streams = new StreamTable();
  private highestStreamId = 0;
  /**
   * Streams this server reset with NO_ERROR after a complete response, oldest first. Frames
   * still on their way for them are ignored (section 5.1). At most maxConcurrentStreams are kept.
   */
  private readonly answeredEarly = new Set<number>();
  private goawaySent = false;
  private peerGoaway = false;
  private closed = false;
  private congested = false;
  private readonly roomWaiters = new Map<Http2Stream, Array<(open: boolean) => void>>();
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  private sendWindow = DEFAULT_WINDOW;
  private receiveWindow = CONNECTION_RECEIVE_WINDOW;
  private receivedSinceUpdate = 0;
  /** A header block arriving over HEADERS and CONTINUATION frames. */
  private block: { streamId: number; chunks: Buffer[]; bytes: number; endStream: boolean; startedAtMs: number; continuations: number } | undefined;
  private readonly flood = new FloodBudget();
  private readonly clientIp: string;
  private clockMs = 0;
  private clockPerformanceMs = 0;
  private draining = false;
  /** Whether the client has ended its side of the connection, so no frame follows. */
  private peerEnded = false;
  /** Whether reads arrive in the process's shared read buffer, which the next read overwrites. */
  private readonly sharedReads: boolean;
  /** The dispatch context of every request on this connection. Its per-request fields are set before each dispatch. */
  private readonly dispatch: DispatchContext;
  /** Bytes handed to the socket since the connection opened. */
  private bytesHanded = 0;
  /** Bytes the viewer had taken at the last sweep that found responses waiting on it, and when that count last grew. */
  private deliveredAtSweep = 0;
  private viewerReadAtMs = 0;

  /**
   * Takes over `socket`, a TLSSocket on the TLS port or a plain socket for
   * h2c. `protocol` is the scheme that requests on it get, whatever their
   * `:scheme` field contains, so viewer protocol policies see the connection's own.
   */
  constructor(
    private readonly socket: Socket,
    private readonly protocol: "http" | "https",
    private readonly listener: RequestListener,
    private readonly limits: Http2Limits,
    private readonly log: Logger,
    private readonly onClose: (connection: Http2Connection) => void,
    private readonly onFlood: (kind: Http2FloodKind) => void = () => {},
  ) {
    this.clientIp = socket.remoteAddress ?? "";
    this.dispatch = {
      listener,
      clientIp: this.clientIp,
      protocol,
      socket,
      startedAt: 0,
      receivedAtMs: 0,
      headBytes: 0,
      headerListTooLarge: false,
      log,
    };
    this.deadlineMs = Date.now() + limits.idleTimeoutMs;
    socket.setNoDelay(true);
    this.sharedReads = readIntoSharedBuffer(socket, (bytes, buffer) => this.onData(buffer.subarray(0, bytes)));
    if (!this.sharedReads) socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("drain", () => this.onDrain());
    socket.on("error", () => {});
    socket.on("close", () => this.onSocketClose());
    // A client may end its side after its last request and still read the responses.
    socket.allowHalfOpen = true;
    socket.on("end", () => this.onPeerEnd());
    // The server connection preface: SETTINGS, then a larger connection window (section 3.4).
    this.write(
      Buffer.concat([
        settingsFrame([
          [Setting.HEADER_TABLE_SIZE, HEADER_TABLE_SIZE],
          [Setting.MAX_CONCURRENT_STREAMS, limits.maxConcurrentStreams],
          [Setting.INITIAL_WINDOW_SIZE, STREAM_RECEIVE_WINDOW],
          [Setting.MAX_FRAME_SIZE, DEFAULT_MAX_FRAME_SIZE],
          [Setting.MAX_HEADER_LIST_SIZE, limits.maxHeaderListBytes],
        ]),
        windowUpdateFrame(0, CONNECTION_RECEIVE_WINDOW - DEFAULT_WINDOW),
      ]),
    );
  }

  /** Processes bytes that arrived before this connection took over the socket. */
  receive(received: Buffer): void {
    this.onData(received);
  }

  /** Whether no stream is open, so closing loses nothing. */
  get idle(): boolean {
    return this.streams.size === 0;
  }

  /** Sends GOAWAY so the client opens no more streams, and closes once the open ones finish. */
  drain(): void {
    if (this.closed) return;
    this.draining = true;
    this.sendGoaway(ErrorCode.NO_ERROR, "server shutting down");
    if (this.streams.size === 0) this.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Called by the server's sweep: ends idle connections and stalled header blocks and bodies. */
  sweep(nowMs: number, startFloodSecond: boolean): void {
    if (this.closed) return;
    if (startFloodSecond) this.flood.startSecond();
    if (this.block !== undefined && nowMs - this.block.startedAtMs > this.limits.headersTimeoutMs) {
      this.connectionError(new ConnectionError(ErrorCode.PROTOCOL_ERROR, "header block timed out"));
      return;
    }
    for (const stream of this.streams.list()) {
      if (stream.body === undefined || stream.remoteClosed) continue;
      if (nowMs - stream.lastDataAtMs > this.limits.bodyIdleTimeoutMs) {
        stream.body.destroy(new Error("request body timed out"));
        this.streamError(new StreamError(stream.id, ErrorCode.CANCEL, "request body timed out"));
      }
    }
    if (this.viewerStalled(nowMs)) {
      this.log.debug({ clientIp: this.clientIp, streams: this.streams.size }, "HTTP/2 viewer stopped taking responses; closing the connection");
      this.socket.destroy();
      return;
    }
    // A header block in progress is not idle: the header timeout above bounds it.
    if (this.streams.size === 0 && this.block === undefined && nowMs >= this.deadlineMs) {
      this.sendGoaway(ErrorCode.NO_ERROR, "idle");
      this.end();
    }
  }

  /**
   * Returns whether responses have waited on the viewer for longer than the body idle timeout.
   * They wait as bytes written that it has not acknowledged, in the process or in the kernel, or
   * as DATA held back by a flow-control window it does not open. Any byte it takes restarts the wait.
   */
  private viewerStalled(nowMs: number): boolean {
    if (this.streams.size === 0) {
      this.viewerReadAtMs = 0;
      return false;
    }
    const undelivered = undeliveredBytes(this.socket);
    let dataWaiting = false;
    for (const stream of this.streams.list()) {
      if (stream.pending.length > 0) {
        dataWaiting = true;
        break;
      }
    }
    const delivered = this.bytesHanded - undelivered;
    if ((undelivered === 0 && !dataWaiting) || this.viewerReadAtMs === 0 || delivered > this.deliveredAtSweep) {
      this.viewerReadAtMs = nowMs;
    }
    this.deliveredAtSweep = delivered;
    return nowMs - this.viewerReadAtMs > this.limits.bodyIdleTimeoutMs;
  }

  // StreamSink

  sendHeaders(stream: Http2Stream, head: ResponseHead, endStream: boolean): void {
    if (stream.reset || this.closed) return;
    const { block, tail } = this.encoder.encode(head);
    this.writeHeaders(stream, tail === undefined ? block : Buffer.concat([block, tail]), endStream);
  }

  sendWhole(stream: Http2Stream, head: ResponseHead, body: Buffer | undefined): void {
    if (stream.reset || this.closed) return;
    // Encoded here and written below without a return in between, so the peer's HPACK decoder
    // receives every block this encoder produced, in order.
    const block = this.encoder.encodeBlock(head);
    const tailBytes = this.encoder.tailBytes;
    const bodyBytes = body?.length ?? 0;
    const blockBytes = block.length + tailBytes;
    const fits =
      blockBytes <= this.peerMaxFrameSize &&
      bodyBytes <= DEFAULT_MAX_FRAME_SIZE &&
      bodyBytes <= stream.sendWindow &&
      bodyBytes <= this.sendWindow;
    if (!fits) {
      let whole = block;
      if (tailBytes > 0) {
        whole = Buffer.allocUnsafe(blockBytes);
        block.copy(whole, 0);
        this.encoder.copyTail(whole, block.length);
      }
      this.writeHeaders(stream, whole, body === undefined);
      if (body !== undefined) this.sendData(stream, body, true);
      return;
    }
    stream.response.countHeaderBytes(blockBytes);
    // HEADERS, then DATA with END_STREAM, or HEADERS with END_STREAM alone. A small body is
    // copied into the same buffer; a larger one follows it in one writev.
    const copied = body !== undefined && bodyBytes <= COPY_BODY_MAX_BYTES;
    const total = FRAME_HEADER_BYTES + blockBytes + (body === undefined ? 0 : FRAME_HEADER_BYTES) + (copied ? bodyBytes : 0);
    const out = takeFromSlab(total);
    writeFrameHeader(out, 0, blockBytes, FrameType.HEADERS, Flag.END_HEADERS | (body === undefined ? Flag.END_STREAM : 0), stream.id);
    out.set(block, FRAME_HEADER_BYTES);
    if (tailBytes > 0) this.encoder.copyTail(out, FRAME_HEADER_BYTES + block.length);
    if (body !== undefined) {
      const dataStart = FRAME_HEADER_BYTES + blockBytes;
      writeFrameHeader(out, dataStart, bodyBytes, FrameType.DATA, Flag.END_STREAM, stream.id);
      if (copied) out.set(body, dataStart + FRAME_HEADER_BYTES);
      stream.sendWindow -= bodyBytes;
      this.sendWindow -= bodyBytes;
      this.flood.dataFramesSent++;
    }
    if (body === undefined || copied) {
      this.write(out);
      // Nothing left unsent means the write completed and released `out`.
      if (this.socket.writableLength === 0) giveBackToSlab(out);
    } else {
      this.socket.cork();
      this.write(out);
      this.write(body);
      this.socket.uncork();
    }
    this.localEnd(stream);
  }

  private writeHeaders(stream: Http2Stream, block: Buffer, endStream: boolean): void {
    stream.response.countHeaderBytes(block.length);
    this.write(this.headersFrames(stream.id, block, endStream));
    if (endStream) this.localEnd(stream);
  }

  sendData(stream: Http2Stream, data: Buffer, endStream: boolean): void {
    if (stream.reset || this.closed) return;
    stream.pending.push({ data, end: endStream });
    this.flushStream(stream);
  }

  waitForRoom(stream: Http2Stream): Promise<boolean> {
    if (stream.reset || this.closed) return Promise.resolve(false);
    if (stream.pending.length === 0 && !this.congested) return Promise.resolve(true);
    return new Promise((resolve) => {
      let waiters = this.roomWaiters.get(stream);
      if (waiters === undefined) {
        waiters = [];
        this.roomWaiters.set(stream, waiters);
      }
      waiters.push(resolve);
    });
  }

  resetStream(stream: Http2Stream, code: number): void {
    this.streamError(new StreamError(stream.id, code, "response broke off"));
  }

  // Input

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.input = this.input.length === 0 ? chunk : Buffer.concat([this.input, chunk]);
    this.clockMs = Date.now();
    this.clockPerformanceMs = performance.now();
    try {
      this.readFrames();
      this.flood.countRead(chunk.length);
    } catch (error) {
      if (error instanceof ConnectionError) this.connectionError(error);
      else if (error instanceof HpackError) this.connectionError(new ConnectionError(ErrorCode.COMPRESSION_ERROR, error.message));
      else {
        this.log.error({ err: error }, "HTTP/2 connection failed");
        this.connectionError(new ConnectionError(ErrorCode.INTERNAL_ERROR, "internal error"));
      }
    }
  }

  private readFrames(): void {
    if (!this.prefaceReceived) {
      const have = Math.min(this.input.length, CLIENT_PREFACE.length);
      if (!this.input.subarray(0, have).equals(CLIENT_PREFACE.subarray(0, have))) {
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "invalid connection preface");
      }
      if (this.input.length < CLIENT_PREFACE.length) return;
      this.prefaceReceived = true;
      this.input = this.input.subarray(CLIENT_PREFACE.length);
    }
    let position = 0;
    const input = this.input;
    // While the viewer is not reading, frames wait in the buffer, so responses cannot pile up unsent.
    while (!this.closed && !this.congested && input.length - position >= FRAME_HEADER_BYTES) {
      const length = (input[position]! << 16) | (input[position + 1]! << 8) | input[position + 2]!;
      // Section 4.2: this server accepts frames up to the size it advertised.
      if (length > DEFAULT_MAX_FRAME_SIZE) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "frame larger than SETTINGS_MAX_FRAME_SIZE");
      if (input.length - position < FRAME_HEADER_BYTES + length) break;
      const type = input[position + 3]!;
      const flags = input[position + 4]!;
      const streamId = input.readUInt32BE(position + 5) & MAX_WINDOW;
      const payload = input.subarray(position + FRAME_HEADER_BYTES, position + FRAME_HEADER_BYTES + length);
      position += FRAME_HEADER_BYTES + length;
      try {
        this.handleFrame(type, flags, streamId, payload);
      } catch (error) {
        if (!(error instanceof StreamError)) throw error;
        // A stream error the client caused costs a reset like its own RST_STREAM does.
        this.flood.countReset();
        this.streamError(error);
      }
    }
    this.input = position === input.length ? EMPTY : input.subarray(position);
    // A partial frame is kept in a buffer of its own, not in a read buffer that later bytes replace.
    if (this.input.length > 0 && (position > 0 || this.sharedReads)) this.input = Buffer.from(this.input);
  }

  private handleFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (!this.settingsReceived) {
      // Section 3.4: the client's preface ends with a SETTINGS frame.
      if (type !== FrameType.SETTINGS || (flags & Flag.ACK) !== 0) {
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "connection preface without SETTINGS");
      }
      this.settingsReceived = true;
    }
    if (this.block !== undefined && type !== FrameType.CONTINUATION) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "frame inside a header block");
    }
    switch (type) {
      case FrameType.DATA:
        this.onDataFrame(flags, streamId, payload);
        return;
      case FrameType.HEADERS:
        this.onHeaders(flags, streamId, payload);
        return;
      case FrameType.PRIORITY:
        this.flood.countPriority(FRAME_HEADER_BYTES + payload.length);
        this.onPriority(streamId, payload);
        return;
      case FrameType.RST_STREAM:
        this.flood.countOverhead(FRAME_HEADER_BYTES + payload.length);
        this.onReset(streamId, payload);
        return;
      case FrameType.SETTINGS:
        // ACKs count too, since this server sends one SETTINGS frame and no PING.
        this.flood.countControl("settings", FRAME_HEADER_BYTES + payload.length);
        this.onSettings(flags, streamId, payload);
        return;
      case FrameType.PUSH_PROMISE:
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE from a client");
      case FrameType.PING:
        this.flood.countControl("ping", FRAME_HEADER_BYTES + payload.length);
        this.onPing(flags, streamId, payload);
        return;
      case FrameType.GOAWAY:
        this.flood.countControl("goaway", FRAME_HEADER_BYTES + payload.length);
        if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream");
        if (payload.length < 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "short GOAWAY");
        this.peerGoaway = true;
        if (this.streams.size === 0) this.end();
        return;
      case FrameType.WINDOW_UPDATE:
        this.flood.countWindowUpdate(FRAME_HEADER_BYTES + payload.length);
        this.onWindowUpdate(streamId, payload);
        return;
      case FrameType.CONTINUATION:
        this.onContinuation(flags, streamId, payload);
        return;
      default:
        // Section 5.5: unknown frame types are ignored, but they still count against a bound.
        this.flood.countPriority(FRAME_HEADER_BYTES + payload.length);
        return;
    }
  }

  /** Removes padding (section 6.1); returns the payload without it. */
  private unpad(flags: number, payload: Buffer): Buffer {
    if ((flags & Flag.PADDED) === 0) return payload;
    if (payload.length < 1) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "padded frame without a pad length");
    const padLength = payload[0]!;
    if (padLength >= payload.length) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "padding longer than the frame");
    return payload.subarray(1, payload.length - padLength);
  }

  private onDataFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0");
    // Flow control counts the whole frame, padding included (section 6.9.1).
    this.receiveWindow -= payload.length;
    if (this.receiveWindow < 0) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "connection window exceeded");
    this.returnConnectionWindow(payload.length);
    const data = this.unpad(flags, payload);
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (data.length === 0 && !endStream) this.flood.countEmpty();

    const stream = this.streams.get(streamId);
    if (stream === undefined) {
      if (streamId > this.highestStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on an idle stream");
      // The connection window was credited above, and the data itself is dropped.
      if (this.answeredEarly.has(streamId)) return;
      throw new StreamError(streamId, ErrorCode.STREAM_CLOSED, "DATA on a closed stream");
    }
    if (stream.remoteClosed) throw new StreamError(streamId, ErrorCode.STREAM_CLOSED, "DATA after END_STREAM");
    stream.receiveWindow -= payload.length;
    if (stream.receiveWindow < 0) throw new StreamError(streamId, ErrorCode.FLOW_CONTROL_ERROR, "stream window exceeded");
    stream.receivedBodyBytes += data.length;
    stream.lastDataAtMs = this.clockMs;
    // Padding is returned at once; the data's window comes back as the handler reads it.
    stream.consumedBodyBytes += payload.length - data.length;
    if (stream.expectedBodyBytes !== undefined && stream.receivedBodyBytes > stream.expectedBodyBytes) {
      throw new StreamError(streamId, ErrorCode.PROTOCOL_ERROR, "more DATA than content-length");
    }
    if (data.length > 0) stream.body?.push(this.kept(data));
    if (endStream) this.remoteEnd(stream);
    this.returnStreamWindow(stream);
  }

  /** Returns bytes of a frame that outlive this read: a copy when reads share one buffer. */
  private kept(bytes: Buffer): Buffer {
    return this.sharedReads ? Buffer.from(bytes) : bytes;
  }

  private onHeaders(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0");
    let fragment = this.unpad(flags, payload);
    if ((flags & Flag.PRIORITY) !== 0) {
      if (fragment.length < 5) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "HEADERS priority fields missing");
      const dependency = fragment.readUInt32BE(0) & MAX_WINDOW;
      fragment = fragment.subarray(5);
      if (dependency === streamId) throw new StreamError(streamId, ErrorCode.PROTOCOL_ERROR, "stream depends on itself");
    }
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if ((flags & Flag.END_HEADERS) === 0) {
      if (fragment.length === 0) this.flood.countEmpty();
      this.block = { streamId, chunks: [this.kept(fragment)], bytes: fragment.length, endStream, startedAtMs: this.clockMs, continuations: 0 };
      this.checkBlockSize(fragment.length);
      return;
    }
    // A whole block is decoded before this read returns, so it needs no copy.
    this.onHeaderBlock(streamId, fragment, endStream);
  }

  private onContinuation(flags: number, streamId: number, payload: Buffer): void {
    const block = this.block;
    if (block === undefined || block.streamId !== streamId) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "CONTINUATION without a header block");
    }
    if (++block.continuations > MAX_CONTINUATION_FRAMES) {
      throw new FloodError("header_block", "too many CONTINUATION frames");
    }
    if (payload.length === 0 && (flags & Flag.END_HEADERS) === 0) this.flood.countEmpty();
    block.chunks.push(this.kept(payload));
    block.bytes += payload.length;
    this.checkBlockSize(block.bytes);
    if ((flags & Flag.END_HEADERS) === 0) return;
    this.block = undefined;
    this.onHeaderBlock(streamId, Buffer.concat(block.chunks, block.bytes), block.endStream);
  }

  /** Bounds a header block before decoding: a CONTINUATION flood is cut off here. */
  private checkBlockSize(bytes: number): void {
    if (bytes > 2 * this.limits.maxHeaderListBytes + 1024) {
      throw new FloodError("header_block", "header block too large");
    }
  }

  private onHeaderBlock(streamId: number, block: Buffer, endStream: boolean): void {
    // Every block goes through the decoder, so its table stays in step with the client's.
    const fields = this.decoder.decode(block, 2 * this.limits.maxHeaderListBytes);
    const existing = this.streams.get(streamId);
    if (existing !== undefined) {
      // Trailers (section 8.1): they end the stream and are otherwise not used.
      if (existing.remoteClosed) throw new StreamError(streamId, ErrorCode.STREAM_CLOSED, "HEADERS after END_STREAM");
      if (!endStream) throw new StreamError(streamId, ErrorCode.PROTOCOL_ERROR, "trailers without END_STREAM");
      if (fields.some(([name]) => name.startsWith(":"))) throw new StreamError(streamId, ErrorCode.PROTOCOL_ERROR, "pseudo-header in trailers");
      this.remoteEnd(existing);
      return;
    }
    if (streamId % 2 === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "even stream id from a client");
    // Trailers of a request whose stream was reset after its response are dropped. The block was decoded above.
    if (this.answeredEarly.has(streamId)) return;
    if (streamId <= this.highestStreamId) throw new ConnectionError(ErrorCode.STREAM_CLOSED, "HEADERS on a closed stream");
    this.highestStreamId = streamId;
    this.flood.streamsOpened++;
    // After GOAWAY, new streams are ignored (section 6.8); their header block was still decoded.
    if (this.goawaySent || this.peerGoaway) return;
    if (this.streams.size >= this.limits.maxConcurrentStreams) {
      throw new StreamError(streamId, ErrorCode.REFUSED_STREAM, "too many concurrent streams");
    }

    const stream = new Http2Stream(streamId, this.peerInitialWindow, STREAM_RECEIVE_WINDOW, this);
    this.streams.add(stream);
    const parsed = parseRequestFields(fields, this.decoder.validBits);
    if (!parsed.ok) throw new StreamError(streamId, ErrorCode.PROTOCOL_ERROR, parsed.reason);
    const head = parsed.head;
    stream.expectedBodyBytes = head.contentLength;
    if (endStream) {
      stream.remoteClosed = true;
      if (head.contentLength !== undefined && head.contentLength > 0) {
        throw new StreamError(streamId, ErrorCode.PROTOCOL_ERROR, "content-length without DATA");
      }
    } else {
      stream.lastDataAtMs = this.clockMs;
      stream.body = new RequestBody(() => this.bodyRead(stream));
    }
    const dispatch = this.dispatch;
    dispatch.startedAt = this.clockPerformanceMs;
    dispatch.receivedAtMs = this.clockMs;
    dispatch.headBytes = block.length;
    dispatch.headerListTooLarge = this.decoder.listBytes > this.limits.maxHeaderListBytes;
    dispatchRequest(stream, head, dispatch);
  }

  private onPriority(streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0");
    if (payload.length !== 5) throw new StreamError(streamId, ErrorCode.FRAME_SIZE_ERROR, "PRIORITY of the wrong size");
    if ((payload.readUInt32BE(0) & MAX_WINDOW) === streamId) {
      throw new StreamError(streamId, ErrorCode.PROTOCOL_ERROR, "stream depends on itself");
    }
  }

  private onReset(streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0");
    if (payload.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM of the wrong size");
    if (streamId > this.highestStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on an idle stream");
    // Resets that arrive faster than streams can finish are the rapid reset attack.
    this.flood.countReset();
    const stream = this.streams.get(streamId);
    if (stream !== undefined) this.closeStream(stream, true);
  }

  private onSettings(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream");
    if ((flags & Flag.ACK) !== 0) {
      if (payload.length !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      return;
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS of the wrong size");
    // Each entry may walk every open stream, so the entries of one frame are bounded too.
    if (payload.length > 6 * MAX_SETTINGS_ENTRIES) throw new FloodError("settings", "too many SETTINGS entries");
    for (let offset = 0; offset < payload.length; offset += 6) {
      const id = payload.readUInt16BE(offset);
      const value = payload.readUInt32BE(offset + 2);
      if (id === Setting.ENABLE_PUSH && value > 1) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "invalid SETTINGS_ENABLE_PUSH");
      if (id === Setting.INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "invalid SETTINGS_INITIAL_WINDOW_SIZE");
        // Section 6.9.2: the change applies to every open stream's window.
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const stream of this.streams.list()) {
          stream.sendWindow += delta;
          if (stream.sendWindow > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "stream window overflow");
        }
      }
      if (id === Setting.MAX_FRAME_SIZE) {
        if (value < DEFAULT_MAX_FRAME_SIZE || value > LARGEST_MAX_FRAME_SIZE) {
          throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "invalid SETTINGS_MAX_FRAME_SIZE");
        }
        this.peerMaxFrameSize = value;
      }
      if (id === Setting.HEADER_TABLE_SIZE) this.encoder.setPeerLimit(value);
    }
    this.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
    for (const stream of this.streams.list()) this.flushStream(stream);
  }

  private onPing(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PING on a stream");
    if (payload.length !== 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "PING of the wrong size");
    if ((flags & Flag.ACK) !== 0) return;
    this.write(frame(FrameType.PING, Flag.ACK, 0, payload));
  }

  private onWindowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE of the wrong size");
    const increment = payload.readUInt32BE(0) & MAX_WINDOW;
    if (streamId === 0) {
      if (increment === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "connection window overflow");
      for (const stream of this.streams.list()) {
        // A stream with no DATA queued and no writer waiting for room has nothing to gain.
        if (stream.pending.length > 0 || this.roomWaiters.has(stream)) this.flushStream(stream);
      }
      return;
    }
    const stream = this.streams.get(streamId);
    if (stream === undefined) {
      if (streamId > this.highestStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
      return;
    }
    if (increment === 0) throw new StreamError(streamId, ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) throw new StreamError(streamId, ErrorCode.FLOW_CONTROL_ERROR, "stream window overflow");
    this.flushStream(stream);
  }

  // Streams

  private remoteEnd(stream: Http2Stream): void {
    stream.remoteClosed = true;
    if (stream.expectedBodyBytes !== undefined && stream.receivedBodyBytes !== stream.expectedBodyBytes) {
      throw new StreamError(stream.id, ErrorCode.PROTOCOL_ERROR, "DATA shorter than content-length");
    }
    stream.body?.push(null);
    if (stream.closed) this.closeStream(stream, false);
  }

  private localEnd(stream: Http2Stream): void {
    stream.localClosed = true;
    if (stream.remoteClosed) {
      this.closeStream(stream, false);
      return;
    }
    // The response is complete before the request body, so the rest of the body is of no use.
    // RST_STREAM with NO_ERROR after END_STREAM requests that the client stop sending it (section 8.1).
    this.write(rstStreamFrame(stream.id, ErrorCode.NO_ERROR));
    this.answeredEarly.add(stream.id);
    if (this.answeredEarly.size > this.limits.maxConcurrentStreams) {
      this.answeredEarly.delete(this.answeredEarly.values().next().value!);
    }
    this.closeStream(stream, true);
  }

  private closeStream(stream: Http2Stream, reset: boolean): void {
    if (reset) stream.reset = true;
    if (this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    if (reset && stream.body !== undefined && !stream.remoteClosed) stream.body.destroy(new Error("stream reset"));
    stream.pending.length = 0;
    this.releaseRoom(stream, !reset);
    stream.response.closed();
    if (this.streams.size === 0) {
      this.deadlineMs = (this.clockMs || Date.now()) + this.limits.idleTimeoutMs;
      if (this.draining || this.peerGoaway) this.end();
    }
  }

  /** Writes what the windows allow of a stream's queued DATA. */
  private flushStream(stream: Http2Stream): void {
    // Frame headers and body slices go out in one corked write, without copying the body.
    this.socket.cork();
    try {
      this.flushStreamFrames(stream);
    } finally {
      this.socket.uncork();
    }
    if (stream.pending.length === 0 && !this.congested) this.releaseRoom(stream, true);
  }

  private flushStreamFrames(stream: Http2Stream): void {
    while (stream.pending.length > 0 && !stream.reset) {
      // The socket's 'drain' flushes every stream again.
      if (this.socket.writableLength > MAX_UNSENT_BYTES) break;
      const next = stream.pending[0]!;
      const allowed = Math.min(next.data.length, stream.sendWindow, this.sendWindow, this.peerMaxFrameSize, MAX_DATA_FRAME_BYTES);
      if (allowed <= 0 && next.data.length > 0) {
        // A client that ended its side can never open its windows again.
        if (this.peerEnded) this.closeStream(stream, true);
        break;
      }
      const part = allowed === next.data.length ? next.data : next.data.subarray(0, allowed);
      const last = part.length === next.data.length;
      const end = last && next.end;
      const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
      writeFrameHeader(header, 0, part.length, FrameType.DATA, end ? Flag.END_STREAM : 0, stream.id);
      this.flood.dataFramesSent++;
      stream.sendWindow -= part.length;
      this.sendWindow -= part.length;
      this.write(header);
      if (part.length > 0) this.write(part);
      if (last) stream.pending.shift();
      else next.data = next.data.subarray(allowed);
      if (end) {
        this.localEnd(stream);
        return;
      }
    }
  }

  private releaseRoom(stream: Http2Stream, open: boolean): void {
    const waiters = this.roomWaiters.get(stream);
    if (waiters === undefined) return;
    this.roomWaiters.delete(stream);
    for (const resolve of waiters) resolve(open);
  }

  private bodyRead(stream: Http2Stream): void {
    // The handler took what was pushed: return that much window to the client.
    stream.consumedBodyBytes = stream.receivedBodyBytes;
    this.returnStreamWindow(stream);
  }

  private returnStreamWindow(stream: Http2Stream): void {
    if (stream.remoteClosed || stream.reset) return;
    const granted = STREAM_RECEIVE_WINDOW - stream.receiveWindow;
    const readable = stream.body === undefined || stream.body.readableLength < STREAM_RECEIVE_WINDOW / 2;
    // Updates go out in halves of the window, and only while the handler keeps up.
    if (!readable || granted < STREAM_RECEIVE_WINDOW / 2) return;
    stream.receiveWindow += granted;
    this.write(windowUpdateFrame(stream.id, granted));
  }

  private returnConnectionWindow(bytes: number): void {
    this.receivedSinceUpdate += bytes;
    if (this.receivedSinceUpdate < CONNECTION_RECEIVE_WINDOW / 2) return;
    this.receiveWindow += this.receivedSinceUpdate;
    this.write(windowUpdateFrame(0, this.receivedSinceUpdate));
    this.receivedSinceUpdate = 0;
  }

  // Output and errors

  private headersFrames(streamId: number, block: Uint8Array, endStream: boolean): Buffer {
    const maxFrame = this.peerMaxFrameSize;
    if (block.length <= maxFrame) {
      const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + block.length);
      writeFrameHeader(out, 0, block.length, FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), streamId);
      out.set(block, FRAME_HEADER_BYTES);
      return out;
    }
    const frames: Buffer[] = [];
    for (let offset = 0; offset < block.length; offset += maxFrame) {
      const part = block.subarray(offset, Math.min(block.length, offset + maxFrame));
      const first = offset === 0;
      const last = offset + maxFrame >= block.length;
      const type = first ? FrameType.HEADERS : FrameType.CONTINUATION;
      const flags = (last ? Flag.END_HEADERS : 0) | (first && endStream ? Flag.END_STREAM : 0);
      frames.push(frame(type, flags, streamId, part));
    }
    return Buffer.concat(frames);
  }

  private write(data: Buffer): void {
    if (this.closed) return;
    this.bytesHanded += data.length;
    if (!this.socket.write(data) && !this.congested) {
      // Stop reading requests until the viewer takes what was written.
      this.congested = true;
      this.socket.pause();
    }
  }

  private onDrain(): void {
    this.congested = false;
    this.socket.resume();
    for (const stream of this.streams.list()) this.flushStream(stream);
    if (this.input.length > 0 && !this.congested) this.onData(EMPTY);
  }

  private streamError(error: StreamError): void {
    this.write(rstStreamFrame(error.streamId, error.code));
    const stream = this.streams.get(error.streamId);
    if (stream !== undefined) this.closeStream(stream, true);
  }

  private connectionError(error: ConnectionError): void {
    if (this.closed) return;
    if (error instanceof FloodError) {
      // Logged once: the connection closes below, and a closed connection reports nothing more.
      this.log.warn({ kind: error.kind, reason: error.message, clientIp: this.clientIp }, "HTTP/2 flood; closing the connection");
      this.onFlood(error.kind);
    } else {
      this.log.info({ code: error.code, reason: error.message, clientIp: this.clientIp }, "HTTP/2 connection error");
    }
    this.sendGoaway(error.code, error.message);
    this.end();
  }

  private sendGoaway(code: number, debug: string): void {
    if (this.goawaySent) return;
    this.goawaySent = true;
    this.write(goawayFrame(this.highestStreamId, code, debug));
  }

  private end(): void {
    if (this.closed) return;
    this.closed = true;
    for (const stream of this.streams.list()) this.closeStream(stream, true);
    this.socket.end();
    // A viewer that never reads the GOAWAY must not hold the socket open.
    setTimeout(() => this.socket.destroy(), 1_000).unref();
  }

  /**
   * Handles the end of the client's side: no frame can follow. Streams whose
   * request arrived whole still get their responses, and the connection
   * closes after the last one. A stream still waiting for request body
   * bytes, or for the client's flow-control window, can never complete, so
   * it is reset.
   */
  private onPeerEnd(): void {
    if (this.closed) return;
    this.peerEnded = true;
    this.draining = true;
    for (const stream of this.streams.list()) {
      if (!stream.remoteClosed) this.closeStream(stream, true);
      // A response waiting for the client's window is reset: no WINDOW_UPDATE can arrive.
      else if (stream.pending.length > 0) this.flushStream(stream);
    }
    if (this.streams.size === 0) this.end();
  }

  private onSocketClose(): void {
    this.closed = true;
    for (const stream of this.streams.list()) this.closeStream(stream, true);
    this.onClose(this);
  }
}
