import Database from "better-sqlite3";

export type SqliteDatabase = Database.Database;

export interface OpenDatabaseOptions {
  /**
   * `FULL` makes each commit survive power loss; `NORMAL` in WAL mode survives
   * a process crash but may lose the last commits on power loss.
   */
  synchronous?: "FULL" | "NORMAL";
  /**
   * `INCREMENTAL` keeps the pages of deleted rows in a list that
   * `PRAGMA incremental_vacuum` returns to the file system. It takes effect
   * only on a new, empty database, or after a VACUUM.
   */
  autoVacuum?: "NONE" | "INCREMENTAL";
}

/** Opens a SQLite database in WAL mode with foreign keys on. */
export function openDatabase(path: string, options: OpenDatabaseOptions = {}): SqliteDatabase {
  const db = new Database(path);
  // Set before WAL mode, because switching to WAL writes the header of a new
  // database and fixes its auto_vacuum mode.
  if (options.autoVacuum !== undefined) db.pragma(`auto_vacuum = ${options.autoVacuum}`);
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${options.synchronous ?? "FULL"}`);
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  return db;
}
