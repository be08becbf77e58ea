import type { AlarmEvaluator } from "../../metrics/alarm-evaluator.js";
import type { AlarmRecord, HistoryItemType } from "../../metrics/alarm-store.js";
import { canonicalDimensions } from "../../metrics/store.js";
import type { Struct } from "./codec.js";
import { cloudWatchErrors } from "./errors.js";
import { decodeSignedToken, encodeSignedToken, requestFingerprint } from "./metric-data-pages.js";
import type { OperationContext, OperationHandler } from "./operations.js";
import { checkAlarmName, checkAlarmNames, checkState, readAlarmConfig } from "./alarm-validation.js";
import { checkLength, invalidValue, readDimensions } from "./validation.js";

/** Portico's cap on metric alarms, checked when PutMetricAlarm would create one. */
export const MAX_ALARMS = 1_000;
/** DescribeAlarms and DescribeAlarmHistory return at most 100 records a page; DescribeAlarms 50 by default. */
const MAX_RECORDS = 100;
const DEFAULT_ALARM_RECORDS = 50;
const MAX_ALARM_NAMES = 100;
const HISTORY_ITEM_TYPES: ReadonlySet<string> = new Set(["ConfigurationUpdate", "StateUpdate", "Action"]);
/** The Region in alarm ARNs; the endpoint serves one. */
const REGION = "us-east-1";

function alarms(context: OperationContext): AlarmEvaluator {
  return context.alarms;
}

function putMetricAlarm(input: Struct, context: OperationContext): undefined {
  const config = readAlarmConfig(input);
  const evaluator = alarms(context);
  const nowMs = context.reader.now();
  const existing = evaluator.store.get(config.alarmName);
  if (existing === undefined && evaluator.store.count() >= MAX_ALARMS) {
    throw cloudWatchErrors.limitExceeded(
      `The maximum number of alarms, ${MAX_ALARMS}, is reached. Delete alarms with DeleteAlarms before creating more.`,
    );
  }
  const record: AlarmRecord = existing
    ? { ...existing, config, configUpdatedMs: nowMs }
    : {
        config,
        actionsEnabled: true,
        stateValue: "INSUFFICIENT_DATA",
        stateReason: "Unchecked: Initial alarm creation",
        stateReasonData: undefined,
        stateUpdatedMs: nowMs,
        stateTransitionedMs: nowMs,
        configUpdatedMs: nowMs,
      };
  record.actionsEnabled = (input.ActionsEnabled as boolean | undefined) ?? true;
  evaluator.store.save(record, {
    alarmName: config.alarmName,
    timestampMs: nowMs,
    itemType: "ConfigurationUpdate",
    summary: `Alarm "${config.alarmName}" ${existing ? "updated" : "created"}`,
    data: JSON.stringify({ version: "1.0", type: existing ? "Update" : "Create", updatedAlarm: config }),
  });
  context.log.info({ alarmName: config.alarmName, created: existing === undefined }, "metric alarm saved");
  return undefined;
}

function describeAlarms(input: Struct, context: OperationContext): Struct {
  const names = checkAlarmNames("AlarmNames", input.AlarmNames, MAX_ALARM_NAMES);
  const prefix = input.AlarmNamePrefix as string | undefined;
  if (prefix !== undefined) checkLength("AlarmNamePrefix", prefix, 1, 255);
  if (names.length > 0 && prefix !== undefined) {
    throw cloudWatchErrors.invalidParameterCombination("The parameters AlarmNames and AlarmNamePrefix are mutually exclusive.");
  }
  const state = input.StateValue === undefined ? undefined : checkState("StateValue", input.StateValue);
  const actionPrefix = input.ActionPrefix as string | undefined;
  if (actionPrefix !== undefined) checkLength("ActionPrefix", actionPrefix, 1, 1024);
  const metricAlarms = includesMetricAlarms(input.AlarmTypes);
  const maxRecords = readMaxRecords(input.MaxRecords, DEFAULT_ALARM_RECORDS);
  const after = readToken(input, "alarms") as string | undefined;

  const wanted = new Set(names);
  const matching = metricAlarms
    ? alarms(context)
        .store.list()
        .filter((alarm) => {
          const name = alarm.config.alarmName;
          if (wanted.size > 0 && !wanted.has(name)) return false;
          if (prefix !== undefined && !name.startsWith(prefix)) return false;
          if (state !== undefined && alarm.stateValue !== state) return false;
          if (after !== undefined && name <= after) return false;
          if (actionPrefix === undefined) return true;
          const actions = [...alarm.config.okActions, ...alarm.config.alarmActions, ...alarm.config.insufficientDataActions];
          return actions.some((action) => action.startsWith(actionPrefix));
        })
    : [];
  const page = matching.slice(0, maxRecords);
  const output: Struct = { CompositeAlarms: [], MetricAlarms: page.map((alarm) => toMetricAlarm(alarm, context)) };
  if (matching.length > maxRecords) output.NextToken = issueToken(input, "alarms", page[page.length - 1]!.config.alarmName);
  return output;
}

/**
 * Validates AlarmTypes and returns whether it asks for metric alarms, the
 * only kind stored here. Without AlarmTypes, CloudWatch returns metric alarms only.
 */
function includesMetricAlarms(value: unknown): boolean {
  const types = (value ?? ["MetricAlarm"]) as string[];
  types.forEach((type, i) => type === "MetricAlarm" || type === "CompositeAlarm" || invalidValue(`AlarmTypes.member.${i + 1}`, type));
  return types.includes("MetricAlarm");
}

function describeAlarmsForMetric(input: Struct, context: OperationContext): Struct {
  const dimensions = JSON.stringify(canonicalDimensions(readDimensions("Dimensions", input.Dimensions)));
  const matching = alarms(context)
    .store.list()
    .filter((alarm) => {
      const config = alarm.config;
      if (config.namespace !== input.Namespace || config.metricName !== input.MetricName) return false;
      if (JSON.stringify(canonicalDimensions(config.dimensions)) !== dimensions) return false;
      if (input.Statistic !== undefined && config.statistic !== input.Statistic) return false;
      if (input.ExtendedStatistic !== undefined && config.extendedStatistic !== input.ExtendedStatistic) return false;
      if (input.Period !== undefined && config.periodSeconds !== input.Period) return false;
      return input.Unit === undefined || config.unit === input.Unit;
    });
  return { MetricAlarms: matching.map((alarm) => toMetricAlarm(alarm, context)) };
}

/**
 * Deletes the named alarms. CloudWatch deletes none when any name is wrong,
 * and so does this. Their history stays, with a ConfigurationUpdate item for
 * the deletion, because CloudWatch retains the history of deleted alarms.
 */
function deleteAlarms(input: Struct, context: OperationContext): undefined {
  const names = checkAlarmNames("AlarmNames", input.AlarmNames, MAX_ALARM_NAMES);
  const store = alarms(context).store;
  const records = names.map((name) => ({ name, record: store.get(name) }));
  const unknown = records.filter(({ record }) => record === undefined).map(({ name }) => name);
  if (unknown.length > 0) throw cloudWatchErrors.resourceNotFound(`No alarm named ${unknown.join(", ")} exists; no alarm was deleted.`);
  const nowMs = context.reader.now();
  // NOTE: the deletion item follows the create and update items' form; its
  // HistoryData was not compared with CloudWatch's.
  store.delete(
    records.map(({ name, record }) => ({
      alarmName: name,
      timestampMs: nowMs,
      itemType: "ConfigurationUpdate" as const,
      summary: `Alarm "${name}" deleted`,
      data: JSON.stringify({ version: "1.0", type: "Delete", deletedAlarm: record!.config }),
    })),
  );
  context.log.info({ alarmNames: names }, "metric alarms deleted");
  return undefined;
}

function setActionsEnabled(enabled: boolean): OperationHandler {
  return (input, context) => {
    const names = checkAlarmNames("AlarmNames", input.AlarmNames, MAX_ALARM_NAMES);
    alarms(context).store.setActionsEnabled(names, enabled);
    return undefined;
  };
}

function setAlarmState(input: Struct, context: OperationContext): undefined {
  const name = checkAlarmName("AlarmName", input.AlarmName);
  const state = checkState("StateValue", input.StateValue);
  const reason = input.StateReason as string;
  checkLength("StateReason", reason, 0, 1023);
  const reasonData = input.StateReasonData as string | undefined;
  if (reasonData !== undefined) {
    checkLength("StateReasonData", reasonData, 0, 4000);
    try {
      JSON.parse(reasonData);
    } catch {
      throw cloudWatchErrors.invalidFormat("The parameter StateReasonData must be a JSON document.");
    }
  }
  const evaluator = alarms(context);
  const alarm = evaluator.store.get(name);
  if (alarm === undefined) throw cloudWatchErrors.resourceNotFound(`No alarm named ${name} exists.`);
  // As in CloudWatch, the next evaluation may move the alarm back.
  evaluator.changeState(alarm, { value: state, reason, reasonData }, context.reader.now());
  return undefined;
}

function describeAlarmHistory(input: Struct, context: OperationContext): Struct {
  const name = input.AlarmName === undefined ? undefined : checkAlarmName("AlarmName", input.AlarmName);
  const itemType = input.HistoryItemType as string | undefined;
  if (itemType !== undefined && !HISTORY_ITEM_TYPES.has(itemType)) invalidValue("HistoryItemType", itemType);
  const scanBy = (input.ScanBy as string | undefined) ?? "TimestampDescending";
  if (scanBy !== "TimestampDescending" && scanBy !== "TimestampAscending") invalidValue("ScanBy", scanBy);
  const fromMs = (input.StartDate as number | undefined) ?? 0;
  const toMs = (input.EndDate as number | undefined) ?? Number.MAX_SAFE_INTEGER;
  if (!(fromMs < toMs)) throw cloudWatchErrors.invalidParameterValue("The parameter StartDate must be less than the parameter EndDate.");
  const maxRecords = readMaxRecords(input.MaxRecords, MAX_RECORDS);
  const metricAlarms = includesMetricAlarms(input.AlarmTypes);
  const afterId = readToken(input, "history") as number | undefined;
  if (!metricAlarms) return { AlarmHistoryItems: [] };

  const items = alarms(context).store.history({
    alarmName: name,
    itemType: itemType as HistoryItemType | undefined,
    fromMs,
    toMs,
    ascending: scanBy === "TimestampAscending",
    afterId,
    limit: maxRecords + 1,
  });

  const page = items.slice(0, maxRecords);
  const output: Struct = {
    AlarmHistoryItems: page.map((item) => ({
      AlarmName: item.alarmName,
      AlarmType: "MetricAlarm",
      Timestamp: item.timestampMs,
      HistoryItemType: item.itemType,
      HistorySummary: item.summary,
      HistoryData: item.data,
    })),
  };
  if (items.length > maxRecords) output.NextToken = issueToken(input, "history", page[page.length - 1]!.id);
  return output;
}

function readMaxRecords(value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_RECORDS) invalidValue("MaxRecords", value);
  return value as number;
}

/**
 * Returns a signed NextToken that carries the position `after` and a digest
 * of every member of the request but NextToken, as GetMetricData's tokens do.
 */
function issueToken(input: Struct, kind: string, after: unknown): string {
  return encodeSignedToken({ kind, f: requestFingerprint(input), after });
}

/**
 * Returns the position that the request's NextToken carries, or undefined
 * without one. A token of another operation or of a request with other
 * members raises InvalidNextToken.
 */
function readToken(input: Struct, kind: string): unknown {
  if (input.NextToken === undefined) return undefined;
  const parsed = decodeSignedToken(input.NextToken as string) as { kind?: unknown; f?: unknown; after?: unknown };
  if (parsed.kind !== kind || parsed.f !== requestFingerprint(input)) throw cloudWatchErrors.invalidNextToken();
  return parsed.after;
}

function toMetricAlarm(alarm: AlarmRecord, context: OperationContext): Struct {
  const config = alarm.config;
  const out: Struct = {
    AlarmName: config.alarmName,
    AlarmArn: `arn:aws:cloudwatch:${REGION}:${context.accountId}:alarm:${config.alarmName}`,
    AlarmDescription: config.alarmDescription,
    AlarmConfigurationUpdatedTimestamp: alarm.configUpdatedMs,
    ActionsEnabled: alarm.actionsEnabled,
    OKActions: config.okActions,
    AlarmActions: config.alarmActions,
    InsufficientDataActions: config.insufficientDataActions,
    StateValue: alarm.stateValue,
    StateReason: alarm.stateReason,
    StateReasonData: alarm.stateReasonData,
    StateUpdatedTimestamp: alarm.stateUpdatedMs,
    MetricName: config.metricName,
    Namespace: config.namespace,
    Statistic: config.statistic,
    ExtendedStatistic: config.extendedStatistic,
    Dimensions: config.dimensions.map((d) => ({ Name: d.Name, Value: d.Value })),
    Period: config.periodSeconds,
    Unit: config.unit,
    EvaluationPeriods: config.evaluationPeriods,
    DatapointsToAlarm: config.datapointsToAlarm,
    Threshold: config.threshold,
    ComparisonOperator: config.comparisonOperator,
    TreatMissingData: config.treatMissingData,
    EvaluateLowSampleCountPercentile: config.evaluateLowSampleCountPercentile,
    StateTransitionedTimestamp: alarm.stateTransitionedMs,
  };
  return out;
}

export const ALARM_OPERATIONS: Record<string, OperationHandler> = {
  PutMetricAlarm: putMetricAlarm,
  DescribeAlarms: describeAlarms,
  DescribeAlarmsForMetric: describeAlarmsForMetric,
  DeleteAlarms: deleteAlarms,
  EnableAlarmActions: setActionsEnabled(true),
  DisableAlarmActions: setActionsEnabled(false),
  SetAlarmState: setAlarmState,
  DescribeAlarmHistory: describeAlarmHistory,
};
