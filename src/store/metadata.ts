import type { Statement } from "better-sqlite3";
import { openDatabase, type SqliteDatabase } from "../common/sqlite.js";
import type { ChecksumAlgorithm, ChecksumType, StoredChecksum } from "./checksums.js";

export interface BucketRecord {
  name: string;
  createdAtMs: number;
  region: string;
  /** The bucket policy document as the client sent it, or undefined when none is set. */
  policyJson: string | undefined;
}

/**
 * Headers stored with an object and returned on GET and HEAD, by lower-case
 * name: content-type, cache-control, content-encoding, content-disposition,
 * content-language, expires, x-amz-website-redirect-location and x-amz-meta-*.
 */
export type StoredHeaders = Record<string, string>;

export interface ObjectRecord {
  bucket: string;
  key: string;
  fileId: string;
  sizeBytes: number;
  /** MD5 hex of the bytes, or `<md5 of part md5s>-<part count>` for multipart objects; no quotes. */
  etag: string;
  lastModifiedMs: number;
  headers: StoredHeaders;
  checksum: StoredChecksum | undefined;
  /** Number of parts for an object made by CompleteMultipartUpload, else undefined. */
  partsCount: number | undefined;
}

/**
 * One file of an object's bytes. A single upload is one segment. An object
 * made by CompleteMultipartUpload keeps each chosen part file as a segment, in
 * part order, so completing an upload never copies its bytes.
 */
export interface ObjectSegment {
  partNumber: number;
  fileId: string;
  sizeBytes: number;
  etag: string;
}

/** An object with the files that hold its bytes, in order. */
export interface StoredObject extends ObjectRecord {
  segments: ObjectSegment[];
}

export interface UploadRecord {
  uploadId: string;
  bucket: string;
  key: string;
  initiatedAtMs: number;
  headers: StoredHeaders;
  checksumAlgorithm: ChecksumAlgorithm | undefined;
  checksumType: ChecksumType | undefined;
}

export interface PartRecord {
  uploadId: string;
  partNumber: number;
  fileId: string;
  sizeBytes: number;
  etag: string;
  lastModifiedMs: number;
  checksum: StoredChecksum | undefined;
}

interface ObjectRow {
  bucket: string;
  key: Buffer;
  file_id: string;
  size_bytes: number;
  etag: string;
  last_modified_ms: number;
  headers: string;
  checksum: string | null;
  parts_count: number | null;
}

interface UploadRow {
  upload_id: string;
  bucket: string;
  key: Buffer;
  initiated_at_ms: number;
  headers: string;
  checksum_algorithm: string | null;
  checksum_type: string | null;
}

interface PartRow {
  upload_id: string;
  part_number: number;
  file_id: string;
  size_bytes: number;
  etag: string;
  last_modified_ms: number;
  checksum: string | null;
}

// Keys are BLOBs of their UTF-8 bytes so that ORDER BY and range bounds compare
// bytes, which is the order S3 lists keys in. A single-upload object names its
// file in objects.file_id; a multipart object has an empty file_id and one
// object_segments row per part file.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS buckets (
  name TEXT PRIMARY KEY,
  created_at_ms INTEGER NOT NULL,
  region TEXT NOT NULL,
  policy_json TEXT
);
CREATE TABLE IF NOT EXISTS objects (
  bucket TEXT NOT NULL REFERENCES buckets(name),
  key BLOB NOT NULL,
  file_id TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  etag TEXT NOT NULL,
  last_modified_ms INTEGER NOT NULL,
  headers TEXT NOT NULL,
  checksum TEXT,
  parts_count INTEGER,
  PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_file_id ON objects(file_id);
CREATE TABLE IF NOT EXISTS uploads (
  upload_id TEXT PRIMARY KEY,
  bucket TEXT NOT NULL REFERENCES buckets(name),
  key BLOB NOT NULL,
  initiated_at_ms INTEGER NOT NULL,
  headers TEXT NOT NULL,
  checksum_algorithm TEXT,
  checksum_type TEXT
);
CREATE INDEX IF NOT EXISTS uploads_bucket_key ON uploads(bucket, key, upload_id);
CREATE TABLE IF NOT EXISTS parts (
  upload_id TEXT NOT NULL REFERENCES uploads(upload_id) ON DELETE CASCADE,
  part_number INTEGER NOT NULL,
  file_id TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  etag TEXT NOT NULL,
  last_modified_ms INTEGER NOT NULL,
  checksum TEXT,
  PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS parts_file_id ON parts(file_id);
CREATE TABLE IF NOT EXISTS object_segments (
  bucket TEXT NOT NULL,
  key BLOB NOT NULL,
  part_number INTEGER NOT NULL,
  file_id TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  etag TEXT NOT NULL,
  PRIMARY KEY (bucket, key, part_number)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS object_segments_file_id ON object_segments(file_id);
`;

/** The objects.file_id of a multipart object, whose bytes are in object_segments. */
const SEGMENTED_FILE_ID = "";

function keyBytes(key: string): Buffer {
  return Buffer.from(key, "utf8");
}

function toObject(row: ObjectRow): ObjectRecord {
  return {
    bucket: row.bucket,
    key: row.key.toString("utf8"),
    fileId: row.file_id,
    sizeBytes: row.size_bytes,
    etag: row.etag,
    lastModifiedMs: row.last_modified_ms,
    headers: JSON.parse(row.headers) as StoredHeaders,
    checksum: row.checksum === null ? undefined : (JSON.parse(row.checksum) as StoredChecksum),
    partsCount: row.parts_count ?? undefined,
  };
}

function toUpload(row: UploadRow): UploadRecord {
  return {
    uploadId: row.upload_id,
    bucket: row.bucket,
    key: row.key.toString("utf8"),
    initiatedAtMs: row.initiated_at_ms,
    headers: JSON.parse(row.headers) as StoredHeaders,
    checksumAlgorithm: (row.checksum_algorithm ?? undefined) as ChecksumAlgorithm | undefined,
    checksumType: (row.checksum_type ?? undefined) as ChecksumType | undefined,
  };
}

function toPart(row: PartRow): PartRecord {
  return {
    uploadId: row.upload_id,
    partNumber: row.part_number,
    fileId: row.file_id,
    sizeBytes: row.size_bytes,
    etag: row.etag,
    lastModifiedMs: row.last_modified_ms,
    checksum: row.checksum === null ? undefined : (JSON.parse(row.checksum) as StoredChecksum),
  };
}

/** Bucket, object, upload and part metadata in `meta.db` (SQLite, WAL, synchronous FULL). */
export class MetadataStore {
  private readonly db: SqliteDatabase;
  private readonly statements = new Map<string, Statement>();

  constructor(path: string) {
    this.db = openDatabase(path, { synchronous: "FULL" });
    this.db.exec(SCHEMA);
  }

  /** Returns the prepared statement for `sql`, preparing each distinct text once. */
  private prepare<Parameters extends unknown[] = unknown[], Row = unknown>(sql: string): Statement<Parameters, Row> {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement as unknown as Statement<Parameters, Row>;
  }

  close(): void {
    this.db.close();
  }

  getBucket(name: string): BucketRecord | undefined {
    const row = this
      .prepare<[string], { name: string; created_at_ms: number; region: string; policy_json: string | null }>(
        "SELECT name, created_at_ms, region, policy_json FROM buckets WHERE name = ?",
      )
      .get(name);
    if (!row) return undefined;
    return { name: row.name, createdAtMs: row.created_at_ms, region: row.region, policyJson: row.policy_json ?? undefined };
  }

  listBuckets(): BucketRecord[] {
    return this
      .prepare<[], { name: string; created_at_ms: number; region: string; policy_json: string | null }>(
        "SELECT name, created_at_ms, region, policy_json FROM buckets ORDER BY name",
      )
      .all()
      .map((row) => ({
        name: row.name,
        createdAtMs: row.created_at_ms,
        region: row.region,
        policyJson: row.policy_json ?? undefined,
      }));
  }

  /** Inserts a bucket; returns false when one of that name exists. */
  insertBucket(bucket: BucketRecord): boolean {
    const result = this
      .prepare("INSERT OR IGNORE INTO buckets (name, created_at_ms, region, policy_json) VALUES (?, ?, ?, ?)")
      .run(bucket.name, bucket.createdAtMs, bucket.region, bucket.policyJson ?? null);
    return result.changes === 1;
  }

  /**
   * Deletes an empty bucket with its unfinished multipart uploads. Returns
   * "not-empty" when it still holds objects, else the part file ids to remove.
   */
  deleteBucket(name: string): "not-empty" | string[] {
    return this.db.transaction(() => {
      const hasObject = this.prepare("SELECT 1 FROM objects WHERE bucket = ? LIMIT 1").get(name);
      if (hasObject) return "not-empty" as const;
      const partFiles = this.db
        .prepare<[string], { file_id: string }>(
          "SELECT p.file_id FROM parts p JOIN uploads u ON u.upload_id = p.upload_id WHERE u.bucket = ?",
        )
        .all(name)
        .map((row) => row.file_id);
      this.prepare("DELETE FROM uploads WHERE bucket = ?").run(name);
      this.prepare("DELETE FROM buckets WHERE name = ?").run(name);
      return partFiles;
    })();
  }

  setBucketPolicy(name: string, policyJson: string | undefined): void {
    this.prepare("UPDATE buckets SET policy_json = ? WHERE name = ?").run(policyJson ?? null, name);
  }

  getObject(bucket: string, key: string): ObjectRecord | undefined {
    const row = this
      .prepare<[string, Buffer], ObjectRow>("SELECT * FROM objects WHERE bucket = ? AND key = ?")
      .get(bucket, keyBytes(key));
    return row ? toObject(row) : undefined;
  }

  /** Returns an object with its segments, read in one synchronous step so no write can interleave. */
  getStoredObject(bucket: string, key: string): StoredObject | undefined {
    const record = this.getObject(bucket, key);
    if (!record) return undefined;
    if (record.fileId !== SEGMENTED_FILE_ID) {
      return { ...record, segments: [{ partNumber: 1, fileId: record.fileId, sizeBytes: record.sizeBytes, etag: record.etag }] };
    }
    const segments = this
      .prepare<[string, Buffer], { part_number: number; file_id: string; size_bytes: number; etag: string }>(
        "SELECT part_number, file_id, size_bytes, etag FROM object_segments WHERE bucket = ? AND key = ? ORDER BY part_number",
      )
      .all(bucket, keyBytes(key))
      .map((row) => ({ partNumber: row.part_number, fileId: row.file_id, sizeBytes: row.size_bytes, etag: row.etag }));
    return { ...record, segments };
  }

  /**
   * Inserts or replaces an object after `precondition` accepted the current
   * version, in one transaction. Returns the file ids of the replaced version.
   */
  putObjectChecked(
    record: ObjectRecord,
    precondition: ((current: ObjectRecord | undefined) => void) | undefined,
  ): string[] {
    return this.db.transaction(() => {
      const previous = this.getObject(record.bucket, record.key);
      precondition?.(previous);
      const replaced = this.deleteObject(record.bucket, record.key);
      this.insertObjectRow(record);
      return replaced;
    })();
  }

  private insertObjectRow(record: ObjectRecord): void {
    this
      .prepare(
        `INSERT OR REPLACE INTO objects
         (bucket, key, file_id, size_bytes, etag, last_modified_ms, headers, checksum, parts_count)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        record.bucket,
        keyBytes(record.key),
        record.fileId,
        record.sizeBytes,
        record.etag,
        record.lastModifiedMs,
        JSON.stringify(record.headers),
        record.checksum === undefined ? null : JSON.stringify(record.checksum),
        record.partsCount ?? null,
      );
  }

  /** Deletes an object; returns the ids of the files that held it, empty when there was none. */
  deleteObject(bucket: string, key: string): string[] {
    return this.db.transaction(() => {
      const row = this.db
        .prepare<[string, Buffer], { file_id: string }>(
          "DELETE FROM objects WHERE bucket = ? AND key = ? RETURNING file_id",
        )
        .get(bucket, keyBytes(key));
      if (!row) return [];
      if (row.file_id !== SEGMENTED_FILE_ID) return [row.file_id];
      return this.db
        .prepare<[string, Buffer], { file_id: string }>(
          "DELETE FROM object_segments WHERE bucket = ? AND key = ? RETURNING file_id",
        )
        .all(bucket, keyBytes(key))
        .map((segment) => segment.file_id);
    })();
  }

  /**
   * Returns up to `limit` objects of a bucket in byte order of their keys,
   * starting after (or at, when `inclusive`) `fromKey` and before `beforeKey`.
   */
  scanObjects(
    bucket: string,
    fromKey: Buffer,
    inclusive: boolean,
    beforeKey: Buffer | undefined,
    limit: number,
  ): ObjectRecord[] {
    const lower = inclusive ? "key >= ?" : "key > ?";
    const upper = beforeKey === undefined ? "" : " AND key < ?";
    const parameters: Array<string | Buffer | number> = [bucket, fromKey];
    if (beforeKey !== undefined) parameters.push(beforeKey);
    parameters.push(limit);
    return this
      .prepare<Array<string | Buffer | number>, ObjectRow>(
        `SELECT * FROM objects WHERE bucket = ? AND ${lower}${upper} ORDER BY key LIMIT ?`,
      )
      .all(...parameters)
      .map(toObject);
  }

  insertUpload(upload: UploadRecord): void {
    this
      .prepare(
        `INSERT INTO uploads (upload_id, bucket, key, initiated_at_ms, headers, checksum_algorithm, checksum_type)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        upload.uploadId,
        upload.bucket,
        keyBytes(upload.key),
        upload.initiatedAtMs,
        JSON.stringify(upload.headers),
        upload.checksumAlgorithm ?? null,
        upload.checksumType ?? null,
      );
  }

  getUpload(uploadId: string): UploadRecord | undefined {
    const row = this.prepare<[string], UploadRow>("SELECT * FROM uploads WHERE upload_id = ?").get(uploadId);
    return row ? toUpload(row) : undefined;
  }

  /** Lists a bucket's uploads ordered by key bytes, then upload id. */
  listUploads(bucket: string, fromKey: Buffer, fromUploadId: string, limit: number): UploadRecord[] {
    return this
      .prepare<[string, Buffer, Buffer, string, number], UploadRow>(
        `SELECT * FROM uploads WHERE bucket = ? AND (key > ? OR (key = ? AND upload_id > ?))
         ORDER BY key, upload_id LIMIT ?`,
      )
      .all(bucket, fromKey, fromKey, fromUploadId, limit)
      .map(toUpload);
  }

  /** Deletes an upload and its parts; returns the part file ids, or undefined when there was none. */
  deleteUpload(uploadId: string): string[] | undefined {
    return this.db.transaction(() => {
      const files = this.db
        .prepare<[string], { file_id: string }>("SELECT file_id FROM parts WHERE upload_id = ?")
        .all(uploadId)
        .map((row) => row.file_id);
      const result = this.prepare("DELETE FROM uploads WHERE upload_id = ?").run(uploadId);
      return result.changes === 1 ? files : undefined;
    })();
  }

  /**
   * Inserts or replaces a part. Returns the replaced part's file id, "no-upload"
   * when the upload was aborted or completed meanwhile, or undefined.
   */
  putPart(part: PartRecord): string | undefined | "no-upload" {
    return this.db.transaction(() => {
      if (!this.prepare("SELECT 1 FROM uploads WHERE upload_id = ?").get(part.uploadId)) return "no-upload" as const;
      const previous = this.db
        .prepare<[string, number], { file_id: string }>(
          "SELECT file_id FROM parts WHERE upload_id = ? AND part_number = ?",
        )
        .get(part.uploadId, part.partNumber);
      this.db
        .prepare(
          `INSERT OR REPLACE INTO parts (upload_id, part_number, file_id, size_bytes, etag, last_modified_ms, checksum)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          part.uploadId,
          part.partNumber,
          part.fileId,
          part.sizeBytes,
          part.etag,
          part.lastModifiedMs,
          part.checksum === undefined ? null : JSON.stringify(part.checksum),
        );
      return previous?.file_id;
    })();
  }

  listParts(uploadId: string, afterPartNumber = 0, limit = 10_000): PartRecord[] {
    return this
      .prepare<[string, number, number], PartRow>(
        "SELECT * FROM parts WHERE upload_id = ? AND part_number > ? ORDER BY part_number LIMIT ?",
      )
      .all(uploadId, afterPartNumber, limit)
      .map(toPart);
  }

  /**
   * Makes a completed upload's object visible and drops the upload, in one
   * transaction. The chosen parts' files become the object's segments, so no
   * byte is copied. Returns the file ids no longer referenced (the replaced
   * object and every part not chosen), "no-upload" when the upload is gone, or
   * "parts-changed" when a chosen part was replaced since it was checked.
   */
  completeUpload(uploadId: string, record: ObjectRecord, chosen: PartRecord[]): string[] | "no-upload" | "parts-changed" {
    return this.db.transaction(() => {
      if (!this.prepare("SELECT 1 FROM uploads WHERE upload_id = ?").get(uploadId)) return "no-upload" as const;
      const current = new Map(this.listParts(uploadId).map((part) => [part.partNumber, part.fileId]));
      if (chosen.some((part) => current.get(part.partNumber) !== part.fileId)) return "parts-changed" as const;
      const chosenFiles = new Set(chosen.map((part) => part.fileId));
      const unreferenced = [...current.values()].filter((fileId) => !chosenFiles.has(fileId));
      unreferenced.push(...this.deleteObject(record.bucket, record.key));
      this.insertObjectRow({ ...record, fileId: SEGMENTED_FILE_ID });
      const insertSegment = this.prepare(
        "INSERT INTO object_segments (bucket, key, part_number, file_id, size_bytes, etag) VALUES (?, ?, ?, ?, ?, ?)",
      );
      for (const part of chosen) {
        insertSegment.run(record.bucket, keyBytes(record.key), part.partNumber, part.fileId, part.sizeBytes, part.etag);
      }
      this.prepare("DELETE FROM uploads WHERE upload_id = ?").run(uploadId);
      return unreferenced;
    })();
  }

  /** Returns whether any object or part refers to a file id. */
  isFileReferenced(fileId: string): boolean {
    return (
      this.prepare("SELECT 1 FROM objects WHERE file_id = ? LIMIT 1").get(fileId) !== undefined ||
      this.prepare("SELECT 1 FROM parts WHERE file_id = ? LIMIT 1").get(fileId) !== undefined ||
      this.prepare("SELECT 1 FROM object_segments WHERE file_id = ? LIMIT 1").get(fileId) !== undefined
    );
  }
}
