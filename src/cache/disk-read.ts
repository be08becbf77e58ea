import { open, type FileHandle } from "node:fs/promises";
import { Readable } from "node:stream";
import { crc32 } from "node:zlib";
import { closeThenCallback } from "../common/file-handle.js";
import { blockTableOffset, BLOCK_BYTES, CHECKSUM_BYTES } from "./disk-format.js";

/** The location of a disk entry's body in its file. */
export interface BodyLocation {
  path: string;
  bodyOffset: number;
  bodyBytes: number;
}

/** Block checksums read from the file at a time: 16 KiB of them, for 256 MiB of body. */
const CHECKSUMS_PER_READ = 4096;

/**
 * Reads bytes `start` to `end` (inclusive) of a disk entry's body, a whole
 * block at a time, and checks each block against its checksum before passing
 * on any of its bytes. A block that fails, or a file cut short, fails the
 * stream after the blocks before it and calls `onCorrupt`: a viewer then gets
 * a response that ends short, never a wrong byte.
 */
export class VerifiedBodyReader extends Readable {
  private handle: FileHandle | undefined;
  private block: number;
  private readonly lastBlock: number;
  private checksums = Buffer.alloc(0);
  /** The block whose checksum is first in `checksums`. */
  private checksumsFrom = 0;

  constructor(
    private readonly location: BodyLocation,
    private readonly start: number,
    private readonly end: number,
    private readonly onCorrupt: () => void,
  ) {
    super({ highWaterMark: BLOCK_BYTES });
    this.block = Math.floor(start / BLOCK_BYTES);
    this.lastBlock = end < start ? this.block - 1 : Math.floor(end / BLOCK_BYTES);
  }

  override _construct(callback: (error?: Error | null) => void): void {
    open(this.location.path, "r").then(
      (handle) => {
        this.handle = handle;
        callback();
      },
      (error: Error) => callback(error),
    );
  }

  override _read(): void {
    if (this.block > this.lastBlock) {
      this.push(null);
      return;
    }
    const block = this.block++;
    this.readBlock(block).then(
      (bytes) => {
        if (bytes !== undefined) this.push(bytes);
      },
      (error: Error) => this.destroy(error),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const handle = this.handle;
    this.handle = undefined;
    closeThenCallback(handle, error, callback);
  }

  /** Reads, checks and trims one block; undefined when the stream ended meanwhile. */
  private async readBlock(block: number): Promise<Buffer | undefined> {
    const { bodyOffset, bodyBytes } = this.location;
    const blockStart = block * BLOCK_BYTES;
    const length = Math.min(BLOCK_BYTES, bodyBytes - blockStart);
    const expected = await this.checksumOf(block);
    const handle = this.handle;
    if (handle === undefined || expected === undefined) return undefined;
    const bytes = Buffer.allocUnsafe(length);
    const { bytesRead } = await handle.read(bytes, 0, length, bodyOffset + blockStart);
    if (this.destroyed) return undefined;
    if (bytesRead !== length || crc32(bytes) !== expected) {
      this.onCorrupt();
      throw new Error("disk cache entry failed verification");
    }
    const from = Math.max(0, this.start - blockStart);
    const to = Math.min(length, this.end - blockStart + 1);
    return from === 0 && to === length ? bytes : bytes.subarray(from, to);
  }

  /** Returns a block's checksum, reading the next run of checksums from the file when needed. */
  private async checksumOf(block: number): Promise<number | undefined> {
    let index = block - this.checksumsFrom;
    if (index < 0 || (index + 1) * CHECKSUM_BYTES > this.checksums.length) {
      const handle = this.handle;
      if (handle === undefined) return undefined;
      const count = Math.min(CHECKSUMS_PER_READ, this.lastBlock - block + 1);
      const checksums = Buffer.alloc(count * CHECKSUM_BYTES);
      const position = blockTableOffset(this.location.bodyOffset, this.location.bodyBytes) + block * CHECKSUM_BYTES;
      const { bytesRead } = await handle.read(checksums, 0, checksums.length, position);
      // A table cut short leaves the block without a checksum, which fails it.
      if (bytesRead < CHECKSUM_BYTES) return -1;
      this.checksums = checksums.subarray(0, bytesRead - (bytesRead % CHECKSUM_BYTES));
      this.checksumsFrom = block;
      index = 0;
    }
    return this.checksums.readUInt32BE(index * CHECKSUM_BYTES);
  }
}
