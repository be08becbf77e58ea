import type { Logger } from "../common/logger.js";
import type { SqliteDatabase } from "../common/sqlite.js";

/**
 * Schema version 1: buckets refer to their series by an integer id instead of
 * the series key. A key's dimensions alone may take 38 KiB (30 names of 255
 * characters and values of 1,024), and each bucket row repeated it.
 */
export const SCHEMA_VERSION = 1;

const SCHEMA = `
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
  CREATE TABLE buckets (
    series_id INTEGER NOT NULL,
    resolution_seconds INTEGER NOT NULL,
    bucket_start_ms INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (series_id, resolution_seconds, bucket_start_ms)
  ) WITHOUT ROWID;
  CREATE INDEX buckets_by_age ON buckets (resolution_seconds, bucket_start_ms);
`;

/** The auto_vacuum value SQLite reports for INCREMENTAL. */
const AUTO_VACUUM_INCREMENTAL = 2;

/**
 * Creates the tables of a new database, or migrates one of schema version 0
 * (buckets keyed by series key), in one transaction. Then turns a database
 * made without incremental auto-vacuum into one with it, which takes a
 * VACUUM: a rewrite of the whole file, done once.
 */
export function prepareSchema(db: SqliteDatabase, log: Logger): void {
  const version = db.pragma("user_version", { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(
      `metrics.db has schema version ${version}, newer than this Portico's ${SCHEMA_VERSION}; upgrade Portico or use another data folder`,
    );
  }
  if (version < SCHEMA_VERSION) {
    const hasVersion0Tables = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'buckets'`).get() !== undefined;
    db.transaction(() => {
      if (hasVersion0Tables) migrateFromVersion0(db, log);
      else db.exec(SCHEMA);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    })();
  }
  if (db.pragma("auto_vacuum", { simple: true }) !== AUTO_VACUUM_INCREMENTAL) {
    const started = Date.now();
    db.pragma("auto_vacuum = INCREMENTAL");
    db.exec("VACUUM");
    log.info({ durationMs: Date.now() - started }, "metrics database rewritten with incremental auto-vacuum");
  }
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
  log.info({ series: series.changes, buckets: buckets.changes }, "metrics database migrated to schema version 1");
}
