/**
 * The CloudWatch shapes of the operations served here, transcribed from the
 * service model (com.amazonaws.cloudwatch, API version 2010-08-01). One
 * description drives decoding and encoding in all three protocols, so the
 * JSON, CBOR and Query forms cannot drift apart.
 */
import { ALARM_OPERATION_SHAPES } from "./alarm-shapes.js";
import { boolean, Dimension, double, integer, list, string, structure, timestamp, type Shape } from "./shape-builders.js";

export type { Shape };

const DimensionFilter = structure({ Name: string, Value: string }, ["Name"]);
const Metric = structure({ Namespace: string, MetricName: string, Dimensions: list(Dimension) });
const MessageData = structure({ Code: string, Value: string });

const MetricStat = structure({ Metric, Period: integer, Stat: string, Unit: string }, ["Metric", "Period", "Stat"]);
const MetricDataQuery = structure(
  { Id: string, MetricStat, Expression: string, Label: string, ReturnData: boolean, Period: integer, AccountId: string },
  ["Id"],
);

const StatisticSet = structure({ SampleCount: double, Sum: double, Minimum: double, Maximum: double }, [
  "SampleCount",
  "Sum",
  "Minimum",
  "Maximum",
]);
const MetricDatum = structure(
  {
    MetricName: string,
    Dimensions: list(Dimension),
    Timestamp: timestamp,
    Value: double,
    StatisticValues: StatisticSet,
    Values: list(double),
    Counts: list(double),
    Unit: string,
    StorageResolution: integer,
  },
  ["MetricName"],
);
const EntityMetricData = structure({
  Entity: structure({ KeyAttributes: { type: "map", value: string }, Attributes: { type: "map", value: string } }),
  MetricData: list(MetricDatum),
});

const Datapoint = structure({
  Timestamp: timestamp,
  SampleCount: double,
  Average: double,
  Sum: double,
  Minimum: double,
  Maximum: double,
  Unit: string,
  ExtendedStatistics: { type: "map", value: double },
});

export interface OperationShapes {
  input: Shape;
  /** Undefined for operations whose output is the unit shape. */
  output: Shape | undefined;
}

export const OPERATION_SHAPES: Record<string, OperationShapes> = {
  ...ALARM_OPERATION_SHAPES,
  GetMetricStatistics: {
    input: structure(
      {
        Namespace: string,
        MetricName: string,
        Dimensions: list(Dimension),
        StartTime: timestamp,
        EndTime: timestamp,
        Period: integer,
        Statistics: list(string),
        ExtendedStatistics: list(string),
        Unit: string,
      },
      ["Namespace", "MetricName", "StartTime", "EndTime", "Period"],
    ),
    output: structure({ Label: string, Datapoints: list(Datapoint) }),
  },
  ListMetrics: {
    input: structure({
      Namespace: string,
      MetricName: string,
      Dimensions: list(DimensionFilter),
      NextToken: string,
      RecentlyActive: string,
      IncludeLinkedAccounts: boolean,
      OwningAccount: string,
    }),
    output: structure({ Metrics: list(Metric), NextToken: string, OwningAccounts: list(string) }),
  },
  GetMetricData: {
    input: structure(
      {
        MetricDataQueries: list(MetricDataQuery),
        StartTime: timestamp,
        EndTime: timestamp,
        NextToken: string,
        ScanBy: string,
        MaxDatapoints: integer,
        LabelOptions: structure({ Timezone: string }),
      },
      ["MetricDataQueries", "StartTime", "EndTime"],
    ),
    output: structure({
      MetricDataResults: list(
        structure({
          Id: string,
          Label: string,
          Timestamps: list(timestamp),
          Values: list(double),
          StatusCode: string,
          Messages: list(MessageData),
        }),
      ),
      NextToken: string,
      Messages: list(MessageData),
    }),
  },
  PutMetricData: {
    input: structure(
      {
        Namespace: string,
        MetricData: list(MetricDatum),
        EntityMetricData: list(EntityMetricData),
        StrictEntityValidation: boolean,
      },
      ["Namespace"],
    ),
    output: undefined,
  },
};

/**
 * Every operation of the CloudWatch API version 2010-08-01 model. Those
 * without shapes above are known but not built, and are rejected with NotImplemented.
 */
export const ALL_OPERATIONS: ReadonlySet<string> = new Set([
  "AssociateDatasetKmsKey", "CreateResourceMetricsConfiguration", "DeleteAlarmMuteRule", "DeleteAlarms",
  "DeleteAnomalyDetector", "DeleteDashboards", "DeleteInsightRules", "DeleteMetricDataQueryDefinition",
  "DeleteMetricStream", "DeleteResourceMetricsConfiguration", "DescribeAlarmContributors", "DescribeAlarmHistory",
  "DescribeAlarms", "DescribeAlarmsForMetric", "DescribeAnomalyDetectors", "DescribeInsightRules",
  "DisableAlarmActions", "DisableInsightRules", "DisassociateDatasetKmsKey", "EnableAlarmActions",
  "EnableInsightRules", "GetAlarmMuteRule", "GetDashboard", "GetDataset", "GetInsightRuleReport", "GetMetricData",
  "GetMetricDataQueryDefinition", "GetMetricStatistics", "GetMetricStream", "GetMetricWidgetImage",
  "GetOTelEnrichment", "GetResourceMetricsConfiguration", "ListAlarmMuteRules", "ListDashboards",
  "ListManagedInsightRules", "ListMetricDataQueryDefinitions", "ListMetrics", "ListMetricStreams",
  "ListTagsForResource", "PutAlarmMuteRule", "PutAnomalyDetector", "PutCompositeAlarm", "PutDashboard",
  "PutInsightRule", "PutLogAlarm", "PutManagedInsightRules", "PutMetricAlarm", "PutMetricData",
  "PutMetricDataQueryDefinition", "PutMetricStream", "SetAlarmState", "StartMetricStreams", "StartOTelEnrichment",
  "StopMetricStreams", "StopOTelEnrichment", "TagResource", "UntagResource", "UpdateOTelEnrichment",
  "UpdateResourceMetricsConfiguration",
]);
