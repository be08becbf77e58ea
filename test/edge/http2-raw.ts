import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import { HpackDecoder, type HeaderField } from "../../src/edge/http2/hpack.js";

/**
 * A minimal HTTP/2 client for tests of bad input: it writes frames exactly
 * as given and reads the server's frames back, with no checks of its own.
 * Header blocks are literals without indexing or Huffman coding (RFC 7541
 * section 6.2.2), built here independently of the server's encoder.
 */

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

export const T = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 };
export const F = { END_STREAM: 1, ACK: 1, END_HEADERS: 4, PADDED: 8 };

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

export function literal(text: string): Buffer {
  const bytes = Buffer.from(text, "latin1");
  if (bytes.length >= 127) {
    // Length 127 or more: prefix 127 and the rest in 7-bit groups (RFC 7541 section 5.1).
    const rest: number[] = [];
    let value = bytes.length - 127;
    while (value >= 128) {
      rest.push((value % 128) | 128);
      value = Math.floor(value / 128);
    }
    rest.push(value);
    return Buffer.concat([Buffer.from([127, ...rest]), bytes]);
  }
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
}

/** Encodes fields as literals without indexing, with literal names. */
export function headerBlock(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  return Buffer.concat(fields.flatMap(([name, value]) => [Buffer.from([0]), literal(name), literal(value)]));
}

export function requestFields(host: string, path: string, extra: ReadonlyArray<readonly [string, string]> = [], method = "GET"): Array<readonly [string, string]> {
  return [[":method", method], [":scheme", "https"], [":path", path], [":authority", host], ...extra];
}

export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export class RawHttp2Client {
  readonly frames: Frame[] = [];
  closed = false;
  private buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      while (this.buffer.length >= 9) {
        const length = this.buffer.readUIntBE(0, 3);
        if (this.buffer.length < 9 + length) break;
        this.frames.push({
          type: this.buffer[3]!,
          flags: this.buffer[4]!,
          streamId: this.buffer.readUInt32BE(5) & 0x7fffffff,
          payload: Buffer.from(this.buffer.subarray(9, 9 + length)),
        });
        this.buffer = this.buffer.subarray(9 + length);
      }
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => {});
  }

  /** Connects with ALPN h2; sends the preface and SETTINGS unless `preface` is false. */
  static async connect(port: number, servername: string, ca: Buffer, options: { preface?: boolean; settings?: Buffer } = {}): Promise<RawHttp2Client> {
    const socket = connectTls({ host: "127.0.0.1", port, servername, ca, ALPNProtocols: ["h2"] });
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", reject);
    });
    const client = new RawHttp2Client(socket);
    if (options.preface !== false) client.send(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0, options.settings ?? Buffer.alloc(0))]));
    return client;
  }

  /** Connects without TLS (h2c) and sends nothing, so the test writes the preface itself. */
  static async connectPlain(port: number): Promise<RawHttp2Client> {
    const socket = connectTcp(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return new RawHttp2Client(socket);
  }

  send(data: Buffer): void {
    this.socket.write(data);
  }

  /** Waits until a frame matches, or the connection closes, or `timeoutMs` passes. */
  async waitFor(match: (frame: Frame) => boolean, timeoutMs = 3000): Promise<Frame | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(match);
      if (found !== undefined) return found;
      if (this.closed || Date.now() >= deadline) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /**
   * Decodes the response fields of a stream. The server's blocks share the
   * connection's HPACK table, so every HEADERS block received up to that
   * stream's is decoded in order (none of these tests gets CONTINUATION).
   */
  responseFields(streamId: number): HeaderField[] | undefined {
    const decoder = new HpackDecoder(4096);
    for (const f of this.frames) {
      if (f.type !== T.HEADERS) continue;
      const fields = decoder.decode(f.payload, 1 << 20);
      if (f.streamId === streamId) return fields;
    }
    return undefined;
  }

  /** Returns the `:status` of a stream's response, once its HEADERS arrived. */
  statusOf(streamId: number): number | undefined {
    const status = this.responseFields(streamId)?.find(([name]) => name === ":status");
    return status === undefined ? undefined : Number(status[1]);
  }

  /** Returns the GOAWAY error code the server sent, waiting for it. */
  async goawayCode(timeoutMs = 3000): Promise<number | undefined> {
    const goaway = await this.waitFor((f) => f.type === T.GOAWAY, timeoutMs);
    return goaway?.payload.readUInt32BE(4);
  }

  /** Returns the RST_STREAM error code the server sent for a stream, waiting for it. */
  async resetCode(streamId: number, timeoutMs = 3000): Promise<number | undefined> {
    const reset = await this.waitFor((f) => f.type === T.RST_STREAM && f.streamId === streamId, timeoutMs);
    return reset?.payload.readUInt32BE(0);
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
