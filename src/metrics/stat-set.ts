import { Sketch, type SketchJson } from "./sketch.js";

/**
 * The statistics CloudWatch keeps for one metric over one interval: sample
 * count, sum, minimum and maximum, and a histogram when the samples' values
 * are known one by one (needed for percentiles).
 */
export interface StatSet {
  sampleCount: number;
  sum: number;
  minimum: number;
  maximum: number;
  /** Covers every sample only when `sketch.count === sampleCount`. */
  sketch: Sketch | undefined;
}

export interface StatSetJson {
  n: number;
  sum: number;
  min: number;
  max: number;
  sketch?: SketchJson;
}

export function emptyStatSet(withSketch: boolean): StatSet {
  return {
    sampleCount: 0,
    sum: 0,
    minimum: Infinity,
    maximum: -Infinity,
    sketch: withSketch ? new Sketch() : undefined,
  };
}

/** Adds `count` samples that all have `value`. */
export function addSample(target: StatSet, value: number, count = 1): void {
  target.sampleCount += count;
  target.sum += value * count;
  if (value < target.minimum) target.minimum = value;
  if (value > target.maximum) target.maximum = value;
  target.sketch?.add(value, count);
}

/** Merges `source` into `target`; the histogram survives only when both sides have one. */
export function mergeStatSet(target: StatSet, source: StatSet): void {
  if (source.sampleCount === 0) return;
  const targetWasEmpty = target.sampleCount === 0;
  target.sampleCount += source.sampleCount;
  target.sum += source.sum;
  target.minimum = Math.min(target.minimum, source.minimum);
  target.maximum = Math.max(target.maximum, source.maximum);
  if (source.sketch === undefined) {
    target.sketch = undefined;
  } else if (target.sketch !== undefined) {
    target.sketch.merge(source.sketch);
  } else if (targetWasEmpty) {
    target.sketch = source.sketch.clone();
  }
}

export function cloneStatSet(source: StatSet): StatSet {
  return { ...source, sketch: source.sketch?.clone() };
}

/** Returns the percentile when the histogram covers every sample, else undefined. */
export function statSetPercentile(set: StatSet, fraction: number): number | undefined {
  if (set.sketch === undefined || set.sampleCount === 0) return undefined;
  if (Math.abs(set.sketch.count - set.sampleCount) > 1e-9 * set.sampleCount) return undefined;
  return set.sketch.percentile(fraction, set.minimum, set.maximum);
}

export function statSetToJson(set: StatSet): StatSetJson {
  const json: StatSetJson = { n: set.sampleCount, sum: set.sum, min: set.minimum, max: set.maximum };
  if (set.sketch !== undefined) json.sketch = set.sketch.toJson();
  return json;
}

export function statSetFromJson(json: StatSetJson): StatSet {
  return {
    sampleCount: json.n,
    sum: json.sum,
    // JSON has no Infinity, so an empty set's bounds come back as null.
    minimum: json.min ?? Infinity,
    maximum: json.max ?? -Infinity,
    sketch: json.sketch === undefined ? undefined : Sketch.fromJson(json.sketch),
  };
}
