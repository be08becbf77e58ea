/**
 * Generators of the largest buckets the metrics store can hold: statistic
 * sets whose histogram is full (MAX_EXACT_BINS exact values or MAX_LOG_BINS
 * logarithmic bins) and whose numbers take the most characters in JSON.
 */
import { emptyCounters, type DistributionCounters } from "../../src/metrics/distribution-counters.js";
import { MAX_EXACT_BINS, MAX_LOG_BINS, Sketch } from "../../src/metrics/sketch.js";
import { addSample, emptyStatSet, type StatSet } from "../../src/metrics/stat-set.js";

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

/** Returns a full logarithmic histogram of MAX_LOG_BINS adjacent bins of negative values far from 1. */
export function fullLogarithmicStats(seed: number, counts: (index: number) => number = longCount): StatSet {
  const stats = emptyStatSet(true);
  // One value above MAX_EXACT_BINS distinct ones switches the histogram to bins.
  const gamma = 1.0202;
  for (let i = 0; i < MAX_LOG_BINS; i++) addSample(stats, -1e90 * Math.pow(gamma, i) * (1 + seed * 1e-9), counts(i));
  return stats;
}

/** Returns whichever full histogram has the longer JSON, which makes the largest custom bucket. */
export function worstCustomStats(seed: number): StatSet {
  const exact = fullExactStats(seed);
  const logarithmic = fullLogarithmicStats(seed);
  return jsonLength(exact) >= jsonLength(logarithmic) ? exact : logarithmic;
}

/**
 * Returns distribution counters with every count large and a full origin-latency
 * histogram. Latencies are positive and counts are whole numbers, as the
 * edge records them.
 */
export function worstDistributionCounters(seed: number): DistributionCounters {
  const integerCount = (index: number) => 123_456_789_012_345 + index;
  const candidates = [fullExactStats(seed, integerCount), fullLogarithmicStats(seed, integerCount)].map((stats) => {
    const positive = emptyStatSet(true);
    positive.sampleCount = stats.sampleCount;
    positive.sum = -stats.sum;
    positive.minimum = -stats.maximum;
    positive.maximum = -stats.minimum;
    const bins = stats.sketch!.toJson();
    positive.sketch = Sketch.fromJson({ logarithmic: bins.logarithmic, bins: bins.bins.map(([v, c]) => [-v, c]) });
    return positive;
  });
  const latency = jsonLength(candidates[0]!) >= jsonLength(candidates[1]!) ? candidates[0]! : candidates[1]!;
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

function jsonLength(stats: StatSet): number {
  return JSON.stringify(stats.sketch!.toJson()).length;
}
