/**
 * The shapes of the alarm operations, transcribed from the service model
 * (com.amazonaws.cloudwatch, API version 2010-08-01). Members of newer alarm
 * kinds (composite, log and PromQL alarms, evaluation criteria) are left
 * out, so their values are ignored on input.
 */
import { boolean, Dimension, double, integer, list, string, structure, timestamp, type Shape } from "./shape-builders.js";

const strings = list(string);

const MetricAlarm = structure({
  AlarmName: string,
  AlarmArn: string,
  AlarmDescription: string,
  AlarmConfigurationUpdatedTimestamp: timestamp,
  ActionsEnabled: boolean,
  OKActions: strings,
  AlarmActions: strings,
  InsufficientDataActions: strings,
  StateValue: string,
  StateReason: string,
  StateReasonData: string,
  StateUpdatedTimestamp: timestamp,
  MetricName: string,
  Namespace: string,
  Statistic: string,
  ExtendedStatistic: string,
  Dimensions: list(Dimension),
  Period: integer,
  Unit: string,
  EvaluationPeriods: integer,
  DatapointsToAlarm: integer,
  Threshold: double,
  ComparisonOperator: string,
  TreatMissingData: string,
  EvaluateLowSampleCountPercentile: string,
  StateTransitionedTimestamp: timestamp,
});

const AlarmNamesInput = structure({ AlarmNames: strings }, ["AlarmNames"]);

export const ALARM_OPERATION_SHAPES: Record<string, { input: Shape; output: Shape | undefined }> = {
  PutMetricAlarm: {
    input: structure(
      {
        AlarmName: string,
        AlarmDescription: string,
        ActionsEnabled: boolean,
        OKActions: strings,
        AlarmActions: strings,
        InsufficientDataActions: strings,
        MetricName: string,
        Namespace: string,
        Statistic: string,
        ExtendedStatistic: string,
        Dimensions: list(Dimension),
        Period: integer,
        Unit: string,
        EvaluationPeriods: integer,
        DatapointsToAlarm: integer,
        Threshold: double,
        ComparisonOperator: string,
        TreatMissingData: string,
        EvaluateLowSampleCountPercentile: string,
        Metrics: list(structure({ Id: string })),
        Tags: list(structure({ Key: string, Value: string }, ["Key", "Value"])),
        ThresholdMetricId: string,
      },
      ["AlarmName"],
    ),
    output: undefined,
  },
  DescribeAlarms: {
    input: structure({
      AlarmNames: strings,
      AlarmNamePrefix: string,
      AlarmTypes: strings,
      ChildrenOfAlarmName: string,
      ParentsOfAlarmName: string,
      StateValue: string,
      ActionPrefix: string,
      MaxRecords: integer,
      NextToken: string,
    }),
    output: structure({ CompositeAlarms: list(structure({})), MetricAlarms: list(MetricAlarm), NextToken: string }),
  },
  DescribeAlarmsForMetric: {
    input: structure(
      {
        MetricName: string,
        Namespace: string,
        Statistic: string,
        ExtendedStatistic: string,
        Dimensions: list(Dimension),
        Period: integer,
        Unit: string,
      },
      ["MetricName", "Namespace"],
    ),
    output: structure({ MetricAlarms: list(MetricAlarm) }),
  },
  DeleteAlarms: { input: AlarmNamesInput, output: undefined },
  EnableAlarmActions: { input: AlarmNamesInput, output: undefined },
  DisableAlarmActions: { input: AlarmNamesInput, output: undefined },
  SetAlarmState: {
    input: structure(
      { AlarmName: string, StateValue: string, StateReason: string, StateReasonData: string },
      ["AlarmName", "StateValue", "StateReason"],
    ),
    output: undefined,
  },
  DescribeAlarmHistory: {
    input: structure({
      AlarmName: string,
      AlarmContributorId: string,
      AlarmTypes: strings,
      HistoryItemType: string,
      StartDate: timestamp,
      EndDate: timestamp,
      MaxRecords: integer,
      NextToken: string,
      ScanBy: string,
    }),
    output: structure({
      AlarmHistoryItems: list(
        structure({
          AlarmName: string,
          AlarmType: string,
          Timestamp: timestamp,
          HistoryItemType: string,
          HistorySummary: string,
          HistoryData: string,
        }),
      ),
      NextToken: string,
    }),
  },
};
