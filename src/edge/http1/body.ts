import { Readable } from "node:stream";
import { HeadError } from "./parser.js";

/** Maximum length of a chunk-size line, extensions included. Longer ones get 400. */
const MAX_CHUNK_LINE_BYTES = 4096;
/** Maximum size of the trailer section of a chunked body. Larger ones get 400. */
const MAX_TRAILER_BYTES = 8192;

/** A request body that the connection pushes bytes into as they arrive. */
export class RequestBody extends Readable {
  constructor(private readonly resumeSource: () => void) {
    super();
    // The connection sends the error response for a framing error itself, and a consumer may not listen for it.
    this.on("error", () => {});
  }

  override _read(): void {
    this.resumeSource();
  }
}

/** Reads a body of a known length from the connection's bytes. */
export class LengthDecoder {
  private remainingBytes: number;

  constructor(lengthBytes: number) {
    this.remainingBytes = lengthBytes;
  }

  /** Takes what belongs to the body from `chunk`; returns the bytes used. */
  feed(chunk: Buffer, emit: (data: Buffer) => void): number {
    const used = Math.min(this.remainingBytes, chunk.length);
    if (used > 0) emit(used === chunk.length ? chunk : chunk.subarray(0, used));
    this.remainingBytes -= used;
    return used;
  }

  get done(): boolean {
    return this.remainingBytes === 0;
  }
}

type ChunkState = "size" | "data" | "data-end" | "trailer";

/**
 * Decodes chunked transfer coding (RFC 9112 section 7.1) strictly: hex
 * sizes of at most 15 digits, CRLF everywhere, bounded extension and
 * trailer lengths. Trailer fields are read and dropped.
 */
export class ChunkedDecoder {
  private state: ChunkState = "size";
  private line = "";
  private remainingBytes = 0;
  private trailerBytes = 0;
  done = false;

  /** Takes what belongs to the body from `chunk`; returns the bytes used. Throws HeadError on bad framing. */
  feed(chunk: Buffer, emit: (data: Buffer) => void): number {
    let position = 0;
    while (position < chunk.length && !this.done) {
      if (this.state === "data") {
        const take = Math.min(this.remainingBytes, chunk.length - position);
        emit(chunk.subarray(position, position + take));
        position += take;
        this.remainingBytes -= take;
        if (this.remainingBytes === 0) this.state = "data-end";
        continue;
      }
      const lineEnd = chunk.indexOf(0x0a, position);
      const piece = chunk.toString("latin1", position, lineEnd < 0 ? chunk.length : lineEnd + 1);
      position += piece.length;
      this.line += piece;
      const limit = this.state === "trailer" ? MAX_TRAILER_BYTES : MAX_CHUNK_LINE_BYTES;
      if (this.line.length > limit) throw new HeadError(400, "chunked body line too long");
      if (lineEnd < 0) break;
      if (!this.line.endsWith("\r\n")) throw new HeadError(400, "chunked body line not ended by CRLF");
      const line = this.line.slice(0, -2);
      this.line = "";
      this.takeLine(line);
    }
    return position;
  }

  private takeLine(line: string): void {
    switch (this.state) {
      case "size": {
        const match = /^([0-9A-Fa-f]{1,15})(;.*)?$/.exec(line);
        if (match === null || /[\0-\x08\x0a-\x1f\x7f]/.test(match[2] ?? "")) {
          throw new HeadError(400, "invalid chunk size");
        }
        this.remainingBytes = parseInt(match[1]!, 16);
        this.state = this.remainingBytes === 0 ? "trailer" : "data";
        return;
      }
      case "data-end":
        if (line !== "") throw new HeadError(400, "chunk data longer than its size");
        this.state = "size";
        return;
      case "trailer":
        if (line === "") {
          this.done = true;
          return;
        }
        this.trailerBytes += line.length + 2;
        if (this.trailerBytes > MAX_TRAILER_BYTES) throw new HeadError(400, "chunked trailer section too large");
        if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*$/.test(line)) {
          throw new HeadError(400, "invalid trailer field");
        }
        return;
      case "data":
        return;
    }
  }
}
