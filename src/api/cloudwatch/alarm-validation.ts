import { COMPARISON_OPERATORS } from "../../metrics/alarm-evaluator.js";
import type { AlarmConfig, AlarmState } from "../../metrics/alarm-store.js";
import type { Struct } from "./codec.js";
import { cloudWatchErrors } from "./errors.js";
import { checkPeriod } from "./operations.js";
import { checkLength, checkNamespace, checkUnit, invalidValue, percentileFraction, readDimensions, STATISTICS } from "./validation.js";

export const ALARM_STATES: ReadonlySet<string> = new Set(["OK", "ALARM", "INSUFFICIENT_DATA"]);
const TREAT_MISSING_DATA: ReadonlySet<string> = new Set(["breaching", "notBreaching", "ignore", "missing"]);
/**
 * PutMetricAlarm quotas: 5 actions per state, and an evaluation range of at
 * most one day for periods under an hour, 7 days for longer ones.
 */
const MAX_ACTIONS = 5;
const MAX_EVALUATION_RANGE_SECONDS = 7 * 24 * 3600;
const MAX_SHORT_PERIOD_RANGE_SECONDS = 24 * 3600;
const SHORT_PERIOD_SECONDS = 3600;

export function checkAlarmName(path: string, name: unknown): string {
  if (typeof name !== "string") throw cloudWatchErrors.missingParameter(path);
  checkLength(path, name, 1, 255);
  return name;
}

export function checkAlarmNames(path: string, value: unknown, max: number): string[] {
  const names = (value ?? []) as string[];
  if (names.length > max) {
    throw cloudWatchErrors.invalidParameterValue(`The collection ${path} must not have a size greater than ${max}.`);
  }
  names.forEach((name, i) => checkAlarmName(`${path}.member.${i + 1}`, name));
  return names;
}

export function checkState(path: string, value: unknown): AlarmState {
  if (typeof value !== "string" || !ALARM_STATES.has(value)) invalidValue(path, value);
  return value as AlarmState;
}

/** Validates a PutMetricAlarm request into an alarm configuration, with CloudWatch's error codes. */
export function readAlarmConfig(input: Struct): AlarmConfig {
  const alarmName = checkAlarmName("AlarmName", input.AlarmName);
  const description = input.AlarmDescription as string | undefined;
  if (description !== undefined) checkLength("AlarmDescription", description, 0, 1024);
  if (input.Metrics !== undefined || input.ThresholdMetricId !== undefined) {
    throw cloudWatchErrors.invalidParameterCombination(
      "Alarms on metric math expressions (Metrics, ThresholdMetricId) are not supported by this endpoint; alarm on one metric with Namespace and MetricName.",
    );
  }
  if (input.Namespace === undefined) throw cloudWatchErrors.missingParameter("Namespace");
  if (input.MetricName === undefined) throw cloudWatchErrors.missingParameter("MetricName");
  checkNamespace("Namespace", input.Namespace as string);
  checkLength("MetricName", input.MetricName as string, 1, 255);
  const dimensions = readDimensions("Dimensions", input.Dimensions);
  const unit = checkUnit("Unit", input.Unit);

  const statistic = input.Statistic as string | undefined;
  const extendedStatistic = input.ExtendedStatistic as string | undefined;
  if (statistic === undefined && extendedStatistic === undefined) throw cloudWatchErrors.missingParameter("Statistic or ExtendedStatistic");
  if (statistic !== undefined && extendedStatistic !== undefined) {
    throw cloudWatchErrors.invalidParameterCombination(
      "The parameters Statistic and ExtendedStatistic are mutually exclusive and you have specified both.",
    );
  }
  if (statistic !== undefined && !STATISTICS.has(statistic)) invalidValue("Statistic", statistic);
  if (extendedStatistic !== undefined && percentileFraction(extendedStatistic) === undefined) {
    invalidValue("ExtendedStatistic", extendedStatistic);
  }

  if (input.Period === undefined) throw cloudWatchErrors.missingParameter("Period");
  const periodSeconds = input.Period as number;
  checkPeriod("Period", periodSeconds);
  if (input.EvaluationPeriods === undefined) throw cloudWatchErrors.missingParameter("EvaluationPeriods");
  const evaluationPeriods = input.EvaluationPeriods as number;
  if (!Number.isInteger(evaluationPeriods) || evaluationPeriods < 1) invalidValue("EvaluationPeriods", evaluationPeriods);
  if (periodSeconds < SHORT_PERIOD_SECONDS && periodSeconds * evaluationPeriods > MAX_SHORT_PERIOD_RANGE_SECONDS) {
    throw cloudWatchErrors.invalidParameterCombination(
      `For a Period under ${SHORT_PERIOD_SECONDS} seconds, the product of Period and EvaluationPeriods must not exceed ` +
        `${MAX_SHORT_PERIOD_RANGE_SECONDS} seconds (one day).`,
    );
  }
  if (periodSeconds * evaluationPeriods > MAX_EVALUATION_RANGE_SECONDS) {
    throw cloudWatchErrors.invalidParameterCombination(
      `The product of Period and EvaluationPeriods must not exceed ${MAX_EVALUATION_RANGE_SECONDS} seconds (7 days).`,
    );
  }
  const datapointsToAlarm = (input.DatapointsToAlarm as number | undefined) ?? evaluationPeriods;
  if (!Number.isInteger(datapointsToAlarm) || datapointsToAlarm < 1 || datapointsToAlarm > evaluationPeriods) {
    throw cloudWatchErrors.invalidParameterValue(
      `The value ${datapointsToAlarm} for parameter DatapointsToAlarm is invalid; it must be from 1 to EvaluationPeriods (${evaluationPeriods}).`,
    );
  }
  if (input.Threshold === undefined) throw cloudWatchErrors.missingParameter("Threshold");
  const threshold = input.Threshold as number;
  if (!Number.isFinite(threshold)) invalidValue("Threshold", threshold);
  if (input.ComparisonOperator === undefined) throw cloudWatchErrors.missingParameter("ComparisonOperator");
  const comparisonOperator = input.ComparisonOperator as string;
  if (!COMPARISON_OPERATORS.has(comparisonOperator)) {
    // The anomaly detection operators need a ThresholdMetricId, which is not supported here.
    invalidValue("ComparisonOperator", comparisonOperator);
  }
  const treatMissingData = (input.TreatMissingData as string | undefined) ?? "missing";
  if (!TREAT_MISSING_DATA.has(treatMissingData)) invalidValue("TreatMissingData", treatMissingData);
  const lowSampleCount = input.EvaluateLowSampleCountPercentile as string | undefined;
  if (lowSampleCount !== undefined) {
    if (extendedStatistic === undefined) {
      throw cloudWatchErrors.invalidParameterCombination("The parameter EvaluateLowSampleCountPercentile requires ExtendedStatistic.");
    }
    if (lowSampleCount !== "evaluate" && lowSampleCount !== "ignore") invalidValue("EvaluateLowSampleCountPercentile", lowSampleCount);
  }

  return {
    alarmName,
    alarmDescription: description,
    okActions: readActions("OKActions", input.OKActions),
    alarmActions: readActions("AlarmActions", input.AlarmActions),
    insufficientDataActions: readActions("InsufficientDataActions", input.InsufficientDataActions),
    namespace: input.Namespace as string,
    metricName: input.MetricName as string,
    dimensions,
    statistic,
    extendedStatistic,
    periodSeconds,
    unit,
    evaluationPeriods,
    datapointsToAlarm,
    threshold,
    comparisonOperator,
    treatMissingData: treatMissingData as AlarmConfig["treatMissingData"],
    evaluateLowSampleCountPercentile: lowSampleCount,
  };
}

/** Validates an action list: at most 5 ARNs of 1 to 1,024 characters. */
function readActions(path: string, value: unknown): string[] {
  const actions = (value ?? []) as string[];
  if (actions.length > MAX_ACTIONS) {
    throw cloudWatchErrors.invalidParameterValue(`The collection ${path} must not have a size greater than ${MAX_ACTIONS}.`);
  }
  actions.forEach((action, i) => {
    checkLength(`${path}.member.${i + 1}`, action, 1, 1024);
    if (!/^arn:[^:]+:[^:]+:/.test(action)) invalidValue(`${path}.member.${i + 1}`, action);
  });
  return actions;
}
