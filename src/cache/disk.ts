import { createHash, randomBytes, type Hash } from "node:crypto";
import { createWriteStream, type WriteStream } from "node:fs";
import { EventEmitter } from "node:events";
import { mkdir, open, readdir, readFile, rename, rm, unlink } from "node:fs/promises";
import { join } from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import type { Logger } from "../common/logger.js";
import {
  BlockHasher,
  decodeHead,
  decodeVerified,
  DIGEST_BYTES,
  encodeEntry,
  encodeHead,
  encodeTrailer,
  entryFileBytes,
  HEAD_PREFIX_BYTES,
  headDigestOffset,
  headLength,
  sha256,
  type DiskMetadata,
} from "./disk-format.js";
import { SieveCache } from "./sieve.js";

export type { DiskMetadata } from "./disk-format.js";

interface IndexRecord {
  path: string;
  distributionId: string;
  invalidationPaths: string[];
  bodyOffset: number;
  bodyBytes: number;
  staleAtMs: number;
  storedAtMs: number;
  /** Headers and freshness from a revalidation, which the file's head predates. */
  refreshed?: MetadataRefresh;
}

/** The fields of a stored entry that a 304 changes: its headers and its freshness. */
export type MetadataRefresh = Pick<
  DiskMetadata,
  | "originHeaders"
  | "responseAtMs"
  | "initialAgeSeconds"
  | "ttlSeconds"
  | "staleAtMs"
  | "staleWhileRevalidateSeconds"
  | "staleIfErrorSeconds"
  | "mustRevalidate"
  | "storedAtMs"
>;

/** Returns the fields of `metadata` that a 304 changes. */
export function refreshOf(metadata: MetadataRefresh): MetadataRefresh {
  const { originHeaders, responseAtMs, initialAgeSeconds, ttlSeconds, staleAtMs } = metadata;
  const { staleWhileRevalidateSeconds, staleIfErrorSeconds, mustRevalidate, storedAtMs } = metadata;
  return {
    originHeaders,
    responseAtMs,
    initialAgeSeconds,
    ttlSeconds,
    staleAtMs,
    staleWhileRevalidateSeconds,
    staleIfErrorSeconds,
    mustRevalidate,
    storedAtMs,
  };
}

export interface DiskTierOptions {
  /** The folder of this tier, such as `<dataDir>/cache/<edgeId>`. */
  directory: string;
  capacityBytes: number;
  log: Logger;
}

/** A disk entry to stream from its file, whose head has passed its check. */
export interface DiskStreamTarget {
  path: string;
  bodyOffset: number;
  bodyBytes: number;
  metadata: DiskMetadata;
  /** The file's inode number, which distinguishes a file from a later one written to the same path. */
  inode: number;
  /** Whether the file belongs to another edge worker's tier, which this process must not remove. */
  peer?: boolean;
}

/**
 * The disk tier: one file per entry, bounded in bytes, evicted with SIEVE.
 * Writes go to a temporary file that is fsynced and renamed into place, so
 * a crash never leaves a partial entry visible. Whole reads verify the
 * SHA-256 of the whole file. Streamed reads verify the head's digest and
 * the checksum of each block they read. A corrupt entry is removed and
 * reported as a miss. The index is rebuilt from the files' heads on open.
 */
export class DiskTier {
  private readonly index: SieveCache<IndexRecord>;
  private readonly keysByDistribution = new Map<string, Set<string>>();
  private readonly objectsDirectory: string;
  private readonly tempDirectory: string;
  /** Vary names of stored entries found on open, by primary key. */
  readonly varyOnOpen = new Map<string, string[]>();
  /** The publication of each key in progress, which a later one of the same key waits for. */
  private readonly publishing = new Map<string, Promise<boolean>>();

  private constructor(private readonly options: DiskTierOptions) {
    this.objectsDirectory = join(options.directory, "objects");
    this.tempDirectory = join(options.directory, "tmp");
    this.index = new SieveCache<IndexRecord>(options.capacityBytes, (key, record) => {
      this.forget(record.distributionId, key);
      void unlink(record.path).catch(() => {});
    });
  }

  /** Opens the tier: clears unfinished writes and indexes every entry whose head is valid. */
  static async open(options: DiskTierOptions): Promise<DiskTier> {
    const tier = new DiskTier(options);
    await rm(tier.tempDirectory, { recursive: true, force: true });
    await mkdir(tier.tempDirectory, { recursive: true });
    await mkdir(tier.objectsDirectory, { recursive: true });
    let loaded = 0;
    let dropped = 0;
    for (const shard of await readdir(tier.objectsDirectory)) {
      const shardPath = join(tier.objectsDirectory, shard);
      for (const name of await readdir(shardPath).catch(() => [] as string[])) {
        const path = join(shardPath, name);
        if (await tier.indexFile(path)) loaded++;
        else {
          dropped++;
          await unlink(path).catch(() => {});
        }
      }
    }
    options.log.info({ directory: options.directory, loaded, dropped, usedBytes: tier.usedBytes }, "disk cache opened");
    return tier;
  }

  get usedBytes(): number {
    return this.index.usedBytes;
  }

  /** Bytes reserved for writes in progress, which count against the budget beside `usedBytes`. */
  get reservedBytes(): number {
    return this.index.outsideBytes;
  }

  get entryCount(): number {
    return this.index.size;
  }

  get capacityBytes(): number {
    return this.index.capacityBytes;
  }

  has(key: string): boolean {
    return this.index.peek(key) !== undefined;
  }

  /** Reads and verifies a whole entry; a corrupt or vanished file is removed and returns undefined. */
  async read(key: string): Promise<{ metadata: DiskMetadata; body: Buffer } | undefined> {
    const record = this.index.get(key);
    if (record === undefined) return undefined;
    let file: Buffer;
    try {
      file = await readFile(record.path);
    } catch {
      this.remove(key);
      return undefined;
    }
    const decoded = decodeVerified(file);
    if (decoded === undefined || decoded.metadata.key !== key) {
      this.options.log.warn({ key, path: record.path }, "disk cache entry failed verification; removed it");
      await this.delete(key);
      return undefined;
    }
    return decoded;
  }

  /** Returns where a large entry's body is, to stream it without reading it whole. */
  async streamTarget(key: string): Promise<DiskStreamTarget | undefined> {
    const record = this.index.get(key);
    if (record === undefined) return undefined;
    const head = await readHead(record.path, true);
    if (head === undefined || head.metadata.key !== key) {
      this.options.log.warn({ key, path: record.path }, "disk cache entry failed verification; removed it");
      await this.delete(key);
      return undefined;
    }
    const metadata = record.refreshed === undefined ? head.metadata : { ...head.metadata, ...record.refreshed };
    return { path: record.path, bodyOffset: head.bodyOffset, bodyBytes: head.metadata.bodyBytes, metadata, inode: head.inode };
  }

  /**
   * Records what a revalidation of a large entry changed, without rewriting
   * its file: stream targets carry the new headers and freshness from now on.
   * The file keeps its old head, so after a restart the entry is revalidated
   * again, as every entry from before a restart is.
   */
  refresh(key: string, refreshed: MetadataRefresh): void {
    const record = this.index.peek(key);
    if (record === undefined) return;
    record.refreshed = refreshed;
    record.staleAtMs = refreshed.staleAtMs;
  }

  /** Size of the body of an indexed entry, without reading it. */
  bodyBytesOf(key: string): number | undefined {
    return this.index.peek(key)?.bodyBytes;
  }

  /** Writes a whole entry durably; returns false when it does not fit or the write failed. */
  async write(metadata: DiskMetadata, body: Buffer): Promise<boolean> {
    const parts = encodeEntry(metadata, body);
    const headBytes = parts[0]!.length;
    const sizeBytes = entryFileBytes(headBytes, body.length);
    // Counted from the start, like a streamed write, so concurrent writes stay within the budget.
    if (!this.index.reserve(sizeBytes)) return false;
    let reserved = true;
    const release = (): void => {
      if (reserved) this.index.removeOutside(sizeBytes);
      reserved = false;
    };
    const tempPath = this.tempPath();
    try {
      const handle = await open(tempPath, "w");
      try {
        await handle.writev(parts);
        await handle.sync();
      } finally {
        await handle.close();
      }
      return await this.publish(tempPath, metadata, headBytes, sizeBytes, release);
    } catch (error) {
      release();
      this.options.log.warn({ err: error, key: metadata.key }, "disk cache write failed");
      await unlink(tempPath).catch(() => {});
      return false;
    }
  }

  /**
   * Returns a stream that passes an origin body through while writing it to
   * the tier, or undefined when the entry cannot fit beside the writes
   * already in progress. The entry's size counts against the budget from the
   * start, so files being written never take the tier past it. The entry is
   * published when the body ends with exactly `metadata.bodyBytes` bytes;
   * `stored` resolves to whether it was.
   */
  tee(metadata: DiskMetadata): { tap: Transform; stored: Promise<boolean>; progress: WriteProgress } | undefined {
    const head = encodeHead(metadata);
    const sizeBytes = entryFileBytes(head.length, metadata.bodyBytes);
    if (!this.index.reserve(sizeBytes)) return undefined;
    const tempPath = this.tempPath();
    const progress = new WriteProgress(tempPath, head.length, metadata.bodyBytes);
    let resolveStored: (stored: boolean) => void = () => {};
    const stored = new Promise<boolean>((resolve) => (resolveStored = resolve));
    const tap = new DiskTap(head, tempPath, progress, async (ok) => {
      if (!ok) {
        this.index.removeOutside(sizeBytes);
        progress.end(false);
        await unlink(tempPath).catch(() => {});
        resolveStored(false);
        return;
      }
      // The reservation turns into the entry's own size as it is indexed.
      const published = await this.publish(tempPath, metadata, head.length, sizeBytes, () => {
        this.index.removeOutside(sizeBytes);
        progress.path = this.pathOf(metadata.key);
      }).catch(() => false);
      progress.end(published);
      resolveStored(published);
    });
    return { tap, stored, progress };
  }

  async delete(key: string): Promise<void> {
    const record = this.remove(key);
    if (record !== undefined) await unlink(record.path).catch(() => {});
  }

  /** Removes every entry of a distribution with a matching invalidation path; resolves once the files are gone. */
  async purge(distributionId: string, matches: (invalidationPath: string) => boolean): Promise<number> {
    const keys = this.keysByDistribution.get(distributionId);
    if (keys === undefined) return 0;
    const removals: Array<Promise<void>> = [];
    for (const key of [...keys]) {
      const record = this.index.peek(key);
      if (record !== undefined && record.invalidationPaths.some(matches)) removals.push(this.delete(key));
    }
    await Promise.all(removals);
    return removals.length;
  }

  async purgeDistribution(distributionId: string): Promise<number> {
    return this.purge(distributionId, () => true);
  }

  private tempPath(): string {
    return join(this.tempDirectory, `${randomBytes(12).toString("hex")}.tmp`);
  }

  private pathOf(key: string): string {
    const name = createHash("sha256").update(key).digest("hex");
    return join(this.objectsDirectory, name.slice(0, 2), name);
  }

  /**
   * Renames a finished temp file into place, fsyncs its folder and indexes it.
   * `release` runs just before the entry is indexed, or when publishing
   * fails, to give back a reservation made for it.
   */
  /**
   * Moves a written file into place and indexes it, after any publication of
   * the same key that began earlier. A write never replaces an entry whose
   * fetch began after its own: a fetch that a purge overtook may end after
   * the fetch that followed the purge, and must not take that one's place.
   */
  private async publish(
    tempPath: string,
    metadata: DiskMetadata,
    bodyOffset: number,
    sizeBytes: number,
    release: () => void = () => {},
  ): Promise<boolean> {
    const key = metadata.key;
    const before = this.publishing.get(key);
    const publication = (async (): Promise<boolean> => {
      if (before !== undefined) await before.catch(() => {});
      const current = this.index.peek(key);
      if (current !== undefined && current.storedAtMs > metadata.storedAtMs) {
        release();
        await unlink(tempPath).catch(() => {});
        return false;
      }
      return this.publishNow(tempPath, metadata, bodyOffset, sizeBytes, release);
    })();
    this.publishing.set(key, publication);
    try {
      return await publication;
    } finally {
      if (this.publishing.get(key) === publication) this.publishing.delete(key);
    }
  }

  private async publishNow(
    tempPath: string,
    metadata: DiskMetadata,
    bodyOffset: number,
    sizeBytes: number,
    release: () => void,
  ): Promise<boolean> {
    const path = this.pathOf(metadata.key);
    try {
      const shard = join(path, "..");
      await mkdir(shard, { recursive: true });
      await rename(tempPath, path);
      const directory = await open(shard, "r");
      try {
        await directory.sync();
      } finally {
        await directory.close();
      }
    } catch (error) {
      release();
      await unlink(tempPath).catch(() => {});
      throw error;
    }
    this.remove(metadata.key);
    release();
    return this.add(metadata, path, bodyOffset, sizeBytes);
  }

  private add(metadata: DiskMetadata, path: string, bodyOffset: number, sizeBytes: number): boolean {
    const record: IndexRecord = {
      path,
      distributionId: metadata.distributionId,
      invalidationPaths: metadata.invalidationPaths,
      bodyOffset,
      bodyBytes: metadata.bodyBytes,
      staleAtMs: metadata.staleAtMs,
      storedAtMs: metadata.storedAtMs,
    };
    if (!this.index.set(metadata.key, record, sizeBytes)) {
      void unlink(path).catch(() => {});
      return false;
    }
    let keys = this.keysByDistribution.get(metadata.distributionId);
    if (keys === undefined) {
      keys = new Set();
      this.keysByDistribution.set(metadata.distributionId, keys);
    }
    keys.add(metadata.key);
    return true;
  }

  private async indexFile(path: string): Promise<boolean> {
    const head = await readHead(path);
    if (head === undefined) return false;
    const sizeBytes = entryFileBytes(head.bodyOffset, head.metadata.bodyBytes);
    if (head.fileBytes !== sizeBytes || path !== this.pathOf(head.metadata.key)) return false;
    if (head.metadata.varyNames.length > 0) this.varyOnOpen.set(head.metadata.primaryKey, head.metadata.varyNames);
    // The index is rebuilt in file order, so eviction order after a restart is arbitrary.
    return this.add(head.metadata, path, head.bodyOffset, sizeBytes);
  }

  private remove(key: string): IndexRecord | undefined {
    const record = this.index.peek(key);
    if (record === undefined) return undefined;
    this.index.delete(key);
    this.forget(record.distributionId, key);
    return record;
  }

  private forget(distributionId: string, key: string): void {
    const keys = this.keysByDistribution.get(distributionId);
    if (keys === undefined) return;
    keys.delete(key);
    if (keys.size === 0) this.keysByDistribution.delete(distributionId);
  }
}

/**
 * Returns where the body of the entry file at `path` is, once its head has
 * passed its check and names `key`. Returns undefined when the file is gone
 * or fails its check. Other edge workers' files are read this way.
 */
export async function streamTargetAt(path: string, key: string): Promise<DiskStreamTarget | undefined> {
  const head = await readHead(path, true);
  if (head === undefined || head.metadata.key !== key) return undefined;
  return { path, bodyOffset: head.bodyOffset, bodyBytes: head.metadata.bodyBytes, metadata: head.metadata, inode: head.inode };
}

/**
 * Reads and parses a file's head without reading its body. With `verify`,
 * also checks the head against its digest, and returns undefined when it fails.
 */
async function readHead(
  path: string,
  verify = false,
): Promise<{ metadata: DiskMetadata; bodyOffset: number; fileBytes: number; inode: number } | undefined> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch {
    return undefined;
  }
  try {
    const { size, ino } = await handle.stat();
    const prefix = Buffer.alloc(HEAD_PREFIX_BYTES);
    await handle.read(prefix, 0, prefix.length, 0);
    const length = headLength(prefix);
    if (length === undefined || length > size) return undefined;
    const headBytes = Buffer.alloc(length);
    await handle.read(headBytes, 0, length, 0);
    const head = decodeHead(headBytes);
    if (head === undefined) return undefined;
    if (verify) {
      const digest = Buffer.alloc(DIGEST_BYTES);
      const position = headDigestOffset(head.bodyOffset, head.metadata.bodyBytes);
      const { bytesRead } = await handle.read(digest, 0, DIGEST_BYTES, position);
      if (bytesRead !== DIGEST_BYTES || !sha256(headBytes).equals(digest)) return undefined;
    }
    return { ...head, fileBytes: size, inode: ino };
  } finally {
    await handle.close();
  }
}

/**
 * How far a streamed write has come, for readers that follow it while it
 * grows: the bytes of the body already in the file, and how the write ended.
 * `path` is the temporary file, and the entry's own file once it is published.
 */
export class WriteProgress extends EventEmitter<{ change: [] }> {
  /** Body bytes written to the file so far. */
  writtenBodyBytes = 0;
  state: "writing" | "stored" | "failed" = "writing";

  constructor(
    public path: string,
    /** The offset of the body in the file, after the entry's head. */
    readonly bodyOffset: number,
    readonly bodyBytes: number,
  ) {
    super();
    // Every reader that follows the write waits for its next change.
    this.setMaxListeners(0);
  }

  advance(bytes: number): void {
    this.writtenBodyBytes += bytes;
    this.emit("change");
  }

  end(stored: boolean): void {
    if (this.state !== "writing") return;
    this.state = stored ? "stored" : "failed";
    this.emit("change");
  }

  /** Takes over the state of a write that another process reports, for readers in this one. */
  follow(writtenBodyBytes: number, path: string, state: WriteProgress["state"]): void {
    if (this.state !== "writing") return;
    this.writtenBodyBytes = Math.max(this.writtenBodyBytes, writtenBodyBytes);
    this.path = path;
    this.state = state;
    this.emit("change");
  }
}

/** Passes chunks through while appending them to a temp file and hashing them. */
class DiskTap extends Transform {
  private readonly file: WriteStream;
  private readonly hash: Hash;
  private readonly blocks = new BlockHasher();
  private readonly expectedBytes: number;
  private bytes = 0;
  private failed = false;
  private finishedWrite = false;

  constructor(
    private readonly head: Buffer,
    private readonly tempPath: string,
    private readonly progress: WriteProgress,
    private readonly onComplete: (ok: boolean) => Promise<void>,
  ) {
    super();
    this.expectedBytes = progress.bodyBytes;
    this.hash = createHash("sha256").update(head);
    this.file = createWriteStream(tempPath);
    this.file.on("error", () => {
      this.failed = true;
    });
    this.file.write(head);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.failed) {
      callback(null, chunk);
      return;
    }
    this.hash.update(chunk);
    this.blocks.update(chunk);
    // Readers that follow the write may read a chunk once the file has it.
    const written = this.file.write(chunk, (error) => {
      if (error === null || error === undefined) this.progress.advance(chunk.length);
    });
    // Waiting for the file keeps memory bounded when the disk is slower than the origin.
    if (written) callback(null, chunk);
    else this.file.once("drain", () => callback(null, chunk));
  }

  override _flush(callback: TransformCallback): void {
    void this.finish(this.bytes === this.expectedBytes && !this.failed).then(() => callback());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.finishedWrite) void this.finish(false);
    callback(error);
  }

  private async finish(ok: boolean): Promise<void> {
    if (this.finishedWrite) return;
    this.finishedWrite = true;
    if (!ok) {
      this.file.destroy();
      await this.onComplete(false);
      return;
    }
    const trailer = encodeTrailer(this.head, this.blocks, this.hash);
    const written = await new Promise<boolean>((resolve) => {
      this.file.end(trailer, () => resolve(!this.failed));
    });
    if (!written) {
      await this.onComplete(false);
      return;
    }
    // createWriteStream has no fsync, so reopen the file to flush it before the rename.
    let synced = true;
    try {
      const handle = await open(this.tempPath, "r+");
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch {
      // Without the fsync the entry is not durable, so it is dropped like a failed write.
      synced = false;
    }
    await this.onComplete(synced);
  }
}
