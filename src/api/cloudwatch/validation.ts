import type { Dimension } from "../../metrics/store.js";
import type { Struct, Value } from "./codec.js";
import { cloudWatchErrors } from "./errors.js";

/** StandardUnit values of the CloudWatch model. */
export const STANDARD_UNITS: ReadonlySet<string> = new Set([
  "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
  "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
  "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
  "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
]);

export const STATISTICS: ReadonlySet<string> = new Set(["SampleCount", "Average", "Sum", "Minimum", "Maximum"]);

/** At most 30 dimensions per metric (CloudWatch quota). */
export const MAX_DIMENSIONS = 30;

export function invalidValue(path: string, value: unknown): never {
  throw cloudWatchErrors.invalidParameterValue(`The value ${String(value)} for parameter ${path} is invalid.`);
}

export function checkLength(path: string, value: string, min: number, max: number): void {
  if (value.length < min || value.length > max) {
    throw cloudWatchErrors.invalidParameterValue(
      `The parameter ${path} must be between ${min} and ${max} characters long; it has ${value.length}.`,
    );
  }
}

export function checkNamespace(path: string, namespace: string): void {
  checkLength(path, namespace, 1, 255);
  // The model's pattern `[^:].*`: a namespace does not start with a colon.
  if (namespace.startsWith(":")) invalidValue(path, namespace);
}

export function checkUnit(path: string, unit: Value): string | undefined {
  if (unit === undefined) return undefined;
  if (typeof unit !== "string" || !STANDARD_UNITS.has(unit)) invalidValue(path, unit);
  return unit;
}

/** Validates a dimension list: names and values 1 to 255 and 1 to 1024 characters, no repeated name. */
export function readDimensions(path: string, value: Value): Dimension[] {
  const list = (value ?? []) as Struct[];
  if (list.length > MAX_DIMENSIONS) {
    throw cloudWatchErrors.invalidParameterValue(
      `The collection ${path} must not have a size greater than ${MAX_DIMENSIONS}.`,
    );
  }
  const names = new Set<string>();
  return list.map((item, index) => {
    const name = item.Name as string;
    const dimensionValue = item.Value as string;
    // CloudWatch reports an empty dimension value as missing (MissingParameter).
    if (dimensionValue === "") throw cloudWatchErrors.missingParameter(`${path}.member.${index + 1}.Value`);
    checkLength(`${path}.member.${index + 1}.Name`, name, 1, 255);
    checkLength(`${path}.member.${index + 1}.Value`, dimensionValue, 1, 1024);
    if (names.has(name)) {
      throw cloudWatchErrors.invalidParameterValue(`The dimension ${name} appears more than once in ${path}.`);
    }
    names.add(name);
    return { Name: name, Value: dimensionValue };
  });
}

/** Parses a percentile statistic `pNN` or `pNN.NN` (0 to 100) into a fraction, or undefined when it is not one. */
export function percentileFraction(stat: string): number | undefined {
  const match = /^p(\d{1,3}(\.\d{1,10})?)$/.exec(stat);
  if (!match) return undefined;
  const percent = Number(match[1]);
  if (percent < 0 || percent > 100) return undefined;
  return percent / 100;
}

export function requireNumber(path: string, value: Value): number {
  if (typeof value !== "number") throw cloudWatchErrors.missingParameter(path);
  return value;
}
