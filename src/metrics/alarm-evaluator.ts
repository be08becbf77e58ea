import type { Logger } from "../common/logger.js";
import type { AlarmConfig, AlarmRecord, AlarmState, AlarmStore, HistoryItem } from "./alarm-store.js";
import { firstUnitPerPeriod, type MetricsReader } from "./reader.js";
import { statSetPercentile, type StatSet } from "./stat-set.js";

/** How often every alarm is evaluated. */
export const EVALUATION_INTERVAL_MS = 60_000;
/** Time from `start` to the first evaluation, so the minute that spans a restart is evaluated too. */
export const FIRST_EVALUATION_DELAY_MS = 5_000;
/**
 * Evaluations run this long after each minute starts. Edge workers send
 * their counts every second, so the minute just ended is complete by then.
 */
export const EVALUATION_OFFSET_MS = 2_000;

/** Returns the time from `nowMs` to the next evaluation: EVALUATION_OFFSET_MS into the next minute, or into this one if still ahead. */
export function nextEvaluationDelayMs(nowMs: number): number {
  const intoInterval = nowMs % EVALUATION_INTERVAL_MS;
  if (intoInterval < EVALUATION_OFFSET_MS) return EVALUATION_OFFSET_MS - intoInterval;
  return EVALUATION_INTERVAL_MS - intoInterval + EVALUATION_OFFSET_MS;
}

const OPERATOR_TEXT: Record<string, string> = {
  GreaterThanOrEqualToThreshold: "greater than or equal to",
  GreaterThanThreshold: "greater than",
  LessThanThreshold: "less than",
  LessThanOrEqualToThreshold: "less than or equal to",
};
export const COMPARISON_OPERATORS: ReadonlySet<string> = new Set(Object.keys(OPERATOR_TEXT));

export interface StateChange {
  value: AlarmState;
  reason: string;
  reasonData: string | undefined;
}

/** Maximum time the evaluator runs alarms before it yields to the event loop. */
const EVALUATION_SLICE_MS = 20;

/**
 * Evaluates metric alarms against the stored data on a timer and records
 * every state change in the alarm's history, as CloudWatch does.
 * NOTE: actions are stored and reported, but never delivered: each would-be
 * delivery is recorded as a failed Action history item.
 */
export class AlarmEvaluator {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly store: AlarmStore,
    private readonly reader: MetricsReader,
    private readonly log: Logger,
  ) {}

  /** Evaluates every alarm FIRST_EVALUATION_DELAY_MS from now, then in every minute (see nextEvaluationDelayMs). */
  start(): void {
    this.closed = false;
    this.schedule(FIRST_EVALUATION_DELAY_MS);
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.evaluateAll()
        .catch((error: unknown) => this.log.error({ err: error }, "alarm evaluation failed"))
        .finally(() => {
          // The timer's wall clock decides when to run, whatever clock the reader has.
          if (!this.closed) this.schedule(nextEvaluationDelayMs(Date.now()));
        });
    }, delayMs);
    this.timer.unref();
  }

  /**
   * Evaluates every alarm at the reader's clock and prunes old history. A
   * failing alarm is logged and skipped. The loop yields to the event loop
   * between slices of alarms. Many alarms over long windows then do not hold
   * up the edge connections and API requests this process serves.
   */
  async evaluateAll(): Promise<void> {
    const nowMs = this.reader.now();
    let sliceStartedAt = performance.now();
    for (const alarm of this.store.list()) {
      if (performance.now() - sliceStartedAt > EVALUATION_SLICE_MS) {
        await new Promise<void>((resume) => setImmediate(resume));
        if (this.closed) return;
        sliceStartedAt = performance.now();
      }
      try {
        const change = this.evaluate(alarm.config, alarm.stateValue, nowMs);
        if (change !== undefined && change.value !== alarm.stateValue) this.changeState(alarm, change, nowMs);
      } catch (error) {
        this.log.error({ err: error, alarmName: alarm.config.alarmName }, "alarm evaluation failed");
      }
    }
    try {
      this.store.pruneHistory(nowMs);
    } catch (error) {
      this.log.error({ err: error }, "alarm history pruning failed");
    }
  }

  /**
   * Returns the state that the last EvaluationPeriods complete periods give,
   * or undefined when TreatMissingData is `ignore` and every period is missing.
   */
  evaluate(config: AlarmConfig, current: AlarmState, nowMs: number): StateChange | undefined {
    const { points, startMs } = this.readPoints(config, nowMs);
    const present = points.filter((point) => point.value !== undefined);
    const missing = points.length - present.length;
    if (present.length === 0) {
      if (config.treatMissingData === "ignore") return undefined;
      if (config.treatMissingData === "missing") {
        const verb = missing === 1 ? "was" : "were";
        return {
          value: "INSUFFICIENT_DATA",
          reason: `Insufficient Data: ${plural(missing, "datapoint")} ${verb} unknown.`,
          reasonData: reasonData(config, points, nowMs, undefined),
        };
      }
    }

    const breaching = present.filter((point) => breaches(config, point.value!));
    let breachCount = breaching.length;
    if (config.treatMissingData === "breaching") breachCount += missing;
    const countsMissing = config.treatMissingData === "breaching" || config.treatMissingData === "notBreaching";
    const evaluated = countsMissing ? points.length : present.length;
    const next: AlarmState = breachCount >= config.datapointsToAlarm ? "ALARM" : "OK";

    // CloudWatch lists the breaching datapoints for ALARM and every datapoint for OK.
    const listedPoints = next === "ALARM" ? breaching : present;
    const list = listedPoints.map((point) => `${formatValue(point.value!)} (${formatTime(point.timestampMs)})`).join(", ");
    const count = next === "ALARM" ? breachCount : evaluated;
    const lead = count === evaluated ? plural(count, "datapoint") : `${count} out of the last ${evaluated} datapoints`;
    const verb = count === 1 ? "was" : "were";
    const operator = OPERATOR_TEXT[config.comparisonOperator]!;
    const relation = next === "ALARM" ? operator : `not ${operator}`;
    let reason = `Threshold Crossed: ${lead} [${list}] ${verb} ${relation} the threshold (${formatValue(config.threshold)}).`;
    if (current !== next) {
      reason = reason.slice(0, -1) + ` (minimum ${plural(config.datapointsToAlarm, "datapoint")} for ${current} -> ${next} transition).`;
    }

    return { value: next, reason, reasonData: reasonData(config, points, nowMs, present.length > 0 ? startMs : undefined) };
  }

  /**
   * Returns the statistic and sample count of each of the last
   * EvaluationPeriods complete periods, oldest first, both undefined where a
   * period has no data.
   */
  private readPoints(config: AlarmConfig, nowMs: number): { points: EvaluatedPoint[]; startMs: number } {
    const periodMs = config.periodSeconds * 1000;
    const endMs = Math.floor(nowMs / periodMs) * periodMs;
    const startMs = endMs - config.evaluationPeriods * periodMs;
    const periods = this.reader.statistics({
      metric: { namespace: config.namespace, metricName: config.metricName, dimensions: config.dimensions },
      startMs,
      endMs,
      periodSeconds: config.periodSeconds,
      unit: config.unit,
    });
    const found = new Map<number, { value: number; sampleCount: number }>();
    // CloudWatch leaves an alarm without Unit on data in several units
    // undefined; this evaluates it on the data GetMetricData would return.
    for (const period of firstUnitPerPeriod(periods)) {
      const value = alarmStatistic(period.stats, config);
      if (value !== undefined) found.set(period.timestampMs, { value, sampleCount: period.stats.sampleCount });
    }
    const points: EvaluatedPoint[] = [];
    for (let timestampMs = startMs; timestampMs < endMs; timestampMs += periodMs) {
      const point = found.get(timestampMs);
      points.push({ timestampMs, value: point?.value, sampleCount: point?.sampleCount });
    }
    return { points, startMs };
  }

  /** Moves an alarm to a new state and records the StateUpdate item, and an Action item per action not delivered. */
  changeState(alarm: AlarmRecord, change: StateChange, nowMs: number): void {
    const name = alarm.config.alarmName;
    const history: Array<Omit<HistoryItem, "id">> = [
      {
        alarmName: name,
        timestampMs: nowMs,
        itemType: "StateUpdate",
        summary: `Alarm updated from ${alarm.stateValue} to ${change.value}`,
        data: JSON.stringify({
          version: "1.0",
          oldState: { stateValue: alarm.stateValue, stateReason: alarm.stateReason },
          newState: {
            stateValue: change.value,
            stateReason: change.reason,
            ...(change.reasonData !== undefined ? { stateReasonData: JSON.parse(change.reasonData) as unknown } : {}),
          },
        }),
      },
    ];
    if (alarm.actionsEnabled) {
      for (const action of actionsFor(alarm.config, change.value)) {
        history.push({
          alarmName: name,
          timestampMs: nowMs,
          itemType: "Action",
          summary: `Failed to execute action ${action}`,
          data: JSON.stringify({ actionState: "Failed", notificationResource: action, error: "This endpoint does not deliver alarm actions." }),
        });
      }
    }
    this.store.setState(name, { ...change, nowMs }, history);
    this.log.info({ alarmName: name, from: alarm.stateValue, to: change.value }, "alarm state changed");
  }
}

/** One evaluated period: its statistic and sample count, undefined when the period had no data. */
interface EvaluatedPoint {
  timestampMs: number;
  value: number | undefined;
  sampleCount: number | undefined;
}

/**
 * Builds StateReasonData in the form of the CloudWatch User Guide's alarm
 * event examples ("Alarm events and EventBridge"): times as
 * `yyyy-MM-dd'T'HH:mm:ss.SSS+0000`, `recentDatapoints` oldest first, and
 * `evaluatedDatapoints` newest first. Each evaluated period has its sample
 * count and value, or its time stamp alone when it had no data, and
 * `startDate` is left out when no period had data.
 */
function reasonData(config: AlarmConfig, points: EvaluatedPoint[], nowMs: number, startMs: number | undefined): string {
  const present = points.filter((point) => point.value !== undefined);
  return JSON.stringify({
    version: "1.0",
    queryDate: formatReasonTime(nowMs),
    ...(startMs !== undefined ? { startDate: formatReasonTime(startMs) } : {}),
    ...(config.unit !== undefined ? { unit: config.unit } : {}),
    statistic: config.statistic ?? config.extendedStatistic,
    period: config.periodSeconds,
    recentDatapoints: present.map((point) => point.value),
    threshold: config.threshold,
    evaluatedDatapoints: [...points].reverse().map((point) =>
      point.value === undefined
        ? { timestamp: formatReasonTime(point.timestampMs) }
        : { timestamp: formatReasonTime(point.timestampMs), sampleCount: point.sampleCount, value: point.value },
    ),
  });
}

/** Formats a time stamp as StateReasonData does: 2019-10-02T16:59:00.000+0000, in UTC. */
function formatReasonTime(timestampMs: number): string {
  return new Date(timestampMs).toISOString().replace("Z", "+0000");
}

function actionsFor(config: AlarmConfig, state: AlarmState): string[] {
  if (state === "ALARM") return config.alarmActions;
  if (state === "OK") return config.okActions;
  return config.insufficientDataActions;
}

function alarmStatistic(stats: StatSet, config: AlarmConfig): number | undefined {
  if (stats.sampleCount === 0) return undefined;
  switch (config.statistic) {
    case "SampleCount":
      return stats.sampleCount;
    case "Sum":
      return stats.sum;
    case "Average":
      return stats.sum / stats.sampleCount;
    case "Minimum":
      return stats.minimum;
    case "Maximum":
      return stats.maximum;
  }
  const fraction = Number(config.extendedStatistic!.slice(1)) / 100;
  return statSetPercentile(stats, fraction);
}

function breaches(config: AlarmConfig, value: number): boolean {
  switch (config.comparisonOperator) {
    case "GreaterThanOrEqualToThreshold":
      return value >= config.threshold;
    case "GreaterThanThreshold":
      return value > config.threshold;
    case "LessThanThreshold":
      return value < config.threshold;
    default:
      return value <= config.threshold;
  }
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** Formats a number as CloudWatch's reasons do, with at least one decimal: 2.0, 0.5. */
function formatValue(value: number): string {
  return Number.isInteger(value) ? value.toFixed(1) : String(value);
}

/** Formats a time stamp as CloudWatch's reasons do: dd/MM/yy HH:mm:ss in UTC. */
function formatTime(timestampMs: number): string {
  const date = new Date(timestampMs);
  const two = (n: number) => String(n).padStart(2, "0");
  return (
    `${two(date.getUTCDate())}/${two(date.getUTCMonth() + 1)}/${two(date.getUTCFullYear() % 100)} ` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())}`
  );
}
