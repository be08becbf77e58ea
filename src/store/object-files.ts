import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fsyncDirectory } from "../common/durable.js";
import type { ObjectSegment } from "./metadata.js";

/** An inclusive byte range of an object, as in an HTTP Range header. */
export interface ByteRange {
  start: number;
  end: number;
}

/** Chunk size of object reads; larger than the 64 KiB default to cut per-chunk overhead on big objects. */
const READ_CHUNK_BYTES = 256 * 1024;

/** Writes a stream to an open file handle that stays open, so the caller can fsync it. */
class FileSink extends Writable {
  constructor(private readonly handle: FileHandle) {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeAll(chunk).then(() => callback(), callback);
  }

  private async writeAll(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      const { bytesWritten } = await this.handle.write(chunk, offset, chunk.length - offset);
      offset += bytesWritten;
    }
  }
}

/**
 * Object bytes on disk. Each object or part is one file named by a random
 * internal id, never by its key, so any key (`..`, `//`, 1024 bytes, any
 * Unicode) maps to a safe file name. Writes go to `tmp/` first and are renamed
 * into `objects/<first two id characters>/<id>` only once they are fsynced.
 */
export class ObjectFiles {
  readonly objectsDir: string;
  readonly tempDir: string;

  constructor(storeDir: string) {
    this.objectsDir = join(storeDir, "objects");
    this.tempDir = join(storeDir, "tmp");
  }

  /** Creates the folders and removes temporary files left by an interrupted write. */
  async open(): Promise<void> {
    await mkdir(this.objectsDir, { recursive: true });
    await rm(this.tempDir, { recursive: true, force: true });
    await mkdir(this.tempDir, { recursive: true });
  }

  newId(): string {
    return randomBytes(16).toString("hex");
  }

  pathOf(fileId: string): string {
    return join(this.objectsDir, fileId.slice(0, 2), fileId);
  }

  /**
   * Streams `source` into a new temporary file through `through` (transforms
   * that hash or verify), fsyncs it and returns its path. On any error the
   * temporary file is removed and the error is raised again.
   */
  async writeTemp(source: Readable, through: Array<NodeJS.ReadWriteStream> = []): Promise<string> {
    const tempPath = join(this.tempDir, `${this.newId()}.tmp`);
    const handle = await open(tempPath, "wx", 0o644);
    try {
      await pipeline([source, ...through, new FileSink(handle)]);
      await handle.sync();
    } catch (error) {
      await handle.close().catch(() => {});
      await unlink(tempPath).catch(() => {});
      throw error;
    }
    await handle.close();
    return tempPath;
  }

  /** Moves a fsynced temporary file to its final name and makes the rename durable. */
  async commit(tempPath: string, fileId: string): Promise<void> {
    const folder = join(this.objectsDir, fileId.slice(0, 2));
    await mkdir(folder, { recursive: true });
    await rename(tempPath, join(folder, fileId));
    await fsyncDirectory(folder);
  }

  async discardTemp(tempPath: string): Promise<void> {
    await unlink(tempPath).catch(() => {});
  }

  /** Removes a file whose metadata no longer refers to it; a missing file is not an error. */
  async remove(fileId: string): Promise<void> {
    await unlink(this.pathOf(fileId)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
  }

  /**
   * Reads `range` of a one-file object into memory with a single positioned
   * read, which costs fewer thread-pool round trips than a stream. For small
   * objects only: the caller bounds the length.
   */
  async readSmall(fileId: string, range: ByteRange): Promise<Buffer> {
    const handle = await open(this.pathOf(fileId), "r");
    try {
      const lengthBytes = range.end - range.start + 1;
      const buffer = Buffer.allocUnsafe(lengthBytes);
      let offset = 0;
      while (offset < lengthBytes) {
        const { bytesRead } = await handle.read(buffer, offset, lengthBytes - offset, range.start + offset);
        if (bytesRead === 0) throw new Error(`object file ${fileId} is shorter than its metadata says`);
        offset += bytesRead;
      }
      return buffer;
    } finally {
      await handle.close();
    }
  }

  /**
   * Opens a read stream over the bytes `start` to `end` (inclusive) of an
   * object stored as `segments`. The first file is opened before this returns,
   * so a caller can retry on ENOENT when an overwrite removed it meanwhile.
   */
  async openRead(segments: ObjectSegment[], range: ByteRange): Promise<Readable> {
    const pieces: Array<{ fileId: string; start: number; end: number }> = [];
    let offset = 0;
    for (const segment of segments) {
      const segmentEnd = offset + segment.sizeBytes - 1;
      if (segment.sizeBytes > 0 && segmentEnd >= range.start && offset <= range.end) {
        pieces.push({ fileId: segment.fileId, start: Math.max(range.start, offset) - offset, end: Math.min(range.end, segmentEnd) - offset });
      }
      offset += segment.sizeBytes;
    }
    if (pieces.length === 0) return Readable.from([]);
    const first = pieces[0]!;
    const handle = await open(this.pathOf(first.fileId), "r");
    const firstStream = handle.createReadStream({ start: first.start, end: first.end, highWaterMark: READ_CHUNK_BYTES });
    if (pieces.length === 1) return firstStream;

    // NOTE: later segments open only when the reader reaches them, so an
    // overwrite that removes them during a long read cuts the response short.
    const paths = pieces.slice(1).map((piece) => ({ ...piece, path: this.pathOf(piece.fileId) }));
    async function* chunks(): AsyncGenerator<Buffer> {
      for await (const chunk of firstStream) yield chunk as Buffer;
      for (const piece of paths) {
        const stream = createReadStream(piece.path, { start: piece.start, end: piece.end, highWaterMark: READ_CHUNK_BYTES });
        for await (const chunk of stream) yield chunk as Buffer;
      }
    }
    return Readable.from(chunks(), { objectMode: false, highWaterMark: READ_CHUNK_BYTES });
  }

  /**
   * Removes object files that no metadata row refers to: a crash between the
   * rename and the metadata commit, or between a metadata delete and the unlink,
   * leaves such files behind. Returns how many were removed.
   */
  async removeOrphans(isReferenced: (fileId: string) => boolean): Promise<number> {
    let removed = 0;
    for (const folder of await readdir(this.objectsDir)) {
      const folderPath = join(this.objectsDir, folder);
      let names: string[];
      try {
        names = await readdir(folderPath);
      } catch {
        continue;
      }
      for (const name of names) {
        if (isReferenced(name)) continue;
        await unlink(join(folderPath, name)).catch(() => {});
        removed += 1;
      }
    }
    return removed;
  }
}
