import Database from "better-sqlite3";

export type SqliteDatabase = Database.Database;

export interface OpenDatabaseOptions {
  /**
   * `FULL` makes each commit survive power loss; `NORMAL` in WAL mode survives
   * a process crash but may lose the last commits on power loss.
   */
  synchronous?: "FULL" | "NORMAL";
}

/** Opens a SQLite database in WAL mode with foreign keys on. */
export function openDatabase(path: string, options: OpenDatabaseOptions = {}): SqliteDatabase {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${options.synchronous ?? "FULL"}`);
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  return db;
}
