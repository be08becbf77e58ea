import type { Statement } from "better-sqlite3";
import type { SqliteDatabase } from "../common/sqlite.js";
import type { Dimension } from "./store.js";

export type AlarmState = "OK" | "ALARM" | "INSUFFICIENT_DATA";
export type HistoryItemType = "ConfigurationUpdate" | "StateUpdate" | "Action";

/** A metric alarm's configuration, as PutMetricAlarm accepted it. */
export interface AlarmConfig {
  alarmName: string;
  alarmDescription: string | undefined;
  okActions: string[];
  alarmActions: string[];
  insufficientDataActions: string[];
  namespace: string;
  metricName: string;
  dimensions: Dimension[];
  /** Exactly one of `statistic` and `extendedStatistic` is set. */
  statistic: string | undefined;
  extendedStatistic: string | undefined;
  periodSeconds: number;
  unit: string | undefined;
  evaluationPeriods: number;
  datapointsToAlarm: number;
  threshold: number;
  comparisonOperator: string;
  treatMissingData: "breaching" | "notBreaching" | "ignore" | "missing";
  evaluateLowSampleCountPercentile: string | undefined;
}

export interface AlarmRecord {
  config: AlarmConfig;
  actionsEnabled: boolean;
  stateValue: AlarmState;
  stateReason: string;
  stateReasonData: string | undefined;
  stateUpdatedMs: number;
  stateTransitionedMs: number;
  configUpdatedMs: number;
}

export interface HistoryItem {
  id: number;
  alarmName: string;
  timestampMs: number;
  itemType: HistoryItemType;
  summary: string;
  data: string;
}

/** CloudWatch keeps alarm history for 30 days. */
export const HISTORY_RETENTION_MS = 30 * 24 * 3600 * 1000;
/** History items kept per alarm, which bounds the table when an alarm flaps every minute. */
export const MAX_HISTORY_ITEMS_PER_ALARM = 1_000;
/**
 * History items kept in all: those of 1,000 alarms (the alarm cap) at
 * MAX_HISTORY_ITEMS_PER_ALARM each. The history of deleted alarms is kept
 * too, so without this bound alarms created and deleted under new names
 * would grow the table past that.
 */
export const MAX_HISTORY_ITEMS = 1_000 * MAX_HISTORY_ITEMS_PER_ALARM;

interface AlarmRow {
  config: string;
  actionsEnabled: number;
  stateValue: AlarmState;
  stateReason: string;
  stateReasonData: string | null;
  stateUpdatedMs: number;
  stateTransitionedMs: number;
  configUpdatedMs: number;
}

/** Alarms and their history, in tables of the metrics database. */
export class AlarmStore {
  private readonly statements = new Map<string, Statement>();

  constructor(private readonly db: SqliteDatabase) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS alarms (
        alarm_name TEXT PRIMARY KEY,
        config TEXT NOT NULL,
        actions_enabled INTEGER NOT NULL,
        state_value TEXT NOT NULL,
        state_reason TEXT NOT NULL,
        state_reason_data TEXT,
        state_updated_ms INTEGER NOT NULL,
        state_transitioned_ms INTEGER NOT NULL,
        config_updated_ms INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS alarm_history (
        id INTEGER PRIMARY KEY,
        alarm_name TEXT NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        item_type TEXT NOT NULL,
        summary TEXT NOT NULL,
        data TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS alarm_history_by_alarm ON alarm_history (alarm_name, id);
      CREATE INDEX IF NOT EXISTS alarm_history_by_age ON alarm_history (timestamp_ms);
    `);
  }

  private statement(sql: string): Statement {
    let prepared = this.statements.get(sql);
    if (prepared === undefined) {
      prepared = this.db.prepare(sql);
      this.statements.set(sql, prepared);
    }
    return prepared;
  }

  count(): number {
    return (this.statement(`SELECT COUNT(*) AS count FROM alarms`).get() as { count: number }).count;
  }

  get(alarmName: string): AlarmRecord | undefined {
    const row = this.statement(`${SELECT_ALARM} WHERE alarm_name = ?`).get(alarmName) as AlarmRow | undefined;
    return row === undefined ? undefined : fromRow(row);
  }

  /** Returns every alarm, sorted by name. */
  list(): AlarmRecord[] {
    return (this.statement(`${SELECT_ALARM} ORDER BY alarm_name`).all() as AlarmRow[]).map(fromRow);
  }

  /** Inserts or replaces an alarm and records a ConfigurationUpdate item, in one transaction. */
  save(record: AlarmRecord, history: Omit<HistoryItem, "id">): void {
    this.db.transaction(() => {
      this
        .statement(
          `INSERT INTO alarms (alarm_name, config, actions_enabled, state_value, state_reason, state_reason_data,
             state_updated_ms, state_transitioned_ms, config_updated_ms)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (alarm_name) DO UPDATE SET config = excluded.config, actions_enabled = excluded.actions_enabled,
             config_updated_ms = excluded.config_updated_ms`,
        )
        .run(
          record.config.alarmName,
          JSON.stringify(record.config),
          record.actionsEnabled ? 1 : 0,
          record.stateValue,
          record.stateReason,
          record.stateReasonData ?? null,
          record.stateUpdatedMs,
          record.stateTransitionedMs,
          record.configUpdatedMs,
        );
      this.addHistory(history);
    })();
  }

  /** Records a new state and the history items of the change, in one transaction. */
  setState(
    alarmName: string,
    state: { value: AlarmState; reason: string; reasonData: string | undefined; nowMs: number },
    history: Array<Omit<HistoryItem, "id">>,
  ): void {
    this.db.transaction(() => {
      this
        .statement(
          `UPDATE alarms SET state_value = ?, state_reason = ?, state_reason_data = ?, state_updated_ms = ?,
             state_transitioned_ms = CASE WHEN state_value = ? THEN state_transitioned_ms ELSE ? END
           WHERE alarm_name = ?`,
        )
        .run(state.value, state.reason, state.reasonData ?? null, state.nowMs, state.value, state.nowMs, alarmName);
      for (const item of history) this.addHistory(item);
    })();
  }

  setActionsEnabled(alarmNames: string[], enabled: boolean): void {
    this.db.transaction(() => {
      for (const name of alarmNames) this.statement(`UPDATE alarms SET actions_enabled = ? WHERE alarm_name = ?`).run(enabled ? 1 : 0, name);
    })();
  }

  /** Deletes the alarms that `deletions` name and records each item, in one transaction. Their history stays. */
  delete(deletions: Array<Omit<HistoryItem, "id">>): void {
    this.db.transaction(() => {
      for (const item of deletions) {
        this.statement(`DELETE FROM alarms WHERE alarm_name = ?`).run(item.alarmName);
        this.addHistory(item);
      }
    })();
  }

  /** Returns history items, oldest first or newest first, after the item `afterId` in that order. */
  history(filter: {
    alarmName: string | undefined;
    itemType: HistoryItemType | undefined;
    fromMs: number;
    toMs: number;
    ascending: boolean;
    afterId: number | undefined;
    limit: number;
  }): HistoryItem[] {
    const order = filter.ascending ? "ASC" : "DESC";
    let after = "";
    if (filter.afterId !== undefined) after = filter.ascending ? "AND id > @afterId" : "AND id < @afterId";
    return this
      .statement(
        `SELECT id, alarm_name AS alarmName, timestamp_ms AS timestampMs, item_type AS itemType, summary, data
         FROM alarm_history
         WHERE (@alarmName IS NULL OR alarm_name = @alarmName) AND (@itemType IS NULL OR item_type = @itemType)
           AND timestamp_ms >= @fromMs AND timestamp_ms < @toMs ${after}
         ORDER BY id ${order} LIMIT @limit`,
      )
      .all({
        alarmName: filter.alarmName ?? null,
        itemType: filter.itemType ?? null,
        fromMs: filter.fromMs,
        toMs: filter.toMs,
        afterId: filter.afterId ?? null,
        limit: filter.limit,
      }) as HistoryItem[];
  }

  /**
   * Deletes history past HISTORY_RETENTION_MS, past MAX_HISTORY_ITEMS_PER_ALARM
   * per alarm name, and the oldest items past MAX_HISTORY_ITEMS in all.
   */
  pruneHistory(nowMs: number): void {
    this.statement(`DELETE FROM alarm_history WHERE timestamp_ms < ?`).run(nowMs - HISTORY_RETENTION_MS);
    this
      .statement(
        `DELETE FROM alarm_history WHERE id IN (
           SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY alarm_name ORDER BY id DESC) AS position FROM alarm_history)
           WHERE position > ?)`,
      )
      .run(MAX_HISTORY_ITEMS_PER_ALARM);
    this
      .statement(`DELETE FROM alarm_history WHERE id <= (SELECT id FROM alarm_history ORDER BY id DESC LIMIT 1 OFFSET ?)`)
      .run(MAX_HISTORY_ITEMS);
  }

  private addHistory(item: Omit<HistoryItem, "id">): void {
    this
      .statement(`INSERT INTO alarm_history (alarm_name, timestamp_ms, item_type, summary, data) VALUES (?, ?, ?, ?, ?)`)
      .run(item.alarmName, item.timestampMs, item.itemType, item.summary, item.data);
  }
}

const SELECT_ALARM = `SELECT config, actions_enabled AS actionsEnabled, state_value AS stateValue, state_reason AS stateReason,
  state_reason_data AS stateReasonData, state_updated_ms AS stateUpdatedMs, state_transitioned_ms AS stateTransitionedMs,
  config_updated_ms AS configUpdatedMs FROM alarms`;

function fromRow(row: AlarmRow): AlarmRecord {
  return {
    config: JSON.parse(row.config) as AlarmConfig,
    actionsEnabled: row.actionsEnabled === 1,
    stateValue: row.stateValue,
    stateReason: row.stateReason,
    stateReasonData: row.stateReasonData ?? undefined,
    stateUpdatedMs: row.stateUpdatedMs,
    stateTransitionedMs: row.stateTransitionedMs,
    configUpdatedMs: row.configUpdatedMs,
  };
}
