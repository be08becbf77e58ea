/**
 * Generators of the largest buckets the metrics store can hold: statistic
 * sets whose histogram is full (MAX_EXACT_BINS exact values or MAX_LOG_BINS
 * logarithmic bins) and whose numbers take the most bytes in the bucket
 * encoding: float64 counts and bins as far apart as the value range allows.
 */
import { encodeCustomBucket } from "../../src/metrics/bucket-encoding.js";
import { emptyCounters, type DistributionCounters } from "../../src/metrics/distribution-counters.js";
import { logBinValue, MAX_EXACT_BINS, MAX_LOG_BINS, Sketch } from "../../src/metrics/sketch.js";
import { addSample, emptyStatSet, type StatSet } from "../../src/metrics/stat-set.js";

/** PutMetricData rejects values above 2^360 in magnitude. */
const MAX_VALUE_MAGNITUDE = 2 ** 360;
/** Key deltas from 64 up take two bytes as zigzag varints. */
const TWO_BYTE_DELTA = 64;

/** Returns a count with 17 significant digits and a three-digit exponent, within PutMetricData's 2^360 bound. */
function longCount(index: number): number {
  return (1.2345678901234567 + index * 1e-13) * 1e100;
}

/** Returns a full exact histogram of distinct negative values with 17 significant digits and long exponents. */
export function fullExactStats(seed: number, counts: (index: number) => number = longCount): StatSet {
  const stats = emptyStatSet(true);
  for (let i = 0; i < MAX_EXACT_BINS; i++) {
    addSample(stats, -(1.1234567890123456 + i * 1e-12 + seed * 1e-9) * 1e-100, counts(i));
  }
  return stats;
}

/** Returns the largest logarithmic bin key whose value stays within PutMetricData's range. */
function maxBinKey(): number {
  let key = 1;
  while (logBinValue(key + 1) <= MAX_VALUE_MAGNITUDE) key += 1;
  return key;
}

/**
 * Returns MAX_LOG_BINS bin keys from `lowest` to `highest`: as many as fit
 * TWO_BYTE_DELTA apart, the rest adjacent, so that the key deltas take the
 * most bytes the range allows.
 */
function spreadKeys(lowest: number, highest: number): number[] {
  const keys = [lowest];
  for (let i = 1; i < MAX_LOG_BINS; i++) {
    const binsLeft = MAX_LOG_BINS - i - 1;
    const previous = keys[i - 1]!;
    keys.push(highest - (previous + TWO_BYTE_DELTA) >= binsLeft ? previous + TWO_BYTE_DELTA : previous + 1);
  }
  return keys;
}

/**
 * Returns a full logarithmic histogram of MAX_LOG_BINS bins spread over
 * negative and positive values up to 2^360 in magnitude, or over positive
 * values only.
 */
export function fullLogarithmicStats(
  seed: number,
  counts: (index: number) => number = longCount,
  positiveOnly = false,
): StatSet {
  const stats = emptyStatSet(true);
  const highest = maxBinKey();
  const keys = spreadKeys(positiveOnly ? 1 : -highest, highest);
  // Each value is its bin's representative. Past MAX_EXACT_BINS distinct values the histogram switches to bins.
  keys.forEach((key, i) => addSample(stats, logBinValue(key), counts(i + seed)));
  return stats;
}

/** Returns whichever full histogram encodes larger, which makes the largest custom bucket. */
export function worstCustomStats(seed: number): StatSet {
  const exact = fullExactStats(seed);
  const logarithmic = fullLogarithmicStats(seed);
  return encodedLength(exact) >= encodedLength(logarithmic) ? exact : logarithmic;
}

/**
 * Returns distribution counters with every count large and a full origin-latency
 * histogram. Latencies are positive and counts are whole numbers, as the
 * edge records them.
 */
export function worstDistributionCounters(seed: number): DistributionCounters {
  const integerCount = (index: number) => 123_456_789_012_345 + index;
  const exact = fullExactStats(seed, integerCount);
  const positiveExact = emptyStatSet(true);
  positiveExact.sampleCount = exact.sampleCount;
  positiveExact.sum = -exact.sum;
  positiveExact.minimum = -exact.maximum;
  positiveExact.maximum = -exact.minimum;
  const bins = exact.sketch!.toJson();
  positiveExact.sketch = Sketch.fromJson({ logarithmic: bins.logarithmic, bins: bins.bins.map(([v, c]) => [-v, c]) });
  const logarithmic = fullLogarithmicStats(seed, integerCount, true);
  const latency = encodedLength(positiveExact) >= encodedLength(logarithmic) ? positiveExact : logarithmic;
  const counters = emptyCounters();
  const big = 123_456_789_012_345 + seed;
  counters.requests = big;
  counters.status4xx = big;
  counters.status5xx = big;
  counters.cacheable = big;
  counters.hits = big;
  for (const status of [401, 403, 404, 502, 503, 504] as const) counters.statusCounts[status] = big;
  for (const target of [counters.bytesDownloaded, counters.bytesUploaded]) {
    addSample(target, 1.2345678901234567e15, big);
    addSample(target, 1.2345678901234567e-5, 1);
  }
  counters.originLatencyMs = latency;
  return counters;
}

function encodedLength(stats: StatSet): number {
  const encoded = encodeCustomBucket(stats);
  return encoded.data.length + (encoded.histograms?.length ?? 0);
}
