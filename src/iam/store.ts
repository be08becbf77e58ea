import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { openDatabase, type SqliteDatabase } from "../common/sqlite.js";
import { iamErrors } from "./errors.js";
import {
  MAX_ACCESS_KEYS_PER_USER,
  newAccessKeyId,
  newSecretAccessKey,
  newUserId,
  userArn,
  type AccessKeyStatus,
  type Tag,
} from "./names.js";
import type { SecretSealer } from "./secrets.js";

export interface UserRecord {
  userId: string;
  userName: string;
  path: string;
  arn: string;
  createdAtMs: number;
  tags: Tag[];
}

export interface AccessKeyRecord {
  accessKeyId: string;
  userName: string;
  status: AccessKeyStatus;
  createdAtMs: number;
}

/** A key with its decrypted secret: returned once by createAccessKey, and to the credential store. */
export interface AccessKeyWithSecret extends AccessKeyRecord {
  secretAccessKey: string;
  user: UserRecord;
}

export interface Page<T> {
  items: T[];
  /** The marker of the next page, when the listing is truncated. */
  nextMarker: string | undefined;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  name TEXT PRIMARY KEY,
  value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
  user_id TEXT PRIMARY KEY,
  user_name TEXT NOT NULL UNIQUE COLLATE NOCASE,
  path TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  tags_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS access_keys (
  access_key_id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(user_id),
  status TEXT NOT NULL CHECK (status IN ('Active', 'Inactive')),
  secret_sealed BLOB NOT NULL,
  created_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS access_keys_by_user ON access_keys(user_id);
CREATE TABLE IF NOT EXISTS bucket_owners (
  bucket TEXT PRIMARY KEY,
  bucket_created_at_ms INTEGER NOT NULL,
  owner_user_id TEXT NOT NULL
);
`;

/** A fixed plaintext sealed at creation, to detect a master key other than the database's. */
const KEY_CHECK_PLAINTEXT = "portico-iam-master-key-check";

interface UserRow {
  user_id: string;
  user_name: string;
  path: string;
  created_at_ms: number;
  tags_json: string;
}

interface KeyRow {
  access_key_id: string;
  user_name: string;
  status: AccessKeyStatus;
  created_at_ms: number;
}

/**
 * Users and access keys in `<dataDir>/iam/iam.db`. Secrets are stored sealed
 * by the master key and never in plaintext. Writes run in IMMEDIATE
 * transactions, so the per-user key limit and the keys-before-delete rule
 * hold when the CLI and a running server write at the same time.
 */
export class IamStore {
  readonly db: SqliteDatabase;
  private readonly listeners = new Set<() => void>();
  private readonly dataVersion: () => number;

  private constructor(
    db: SqliteDatabase,
    private readonly accountId: string,
    private readonly sealer: SecretSealer,
  ) {
    this.db = db;
    const statement = db.prepare<[], number>("PRAGMA data_version").pluck();
    this.dataVersion = () => statement.get() as number;
  }

  /** Opens (creating when absent) the IAM database and checks that `sealer` has its master key. */
  static open(iamDir: string, accountId: string, sealer: SecretSealer): IamStore {
    mkdirSync(iamDir, { recursive: true, mode: 0o700 });
    const db = openDatabase(join(iamDir, "iam.db"));
    try {
      db.exec(SCHEMA);
      const store = new IamStore(db, accountId, sealer);
      store.checkMasterKey();
      return store;
    } catch (error) {
      db.close();
      throw error;
    }
  }

  private checkMasterKey(): void {
    this.db
      .transaction(() => {
        const row = this.db.prepare<[], { value: Buffer }>("SELECT value FROM meta WHERE name = 'key_check'").get();
        if (!row) {
          this.db
            .prepare("INSERT INTO meta (name, value) VALUES ('key_check', ?)")
            .run(this.sealer.seal(KEY_CHECK_PLAINTEXT, "key_check"));
          this.db.prepare("INSERT OR IGNORE INTO meta (name, value) VALUES ('created_at_ms', ?)").run(String(Date.now()));
          return;
        }
        let plaintext: string | undefined;
        try {
          plaintext = this.sealer.open(row.value, "key_check");
        } catch {
          plaintext = undefined;
        }
        if (plaintext !== KEY_CHECK_PLAINTEXT) {
          throw new Error(
            "the master key does not match the one this IAM database was encrypted with; " +
              "restore <data-dir>/iam/master.key or set PORTICO_MASTER_KEY to the original key",
          );
        }
      })
      .immediate();
  }

  /** Returns when this database was created, which stands for the root's creation date in GetUser. */
  createdAtMs(): number {
    const row = this.db.prepare<[], { value: string }>("SELECT value FROM meta WHERE name = 'created_at_ms'").get();
    return row === undefined ? 0 : Number(row.value);
  }

  /** Registers a callback run after every write made through this connection. */
  onChange(listener: () => void): void {
    this.listeners.add(listener);
  }

  /**
   * Returns SQLite's data_version: it changes when another connection (such
   * as the CLI in another process) commits to the database.
   */
  currentDataVersion(): number {
    return this.dataVersion();
  }

  close(): void {
    this.listeners.clear();
    this.db.close();
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }

  private toUser(row: UserRow): UserRecord {
    return {
      userId: row.user_id,
      userName: row.user_name,
      path: row.path,
      arn: userArn(this.accountId, row.path, row.user_name),
      createdAtMs: row.created_at_ms,
      tags: JSON.parse(row.tags_json) as Tag[],
    };
  }

  private findUserRow(userName: string): UserRow | undefined {
    // IAM user names are unique regardless of case; the column's NOCASE collation applies.
    return this.db
      .prepare<[string], UserRow>("SELECT user_id, user_name, path, created_at_ms, tags_json FROM users WHERE user_name = ?")
      .get(userName);
  }

  createUser(userName: string, path: string, tags: Tag[], nowMs: number): UserRecord {
    const row = this.db
      .transaction((): UserRow => {
        const existing = this.findUserRow(userName);
        if (existing) throw iamErrors.userAlreadyExists(existing.user_name);
        const created: UserRow = {
          user_id: newUserId(),
          user_name: userName,
          path,
          created_at_ms: nowMs,
          tags_json: JSON.stringify(tags),
        };
        this.db
          .prepare("INSERT INTO users (user_id, user_name, path, created_at_ms, tags_json) VALUES (?, ?, ?, ?, ?)")
          .run(created.user_id, created.user_name, created.path, created.created_at_ms, created.tags_json);
        return created;
      })
      .immediate();
    this.changed();
    return this.toUser(row);
  }

  getUser(userName: string): UserRecord {
    const row = this.findUserRow(userName);
    if (!row) throw iamErrors.noSuchUser(userName);
    return this.toUser(row);
  }

  /** Lists users by name, `maxItems` a page, after the user named by `marker`. */
  listUsers(pathPrefix: string, marker: string | undefined, maxItems: number): Page<UserRecord> {
    const rows = this.db
      .prepare<[{ prefix: string; marker: string | null; limit: number }], UserRow>(
        `SELECT user_id, user_name, path, created_at_ms, tags_json FROM users
         WHERE substr(path, 1, length(@prefix)) = @prefix AND (@marker IS NULL OR user_name > @marker)
         ORDER BY user_name LIMIT @limit`,
      )
      .all({ prefix: pathPrefix, marker: marker ?? null, limit: maxItems + 1 });
    return pageOf(rows.map((row) => this.toUser(row)), maxItems, (user) => user.userName);
  }

  deleteUser(userName: string): void {
    this.db
      .transaction(() => {
        const row = this.findUserRow(userName);
        if (!row) throw iamErrors.noSuchUser(userName);
        const hasKey = this.db.prepare("SELECT 1 FROM access_keys WHERE user_id = ? LIMIT 1").get(row.user_id);
        if (hasKey) throw iamErrors.userHasAccessKeys(row.user_name);
        this.db.prepare("DELETE FROM users WHERE user_id = ?").run(row.user_id);
      })
      .immediate();
    this.changed();
  }

  /** Creates an active key for a user; the returned secret is the only plaintext copy. */
  createAccessKey(userName: string, nowMs: number): AccessKeyWithSecret {
    const secretAccessKey = newSecretAccessKey();
    const result = this.db
      .transaction(() => {
        const row = this.findUserRow(userName);
        if (!row) throw iamErrors.noSuchUser(userName);
        const count = this.db
          .prepare<[string], number>("SELECT count(*) FROM access_keys WHERE user_id = ?")
          .pluck()
          .get(row.user_id) as number;
        if (count >= MAX_ACCESS_KEYS_PER_USER) throw iamErrors.accessKeyLimit(row.user_name, MAX_ACCESS_KEYS_PER_USER);
        const accessKeyId = newAccessKeyId();
        this.db
          .prepare(
            "INSERT INTO access_keys (access_key_id, user_id, status, secret_sealed, created_at_ms) VALUES (?, ?, 'Active', ?, ?)",
          )
          .run(accessKeyId, row.user_id, this.sealer.seal(secretAccessKey, accessKeyId), nowMs);
        return { row, accessKeyId };
      })
      .immediate();
    this.changed();
    const user = this.toUser(result.row);
    return {
      accessKeyId: result.accessKeyId,
      userName: user.userName,
      status: "Active",
      createdAtMs: nowMs,
      secretAccessKey,
      user,
    };
  }

  /** Lists a user's keys, or every user's keys when `userName` is undefined, by key id. */
  listAccessKeys(userName: string | undefined, marker: string | undefined, maxItems: number): Page<AccessKeyRecord> {
    let userId: string | undefined;
    if (userName !== undefined) {
      const row = this.findUserRow(userName);
      if (!row) throw iamErrors.noSuchUser(userName);
      userId = row.user_id;
    }
    const rows = this.db
      .prepare<[{ userId: string | null; marker: string | null; limit: number }], KeyRow>(
        `SELECT k.access_key_id, u.user_name, k.status, k.created_at_ms
         FROM access_keys k JOIN users u ON u.user_id = k.user_id
         WHERE (@userId IS NULL OR k.user_id = @userId) AND (@marker IS NULL OR k.access_key_id > @marker)
         ORDER BY k.access_key_id LIMIT @limit`,
      )
      .all({ userId: userId ?? null, marker: marker ?? null, limit: maxItems + 1 });
    const keys = rows.map((row) => ({
      accessKeyId: row.access_key_id,
      userName: row.user_name,
      status: row.status,
      createdAtMs: row.created_at_ms,
    }));
    return pageOf(keys, maxItems, (key) => key.accessKeyId);
  }

  /** Deletes a key; with `userName`, only when the key belongs to that user, as IAM requires. */
  deleteAccessKey(accessKeyId: string, userName: string | undefined): AccessKeyRecord {
    const key = this.db
      .transaction(() => {
        const found = this.findKey(accessKeyId, userName);
        this.db.prepare("DELETE FROM access_keys WHERE access_key_id = ?").run(accessKeyId);
        return found;
      })
      .immediate();
    this.changed();
    return key;
  }

  updateAccessKey(accessKeyId: string, userName: string | undefined, status: AccessKeyStatus): AccessKeyRecord {
    const key = this.db
      .transaction(() => {
        const found = this.findKey(accessKeyId, userName);
        this.db.prepare("UPDATE access_keys SET status = ? WHERE access_key_id = ?").run(status, accessKeyId);
        return { ...found, status };
      })
      .immediate();
    this.changed();
    return key;
  }

  private findKey(accessKeyId: string, userName: string | undefined): AccessKeyRecord {
    const row = this.db
      .prepare<[string], KeyRow>(
        `SELECT k.access_key_id, u.user_name, k.status, k.created_at_ms
         FROM access_keys k JOIN users u ON u.user_id = k.user_id WHERE k.access_key_id = ?`,
      )
      .get(accessKeyId);
    if (userName !== undefined && !this.findUserRow(userName)) throw iamErrors.noSuchUser(userName);
    if (!row || (userName !== undefined && row.user_name.toLowerCase() !== userName.toLowerCase())) {
      throw iamErrors.noSuchAccessKey(accessKeyId);
    }
    return { accessKeyId: row.access_key_id, userName: row.user_name, status: row.status, createdAtMs: row.created_at_ms };
  }

  /**
   * Returns the user id that owns a bucket. An entry counts only for the
   * bucket it was recorded for: a bucket deleted and created again under the
   * same name has another creation time, so the old owner's entry no longer applies.
   */
  ownerOf(bucket: { name: string; createdAtMs: number }): string | undefined {
    return this.db
      .prepare<[string, number], string>(
        "SELECT owner_user_id FROM bucket_owners WHERE bucket = ? AND bucket_created_at_ms = ?",
      )
      .pluck()
      .get(bucket.name, bucket.createdAtMs) as string | undefined;
  }

  recordOwner(bucket: { name: string; createdAtMs: number }, userId: string): void {
    this.db
      .prepare("INSERT OR REPLACE INTO bucket_owners (bucket, bucket_created_at_ms, owner_user_id) VALUES (?, ?, ?)")
      .run(bucket.name, bucket.createdAtMs, userId);
  }

  /**
   * Returns an active key with its decrypted secret, or undefined when the key
   * does not exist or is inactive. This is the credential store's read path.
   */
  findActiveKey(accessKeyId: string): AccessKeyWithSecret | undefined {
    const row = this.db
      .prepare<[string], UserRow & { access_key_id: string; secret_sealed: Buffer; key_created_at_ms: number }>(
        `SELECT k.access_key_id, k.secret_sealed, k.created_at_ms AS key_created_at_ms,
                u.user_id, u.user_name, u.path, u.created_at_ms, u.tags_json
         FROM access_keys k JOIN users u ON u.user_id = k.user_id
         WHERE k.access_key_id = ? AND k.status = 'Active'`,
      )
      .get(accessKeyId);
    if (!row) return undefined;
    const user = this.toUser(row);
    return {
      accessKeyId: row.access_key_id,
      userName: user.userName,
      status: "Active",
      createdAtMs: row.key_created_at_ms,
      secretAccessKey: this.sealer.open(row.secret_sealed, row.access_key_id),
      user,
    };
  }
}

function pageOf<T>(rows: T[], maxItems: number, markerOf: (item: T) => string): Page<T> {
  if (rows.length <= maxItems) return { items: rows, nextMarker: undefined };
  const items = rows.slice(0, maxItems);
  return { items, nextMarker: markerOf(items[items.length - 1]!) };
}
