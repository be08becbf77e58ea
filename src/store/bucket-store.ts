import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import type { Logger } from "../common/logger.js";
import { ApiError } from "../api/errors.js";
import { storeErrors } from "./errors.js";
import {
  MetadataStore,
  type BucketRecord,
  type ObjectRecord,
  type PartRecord,
  type StoredObject,
  type UploadRecord,
} from "./metadata.js";
import { ObjectFiles, type ByteRange } from "./object-files.js";

/** Objects up to this size are read into memory whole, one read call, instead of streamed. */
const SMALL_READ_BYTES = 128 * 1024;

/** Size, ETag, checksum and headers of bytes once they are on disk. */
export type ObjectDescription = Omit<ObjectRecord, "bucket" | "key" | "fileId" | "lastModifiedMs">;

/**
 * The embedded bucket store: metadata in `<dataDir>/store/meta.db`, bytes in
 * `<dataDir>/store/objects/`. Every write follows the same steps: stream to a
 * temporary file, fsync, rename, fsync the folder, then commit the metadata
 * row. Until that commit the object is invisible, and an error at any step
 * leaves the previous version in place.
 */
export class BucketStore {
  private constructor(
    readonly metadata: MetadataStore,
    readonly files: ObjectFiles,
    private readonly log: Logger,
  ) {}

  static async open(dataDir: string, log: Logger): Promise<BucketStore> {
    const storeDir = join(dataDir, "store");
    await mkdir(storeDir, { recursive: true });
    const files = new ObjectFiles(storeDir);
    await files.open();
    const metadata = new MetadataStore(join(storeDir, "meta.db"));
    const store = new BucketStore(metadata, files, log);
    const orphans = await files.removeOrphans((fileId) => metadata.isFileReferenced(fileId));
    if (orphans > 0) log.info({ orphans }, "removed object files that no metadata refers to");
    return store;
  }

  close(): void {
    this.metadata.close();
  }

  requireBucket(name: string): BucketRecord {
    const bucket = this.metadata.getBucket(name);
    if (!bucket) throw storeErrors.noSuchBucket(name);
    return bucket;
  }

  createBucket(name: string, region: string, nowMs: number): void {
    const created = this.metadata.insertBucket({ name, createdAtMs: nowMs, region, policyJson: undefined });
    if (!created) throw storeErrors.bucketAlreadyOwnedByYou(name);
  }

  async deleteBucket(name: string): Promise<void> {
    this.requireBucket(name);
    const result = this.metadata.deleteBucket(name);
    if (result === "not-empty") throw storeErrors.bucketNotEmpty(name);
    await this.removeFiles(result);
  }

  requireObject(bucket: string, key: string): StoredObject {
    this.requireBucket(bucket);
    const record = this.metadata.getStoredObject(bucket, key);
    if (!record) throw storeErrors.noSuchKey(key);
    return record;
  }

  /**
   * Reads an object's bytes, or `range` of them, whole when they are at most
   * SMALL_READ_BYTES in one file, else as a stream. It raises ENOENT like
   * openObject.
   */
  async readObject(object: StoredObject, range?: ByteRange): Promise<Buffer | Readable> {
    const wanted = range ?? { start: 0, end: object.sizeBytes - 1 };
    const only = object.segments.length === 1 ? object.segments[0] : undefined;
    if (only !== undefined && wanted.end - wanted.start + 1 <= SMALL_READ_BYTES) {
      return this.files.readSmall(only.fileId, wanted);
    }
    return this.files.openRead(object.segments, wanted);
  }

  /**
   * Opens a stream over an object's bytes, or over `range` of them. It raises
   * ENOENT when an overwrite or delete removed the first file since `object`
   * was read, so the caller can look the key up again.
   */
  async openObject(object: StoredObject, range?: ByteRange): Promise<Readable> {
    return this.files.openRead(object.segments, range ?? { start: 0, end: object.sizeBytes - 1 });
  }

  /**
   * Writes an object from `body`. `describe` runs once every byte is on disk
   * and may raise (a digest mismatch, for example) to drop the write;
   * `precondition` runs inside the metadata transaction against the current
   * version, so a conditional write cannot race another writer.
   */
  async putObject(
    bucket: string,
    key: string,
    body: Readable,
    describe: () => Promise<ObjectDescription>,
    precondition?: (current: ObjectRecord | undefined) => void,
  ): Promise<ObjectRecord> {
    this.requireBucket(bucket);
    const tempPath = await this.files.writeTemp(body);
    return this.commitTemp(bucket, key, tempPath, describe, precondition);
  }

  /** Copies the bytes of `source` through `through` to a new object described by `describe`. */
  async copyObject(
    source: StoredObject,
    bucket: string,
    key: string,
    through: NodeJS.ReadWriteStream[],
    describe: () => Promise<ObjectDescription>,
    precondition?: (current: ObjectRecord | undefined) => void,
  ): Promise<ObjectRecord> {
    this.requireBucket(bucket);
    const tempPath = await this.files.writeTemp(await this.openObject(source), through);
    return this.commitTemp(bucket, key, tempPath, describe, precondition);
  }

  private async commitTemp(
    bucket: string,
    key: string,
    tempPath: string,
    describe: () => Promise<ObjectDescription>,
    precondition?: (current: ObjectRecord | undefined) => void,
  ): Promise<ObjectRecord> {
    let description: ObjectDescription;
    try {
      description = await describe();
    } catch (error) {
      await this.files.discardTemp(tempPath);
      throw error;
    }
    const fileId = this.files.newId();
    await this.files.commit(tempPath, fileId);
    const record: ObjectRecord = { ...description, bucket, key, fileId, lastModifiedMs: Date.now() };
    let replaced: string[];
    try {
      replaced = this.metadata.putObjectChecked(record, precondition);
    } catch (error) {
      await this.files.remove(fileId);
      throw this.translateMissingBucket(error, bucket);
    }
    await this.removeFiles(replaced);
    return record;
  }

  /** Deletes an object; deleting a missing key succeeds, as in S3. */
  async deleteObject(bucket: string, key: string): Promise<boolean> {
    this.requireBucket(bucket);
    const fileIds = this.metadata.deleteObject(bucket, key);
    if (fileIds.length === 0) return false;
    await this.removeFiles(fileIds);
    return true;
  }

  createUpload(upload: UploadRecord): void {
    this.requireBucket(upload.bucket);
    this.metadata.insertUpload(upload);
  }

  requireUpload(bucket: string, key: string, uploadId: string): UploadRecord {
    this.requireBucket(bucket);
    const upload = this.metadata.getUpload(uploadId);
    if (!upload || upload.bucket !== bucket || upload.key !== key) throw storeErrors.noSuchUpload(uploadId);
    return upload;
  }

  /** Writes a part from `body` through `through`; `describe` may raise to drop it, as in putObject. */
  async putPart(
    upload: UploadRecord,
    partNumber: number,
    body: Readable,
    describe: () => Promise<Omit<PartRecord, "uploadId" | "partNumber" | "fileId" | "lastModifiedMs">>,
    through: NodeJS.ReadWriteStream[] = [],
  ): Promise<PartRecord> {
    const tempPath = await this.files.writeTemp(body, through);
    let description: Awaited<ReturnType<typeof describe>>;
    try {
      description = await describe();
    } catch (error) {
      await this.files.discardTemp(tempPath);
      throw error;
    }
    const fileId = this.files.newId();
    await this.files.commit(tempPath, fileId);
    const part: PartRecord = { ...description, uploadId: upload.uploadId, partNumber, fileId, lastModifiedMs: Date.now() };
    const replaced = this.metadata.putPart(part);
    if (replaced === "no-upload") {
      await this.files.remove(fileId);
      throw storeErrors.noSuchUpload(upload.uploadId);
    }
    if (replaced !== undefined) await this.removeFiles([replaced]);
    return part;
  }

  /**
   * Makes the chosen parts visible as one object. The part files become the
   * object's segments, so completing costs one metadata transaction and no
   * copy. `describe` runs first and may read the parts (for a full-object
   * checksum) or raise to keep the upload open.
   */
  async completeUpload(
    upload: UploadRecord,
    parts: PartRecord[],
    describe: () => Promise<ObjectDescription>,
  ): Promise<ObjectRecord> {
    const description = await describe();
    const record: ObjectRecord = {
      ...description,
      bucket: upload.bucket,
      key: upload.key,
      fileId: "",
      lastModifiedMs: Date.now(),
    };
    let unreferenced: ReturnType<MetadataStore["completeUpload"]>;
    try {
      unreferenced = this.metadata.completeUpload(upload.uploadId, record, parts);
    } catch (error) {
      throw this.translateMissingBucket(error, upload.bucket);
    }
    if (unreferenced === "no-upload") throw storeErrors.noSuchUpload(upload.uploadId);
    if (unreferenced === "parts-changed") {
      throw new ApiError("InvalidPart", 400, "A part was uploaded again while the upload was being completed; list the parts and retry.");
    }
    await this.removeFiles(unreferenced);
    return record;
  }

  /** Streams the given parts in order, as they would read once completed. */
  async openParts(parts: PartRecord[]): Promise<Readable> {
    const sizeBytes = parts.reduce((total, part) => total + part.sizeBytes, 0);
    return this.files.openRead(parts, { start: 0, end: sizeBytes - 1 });
  }

  async abortUpload(upload: UploadRecord): Promise<void> {
    const files = this.metadata.deleteUpload(upload.uploadId);
    if (files === undefined) throw storeErrors.noSuchUpload(upload.uploadId);
    await this.removeFiles(files);
  }

  private translateMissingBucket(error: unknown, bucket: string): unknown {
    if ((error as { code?: string }).code === "SQLITE_CONSTRAINT_FOREIGNKEY") return storeErrors.noSuchBucket(bucket);
    return error;
  }

  private async removeFiles(fileIds: string[]): Promise<void> {
    for (const fileId of fileIds) {
      try {
        await this.files.remove(fileId);
      } catch (error) {
        // The metadata no longer refers to the file, so the orphan sweep at
        // the next start removes it.
        this.log.warn({ err: error, fileId }, "failed to remove an unreferenced object file");
      }
    }
  }
}
