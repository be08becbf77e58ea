"""Drives Portico's CloudWatch API with boto3 and prints what it saw as JSON.

Usage: boto3_client.py ENDPOINT ACCESS_KEY SECRET_KEY DISTRIBUTION_ID MINUTE_START_EPOCH_SECONDS NAMESPACE
"""
import datetime
import json
import sys

import boto3
import botocore
from botocore.config import Config


def main() -> None:
    endpoint, access_key, secret_key, distribution, minute_start, namespace = sys.argv[1:7]
    start = datetime.datetime.fromtimestamp(int(minute_start), tz=datetime.timezone.utc)
    client = boto3.client(
        "cloudwatch",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(retries={"max_attempts": 1}),
    )
    dimensions = [{"Name": "DistributionId", "Value": distribution}, {"Name": "Region", "Value": "Global"}]
    out = {
        "boto3": boto3.__version__,
        "protocol": client.meta.service_model.protocol,
    }

    stats = client.get_metric_statistics(
        Namespace="AWS/CloudFront",
        MetricName="TotalErrorRate",
        Dimensions=dimensions,
        StartTime=start,
        EndTime=start + datetime.timedelta(minutes=2),
        Period=120,
        Statistics=["Average", "SampleCount"],
    )
    out["datapoints"] = [
        {"timestamp": p["Timestamp"].timestamp(), "average": p["Average"], "sampleCount": p["SampleCount"], "unit": p["Unit"]}
        for p in stats["Datapoints"]
    ]

    listed = client.list_metrics(Namespace="AWS/CloudFront", MetricName="Requests")
    out["listed"] = listed["Metrics"]

    now = datetime.datetime.now(tz=datetime.timezone.utc).replace(second=0, microsecond=0)
    client.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {"MetricName": "Jobs", "Value": 4.5, "Unit": "Count", "Timestamp": now},
            {"MetricName": "Jobs", "StatisticValues": {"SampleCount": 2, "Sum": 10, "Minimum": 1, "Maximum": 9}, "Unit": "Count", "Timestamp": now},
        ],
    )
    data = client.get_metric_data(
        StartTime=now - datetime.timedelta(minutes=1),
        EndTime=now + datetime.timedelta(minutes=1),
        MetricDataQueries=[
            {"Id": "jobs", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": "Jobs"}, "Period": 60, "Stat": "Sum"}},
            {"Id": "count", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": "Jobs"}, "Period": 60, "Stat": "SampleCount"}},
            {"Id": "mean", "Expression": "jobs / count"},
        ],
    )
    out["metricData"] = {r["Id"]: {"values": r["Values"], "timestamps": [t.timestamp() for t in r["Timestamps"]]} for r in data["MetricDataResults"]}

    # Five minutes of one metric, read two data points a page.
    client.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {"MetricName": "Paged", "Value": float(i), "Timestamp": now - datetime.timedelta(minutes=i + 1)} for i in range(5)
        ],
    )
    paged_input = {
        "StartTime": now - datetime.timedelta(minutes=10),
        "EndTime": now,
        "ScanBy": "TimestampAscending",
        "MetricDataQueries": [
            {"Id": "paged", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": "Paged"}, "Period": 60, "Stat": "Sum"}},
        ],
    }
    pages = list(client.get_paginator("get_metric_data").paginate(**paged_input, PaginationConfig={"PageSize": 2}))
    out["paging"] = {
        "pages": len(pages),
        "values": [v for page in pages for r in page["MetricDataResults"] for v in r["Values"]],
        "statuses": [r["StatusCode"] for page in pages for r in page["MetricDataResults"]],
        "tokens": sum(1 for page in pages if "NextToken" in page),
    }
    first_token = pages[0]["NextToken"]

    # An alarm on the paged metric, which the evaluator has not checked yet.
    alarm_name = f"{namespace}-paged-high"
    client.put_metric_alarm(
        AlarmName=alarm_name, Namespace=namespace, MetricName="Paged", Statistic="Maximum", Period=60,
        EvaluationPeriods=1, Threshold=3, ComparisonOperator="GreaterThanThreshold",
        AlarmActions=["arn:aws:sns:us-east-1:123456789012:ops"],
    )
    client.set_alarm_state(AlarmName=alarm_name, StateValue="ALARM", StateReason="set by boto3")
    described = client.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]
    history = client.describe_alarm_history(AlarmName=alarm_name, ScanBy="TimestampAscending")["AlarmHistoryItems"]
    out["alarm"] = {
        "state": described[0]["StateValue"],
        "reason": described[0]["StateReason"],
        "arn": described[0]["AlarmArn"],
        "history": [[item["HistoryItemType"], item["HistorySummary"]] for item in history],
    }

    errors = {}
    for name, call in {
        "tooManyDatapoints": lambda: client.get_metric_statistics(
            Namespace="AWS/CloudFront", MetricName="Requests", Dimensions=dimensions,
            StartTime=start - datetime.timedelta(days=3), EndTime=start, Period=60, Statistics=["Sum"],
        ),
        "awsNamespace": lambda: client.put_metric_data(Namespace="AWS/EC2", MetricData=[{"MetricName": "X", "Value": 1}]),
        "tamperedToken": lambda: client.get_metric_data(**paged_input, MaxDatapoints=2, NextToken=first_token[:-1] + ("A" if first_token[-1] != "A" else "B")),
        "foreignToken": lambda: client.get_metric_data(**{**paged_input, "StartTime": now - datetime.timedelta(minutes=9)}, MaxDatapoints=2, NextToken=first_token),
        "badOperator": lambda: client.put_metric_alarm(
            AlarmName=alarm_name, Namespace=namespace, MetricName="Paged", Statistic="Maximum", Period=60,
            EvaluationPeriods=1, Threshold=3, ComparisonOperator="Bigger",
        ),
        "unknownAlarm": lambda: client.set_alarm_state(AlarmName="no-such-alarm", StateValue="OK", StateReason="x"),
        "deleteUnknown": lambda: client.delete_alarms(AlarmNames=[alarm_name, "no-such-alarm"]),
        "seriesLimit": lambda: client.put_metric_data(
            Namespace=namespace, MetricData=[{"MetricName": f"Cap{i}", "Value": 1} for i in range(5)],
        ),
        "badStatistic": lambda: client.get_metric_statistics(
            Namespace="AWS/CloudFront", MetricName="Requests", StartTime=start,
            EndTime=start + datetime.timedelta(minutes=1), Period=60, Statistics=["Median"],
        ),
    }.items():
        try:
            call()
            errors[name] = None
        except botocore.exceptions.ClientError as error:
            errors[name] = {
                "code": error.response["Error"]["Code"],
                "message": error.response["Error"].get("Message"),
                "status": error.response["ResponseMetadata"]["HTTPStatusCode"],
            }
        except botocore.exceptions.ParamValidationError as error:
            errors[name] = {"code": "ParamValidationError", "message": str(error), "status": 0}
    out["errors"] = errors
    print(json.dumps(out))


if __name__ == "__main__":
    main()
