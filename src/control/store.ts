import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { DistributionConfig, OriginAccessControlConfig } from "@aws-sdk/client-cloudfront";
import { openDatabase, type SqliteDatabase } from "../common/sqlite.js";

/** A distribution as stored: the config plus what the control plane assigned. */
export interface DistributionRecord {
  id: string;
  arn: string;
  domainName: string;
  callerReference: string;
  config: DistributionConfig;
  etag: string;
  /** Increases by one whenever the deployed snapshot changes. */
  version: number;
  lastModifiedMs: number;
}

export interface OriginAccessControlRecord {
  id: string;
  config: OriginAccessControlConfig;
  etag: string;
}

/** The three kinds of policy a cache behavior can name. */
export type PolicyKind = "cache" | "origin-request" | "response-headers";

/** A customer-created policy; the config is the SDK's config shape of its kind. */
export interface PolicyRecord {
  kind: PolicyKind;
  id: string;
  config: { Name?: string | undefined };
  etag: string;
  lastModifiedMs: number;
}

export type InvalidationStatus = "InProgress" | "Completed";

export interface InvalidationRecord {
  id: string;
  distributionId: string;
  callerReference: string;
  paths: string[];
  status: InvalidationStatus;
  createTimeMs: number;
  /** Edges that were live at publication and have not acknowledged it yet. */
  pendingEdgeIds: string[];
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS distributions (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  arn TEXT NOT NULL,
  domain_name TEXT NOT NULL,
  caller_reference TEXT NOT NULL UNIQUE,
  config_json TEXT NOT NULL,
  etag TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_modified_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS origin_access_controls (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL UNIQUE,
  config_json TEXT NOT NULL,
  etag TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS invalidations (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  distribution_id TEXT NOT NULL REFERENCES distributions(id) ON DELETE CASCADE,
  caller_reference TEXT NOT NULL,
  paths_json TEXT NOT NULL,
  status TEXT NOT NULL,
  create_time_ms INTEGER NOT NULL,
  pending_edges_json TEXT NOT NULL,
  UNIQUE (distribution_id, caller_reference)
);
CREATE TABLE IF NOT EXISTS policies (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  config_json TEXT NOT NULL,
  etag TEXT NOT NULL,
  last_modified_ms INTEGER NOT NULL,
  UNIQUE (kind, name)
);
CREATE TABLE IF NOT EXISTS tags (
  resource_arn TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (resource_arn, key)
);
`;

interface DistributionRow {
  id: string;
  arn: string;
  domain_name: string;
  caller_reference: string;
  config_json: string;
  etag: string;
  version: number;
  last_modified_ms: number;
}

interface InvalidationRow {
  id: string;
  distribution_id: string;
  caller_reference: string;
  paths_json: string;
  status: InvalidationStatus;
  create_time_ms: number;
  pending_edges_json: string;
}

interface PolicyRow {
  kind: PolicyKind;
  id: string;
  config_json: string;
  etag: string;
  last_modified_ms: number;
}

function toPolicy(row: PolicyRow): PolicyRecord {
  return {
    kind: row.kind,
    id: row.id,
    config: JSON.parse(row.config_json) as PolicyRecord["config"],
    etag: row.etag,
    lastModifiedMs: row.last_modified_ms,
  };
}

function toDistribution(row: DistributionRow): DistributionRecord {
  return {
    id: row.id,
    arn: row.arn,
    domainName: row.domain_name,
    callerReference: row.caller_reference,
    config: JSON.parse(row.config_json) as DistributionConfig,
    etag: row.etag,
    version: row.version,
    lastModifiedMs: row.last_modified_ms,
  };
}

function toInvalidation(row: InvalidationRow): InvalidationRecord {
  return {
    id: row.id,
    distributionId: row.distribution_id,
    callerReference: row.caller_reference,
    paths: JSON.parse(row.paths_json) as string[],
    status: row.status,
    createTimeMs: row.create_time_ms,
    pendingEdgeIds: JSON.parse(row.pending_edges_json) as string[],
  };
}

/**
 * The control plane's durable state in `<dataDir>/control/control.db`. Every
 * method is synchronous, so a read-check-write inside `transaction` cannot
 * interleave with another request: this is what makes If-Match and
 * CallerReference checks atomic.
 */
export class ControlStore {
  private readonly db: SqliteDatabase;

  constructor(dataDir: string) {
    const folder = join(dataDir, "control");
    mkdirSync(folder, { recursive: true });
    this.db = openDatabase(join(folder, "control.db"));
    this.db.exec(SCHEMA);
  }

  close(): void {
    this.db.close();
  }

  transaction<T>(work: () => T): T {
    return this.db.transaction(work).immediate();
  }

  getDistribution(id: string): DistributionRecord | undefined {
    const row = this.db.prepare("SELECT * FROM distributions WHERE id = ?").get(id) as DistributionRow | undefined;
    return row && toDistribution(row);
  }

  findDistributionByCallerReference(callerReference: string): DistributionRecord | undefined {
    const row = this.db
      .prepare("SELECT * FROM distributions WHERE caller_reference = ?")
      .get(callerReference) as DistributionRow | undefined;
    return row && toDistribution(row);
  }

  /** Lists distributions in creation order, starting after the one with id `afterId`. */
  listDistributions(afterId: string | undefined, limit: number): DistributionRecord[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM distributions
         WHERE seq > COALESCE((SELECT seq FROM distributions WHERE id = ?), 0)
         ORDER BY seq LIMIT ?`,
      )
      .all(afterId ?? "", limit) as DistributionRow[];
    return rows.map(toDistribution);
  }

  allDistributions(): DistributionRecord[] {
    return (this.db.prepare("SELECT * FROM distributions ORDER BY seq").all() as DistributionRow[]).map(toDistribution);
  }

  insertDistribution(record: DistributionRecord): void {
    this.db
      .prepare(
        `INSERT INTO distributions (id, arn, domain_name, caller_reference, config_json, etag, version, last_modified_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        record.id,
        record.arn,
        record.domainName,
        record.callerReference,
        JSON.stringify(record.config),
        record.etag,
        record.version,
        record.lastModifiedMs,
      );
  }

  updateDistribution(record: DistributionRecord): void {
    this.db
      .prepare(
        `UPDATE distributions SET config_json = ?, etag = ?, version = ?, last_modified_ms = ? WHERE id = ?`,
      )
      .run(JSON.stringify(record.config), record.etag, record.version, record.lastModifiedMs, record.id);
  }

  deleteDistribution(id: string): void {
    this.db.prepare("DELETE FROM distributions WHERE id = ?").run(id);
  }

  getOriginAccessControl(id: string): OriginAccessControlRecord | undefined {
    const row = this.db.prepare("SELECT id, config_json, etag FROM origin_access_controls WHERE id = ?").get(id) as
      | { id: string; config_json: string; etag: string }
      | undefined;
    return row && { id: row.id, config: JSON.parse(row.config_json) as OriginAccessControlConfig, etag: row.etag };
  }

  findOriginAccessControlIdByName(name: string): string | undefined {
    const row = this.db.prepare("SELECT id FROM origin_access_controls WHERE name = ?").get(name) as
      | { id: string }
      | undefined;
    return row?.id;
  }

  listOriginAccessControls(afterId: string | undefined, limit: number): OriginAccessControlRecord[] {
    const rows = this.db
      .prepare(
        `SELECT id, config_json, etag FROM origin_access_controls
         WHERE seq > COALESCE((SELECT seq FROM origin_access_controls WHERE id = ?), 0)
         ORDER BY seq LIMIT ?`,
      )
      .all(afterId ?? "", limit) as Array<{ id: string; config_json: string; etag: string }>;
    return rows.map((row) => ({
      id: row.id,
      config: JSON.parse(row.config_json) as OriginAccessControlConfig,
      etag: row.etag,
    }));
  }

  putOriginAccessControl(record: OriginAccessControlRecord): void {
    this.db
      .prepare(
        `INSERT INTO origin_access_controls (id, name, config_json, etag) VALUES (?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, config_json = excluded.config_json, etag = excluded.etag`,
      )
      .run(record.id, record.config.Name, JSON.stringify(record.config), record.etag);
  }

  deleteOriginAccessControl(id: string): void {
    this.db.prepare("DELETE FROM origin_access_controls WHERE id = ?").run(id);
  }

  getInvalidation(distributionId: string, id: string): InvalidationRecord | undefined {
    const row = this.db
      .prepare("SELECT * FROM invalidations WHERE distribution_id = ? AND id = ?")
      .get(distributionId, id) as InvalidationRow | undefined;
    return row && toInvalidation(row);
  }

  findInvalidationByCallerReference(distributionId: string, callerReference: string): InvalidationRecord | undefined {
    const row = this.db
      .prepare("SELECT * FROM invalidations WHERE distribution_id = ? AND caller_reference = ?")
      .get(distributionId, callerReference) as InvalidationRow | undefined;
    return row && toInvalidation(row);
  }

  /** Lists a distribution's invalidations, newest first, starting after the one with id `afterId`. */
  listInvalidations(distributionId: string, afterId: string | undefined, limit: number): InvalidationRecord[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM invalidations
         WHERE distribution_id = ?
           AND seq < COALESCE((SELECT seq FROM invalidations WHERE id = ?), 9223372036854775807)
         ORDER BY seq DESC LIMIT ?`,
      )
      .all(distributionId, afterId ?? "", limit) as InvalidationRow[];
    return rows.map(toInvalidation);
  }

  inProgressInvalidations(): InvalidationRecord[] {
    const rows = this.db.prepare("SELECT * FROM invalidations WHERE status = 'InProgress'").all() as InvalidationRow[];
    return rows.map(toInvalidation);
  }

  insertInvalidation(record: InvalidationRecord): void {
    this.db
      .prepare(
        `INSERT INTO invalidations (id, distribution_id, caller_reference, paths_json, status, create_time_ms, pending_edges_json)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        record.id,
        record.distributionId,
        record.callerReference,
        JSON.stringify(record.paths),
        record.status,
        record.createTimeMs,
        JSON.stringify(record.pendingEdgeIds),
      );
  }

  setInvalidationProgress(id: string, status: InvalidationStatus, pendingEdgeIds: string[]): void {
    this.db
      .prepare("UPDATE invalidations SET status = ?, pending_edges_json = ? WHERE id = ?")
      .run(status, JSON.stringify(pendingEdgeIds), id);
  }

  getPolicy(kind: PolicyKind, id: string): PolicyRecord | undefined {
    const row = this.db.prepare("SELECT * FROM policies WHERE kind = ? AND id = ?").get(kind, id) as PolicyRow | undefined;
    return row && toPolicy(row);
  }

  findPolicyIdByName(kind: PolicyKind, name: string): string | undefined {
    const row = this.db.prepare("SELECT id FROM policies WHERE kind = ? AND name = ?").get(kind, name) as
      | { id: string }
      | undefined;
    return row?.id;
  }

  /** Lists a kind's policies in creation order. */
  listPolicies(kind: PolicyKind): PolicyRecord[] {
    const rows = this.db.prepare("SELECT * FROM policies WHERE kind = ? ORDER BY seq").all(kind) as PolicyRow[];
    return rows.map(toPolicy);
  }

  putPolicy(record: PolicyRecord): void {
    this.db
      .prepare(
        `INSERT INTO policies (kind, id, name, config_json, etag, last_modified_ms) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, config_json = excluded.config_json,
           etag = excluded.etag, last_modified_ms = excluded.last_modified_ms`,
      )
      .run(record.kind, record.id, record.config.Name ?? "", JSON.stringify(record.config), record.etag, record.lastModifiedMs);
  }

  deletePolicy(kind: PolicyKind, id: string): void {
    this.db.prepare("DELETE FROM policies WHERE kind = ? AND id = ?").run(kind, id);
  }

  getTags(resourceArn: string): Array<{ Key: string; Value: string }> {
    const rows = this.db
      .prepare("SELECT key, value FROM tags WHERE resource_arn = ? ORDER BY key")
      .all(resourceArn) as Array<{ key: string; value: string }>;
    return rows.map((row) => ({ Key: row.key, Value: row.value }));
  }

  putTag(resourceArn: string, key: string, value: string): void {
    this.db
      .prepare(
        "INSERT INTO tags (resource_arn, key, value) VALUES (?, ?, ?) ON CONFLICT (resource_arn, key) DO UPDATE SET value = excluded.value",
      )
      .run(resourceArn, key, value);
  }

  deleteTag(resourceArn: string, key: string): void {
    this.db.prepare("DELETE FROM tags WHERE resource_arn = ? AND key = ?").run(resourceArn, key);
  }

  deleteAllTags(resourceArn: string): void {
    this.db.prepare("DELETE FROM tags WHERE resource_arn = ?").run(resourceArn);
  }
}
