import type { Logger } from "../common/logger.js";
import type { SqliteDatabase } from "../common/sqlite.js";
import { CUSTOM_BUCKETS, DISTRIBUTION_BUCKETS, type EncodedBucket } from "./bucket-encoding.js";

/**
 * Schema version 2: a bucket's statistics are a binary blob in `data` and its
 * histograms a second blob in `histograms` (see bucket-encoding.ts), indexed
 * by age so that pruning finds the oldest histograms first. Version 1 stored
 * both as one JSON text. Version 0 keyed buckets by the series key in place
 * of an integer series id, and a key's dimensions alone may take 38 KiB (30
 * names of 255 characters and values of 1,024).
 */
export const SCHEMA_VERSION = 2;

const SERIES_TABLE = `
  CREATE TABLE series (
    series_id INTEGER PRIMARY KEY,
    series_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    metric_name TEXT NOT NULL,
    dimensions TEXT NOT NULL,
    unit TEXT NOT NULL,
    last_timestamp_ms INTEGER NOT NULL
  );
  CREATE INDEX series_by_name ON series (namespace, metric_name);
  CREATE INDEX series_by_age ON series (last_timestamp_ms);
`;

/** The index that pruning walks to drop the oldest histograms first. */
const HISTOGRAM_INDEX = `
  CREATE INDEX buckets_with_histograms ON buckets (bucket_start_ms) WHERE histograms IS NOT NULL;
`;

const SCHEMA = `
  ${SERIES_TABLE}
  CREATE TABLE buckets (
    series_id INTEGER NOT NULL,
    resolution_seconds INTEGER NOT NULL,
    bucket_start_ms INTEGER NOT NULL,
    data BLOB NOT NULL,
    histograms BLOB,
    PRIMARY KEY (series_id, resolution_seconds, bucket_start_ms)
  ) WITHOUT ROWID;
  CREATE INDEX buckets_by_age ON buckets (resolution_seconds, bucket_start_ms);
  ${HISTOGRAM_INDEX}
`;

/**
 * While it exists, this one-row table marks that buckets may still contain
 * JSON text, and stores the primary key of the last bucket converted.
 */
const CONVERSION_TABLE = `
  CREATE TABLE json_bucket_conversion (
    series_id INTEGER NOT NULL,
    resolution_seconds INTEGER NOT NULL,
    bucket_start_ms INTEGER NOT NULL
  );
  INSERT INTO json_bucket_conversion VALUES (0, 0, 0);
`;

/** Buckets converted per transaction. */
const CONVERSION_BATCH_ROWS = 500;

/** The auto_vacuum value SQLite reports for INCREMENTAL. */
const AUTO_VACUUM_INCREMENTAL = 2;

/**
 * Creates the tables of a new database, or migrates one of an older schema
 * version, in one transaction. Migration keeps the JSON rows as they are and
 * leaves their conversion to `convertJsonBuckets`, so that it never rewrites
 * a large file in one go. Then turns a database made without incremental
 * auto-vacuum into one with it, which takes a VACUUM: a rewrite of the whole
 * file, done once.
 */
export function prepareSchema(db: SqliteDatabase, log: Logger): void {
  const version = db.pragma("user_version", { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(
      `metrics.db has schema version ${version}, newer than this Portico's ${SCHEMA_VERSION}; upgrade Portico or use another data folder`,
    );
  }
  if (version < SCHEMA_VERSION) {
    const hasBuckets = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'buckets'`).get() !== undefined;
    db.transaction(() => {
      if (!hasBuckets) db.exec(SCHEMA);
      else if (version === 0) migrateFromVersion0(db, log);
      else migrateFromVersion1(db);
      if (hasBuckets && db.prepare(`SELECT 1 FROM buckets LIMIT 1`).get() !== undefined) db.exec(CONVERSION_TABLE);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    })();
    if (hasBuckets) log.info({ fromVersion: version }, `metrics database migrated to schema version ${SCHEMA_VERSION}`);
  }
  if (db.pragma("auto_vacuum", { simple: true }) !== AUTO_VACUUM_INCREMENTAL) {
    const started = Date.now();
    db.pragma("auto_vacuum = INCREMENTAL");
    db.exec("VACUUM");
    log.info({ durationMs: Date.now() - started }, "metrics database rewritten with incremental auto-vacuum");
  }
}

/** Adds the histograms column and its index. The `data` column keeps its TEXT declaration, which stores blobs unchanged. */
function migrateFromVersion1(db: SqliteDatabase): void {
  db.exec(`ALTER TABLE buckets ADD COLUMN histograms BLOB; ${HISTOGRAM_INDEX}`);
}

function migrateFromVersion0(db: SqliteDatabase, log: Logger): void {
  db.exec(`
    ALTER TABLE series RENAME TO series_v0;
    ALTER TABLE buckets RENAME TO buckets_v0;
    DROP INDEX IF EXISTS series_by_name;
    DROP INDEX IF EXISTS buckets_by_age;
  `);
  db.exec(SCHEMA);
  const series = db
    .prepare(
      `INSERT INTO series (series_key, kind, namespace, metric_name, dimensions, unit, last_timestamp_ms)
       SELECT series_key, kind, namespace, metric_name, dimensions, unit, last_timestamp_ms FROM series_v0`,
    )
    .run();
  const buckets = db
    .prepare(
      `INSERT INTO buckets (series_id, resolution_seconds, bucket_start_ms, data)
       SELECT s.series_id, b.resolution_seconds, b.bucket_start_ms, b.data
       FROM buckets_v0 b JOIN series s ON s.series_key = b.series_key`,
    )
    .run();
  db.exec(`DROP TABLE buckets_v0; DROP TABLE series_v0;`);
  log.info({ series: series.changes, buckets: buckets.changes }, "metrics database moved from series keys to series ids");
}

/** Returns true while buckets written as JSON text may remain. */
export function hasJsonBuckets(db: SqliteDatabase): boolean {
  return db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'json_bucket_conversion'`).get() !== undefined;
}

export interface ConversionResult {
  /** Buckets rewritten from JSON text to the binary encoding. */
  rows: number;
  /** Buckets left as JSON text because they did not parse; readers of those buckets fail as before. */
  failed: number;
  /** True once no JSON bucket is left to try. */
  complete: boolean;
}

/**
 * Rewrites JSON buckets in the binary encoding, in primary key order from
 * where the last call stopped, in transactions of CONVERSION_BATCH_ROWS rows,
 * until `deadlineMs` (a `performance.now()` time) passes. Each transaction
 * also stores its position, so a crash repeats at most one batch, which is
 * harmless because a converted row is no longer JSON.
 */
export function convertJsonBuckets(db: SqliteDatabase, deadlineMs: number): ConversionResult {
  if (!hasJsonBuckets(db)) return { rows: 0, failed: 0, complete: true };
  const select = db.prepare(
    `SELECT b.series_id AS seriesId, b.resolution_seconds AS resolutionSeconds, b.bucket_start_ms AS bucketStartMs,
            b.data AS data, s.kind AS kind
     FROM buckets b JOIN series s ON s.series_id = b.series_id
     WHERE (b.series_id, b.resolution_seconds, b.bucket_start_ms) > (?, ?, ?) AND typeof(b.data) = 'text'
     ORDER BY b.series_id, b.resolution_seconds, b.bucket_start_ms
     LIMIT ?`,
  );
  const update = db.prepare(
    `UPDATE buckets SET data = ?, histograms = ? WHERE series_id = ? AND resolution_seconds = ? AND bucket_start_ms = ?`,
  );
  const saveCursor = db.prepare(`UPDATE json_bucket_conversion SET series_id = ?, resolution_seconds = ?, bucket_start_ms = ?`);
  let rows = 0;
  let failed = 0;
  const batch = db.transaction((): boolean => {
    const cursor = db.prepare(`SELECT series_id, resolution_seconds, bucket_start_ms FROM json_bucket_conversion`).raw().get() as number[];
    const found = select.all(...cursor, CONVERSION_BATCH_ROWS) as Array<{
      seriesId: number;
      resolutionSeconds: number;
      bucketStartMs: number;
      data: string;
      kind: string;
    }>;
    for (const row of found) {
      const encoded = encodeJsonBucket(row.kind, row.data);
      if (encoded === undefined) {
        failed += 1;
        continue;
      }
      update.run(encoded.data, encoded.histograms, row.seriesId, row.resolutionSeconds, row.bucketStartMs);
      rows += 1;
    }
    if (found.length < CONVERSION_BATCH_ROWS) {
      db.exec(`DROP TABLE json_bucket_conversion`);
      return true;
    }
    const last = found[found.length - 1]!;
    saveCursor.run(last.seriesId, last.resolutionSeconds, last.bucketStartMs);
    return false;
  });
  for (;;) {
    if (batch()) return { rows, failed, complete: true };
    if (performance.now() >= deadlineMs) return { rows, failed, complete: false };
  }
}

/** Returns the binary form of a JSON bucket, or undefined when the text does not parse. */
function encodeJsonBucket(kind: string, json: string): EncodedBucket | undefined {
  const columns = { data: json, histograms: null };
  try {
    return kind === "distribution"
      ? DISTRIBUTION_BUCKETS.encode(DISTRIBUTION_BUCKETS.decode(columns))
      : CUSTOM_BUCKETS.encode(CUSTOM_BUCKETS.decode(columns));
  } catch {
    return undefined;
  }
}
