/**
 * A mergeable histogram for percentiles. It keeps exact values while there
 * are at most MAX_EXACT_BINS distinct ones, then switches to logarithmic bins
 * whose representative value is within RELATIVE_ACCURACY of every value in
 * the bin (the DDSketch scheme), so its size stays bounded by the value range
 * rather than by the sample count. At most MAX_LOG_BINS logarithmic bins are
 * kept, which bounds the size of a stored bucket.
 */
export const RELATIVE_ACCURACY = 0.01;
export const MAX_EXACT_BINS = 256;
/**
 * 512 bins at 1% cover a factor of about 25,000 (4.4 decades). Past that the
 * lowest bins are merged into the lowest kept one, as DDSketch's collapsing
 * store does, so high percentiles stay within RELATIVE_ACCURACY.
 */
export const MAX_LOG_BINS = 512;

const GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY);
const LOG_GAMMA = Math.log(GAMMA);
/** Magnitudes below this share one bin, which keeps the bin count bounded. */
const MIN_BINNED_MAGNITUDE = 1e-9;

/** The JSON form stored in SQLite: a mode flag and `[value, count]` pairs. */
export interface SketchJson {
  logarithmic: boolean;
  bins: Array<[number, number]>;
}

export class Sketch {
  private logarithmic = false;
  private readonly bins = new Map<number, number>();
  private total = 0;

  static fromJson(json: SketchJson): Sketch {
    const sketch = new Sketch();
    sketch.logarithmic = json.logarithmic;
    for (const [value, count] of json.bins) sketch.addBin(value, count);
    if (sketch.logarithmic && sketch.bins.size > MAX_LOG_BINS) sketch.collapseLowest();
    return sketch;
  }

  get count(): number {
    return this.total;
  }

  add(value: number, count = 1): void {
    if (!(count > 0)) return;
    this.addBin(this.logarithmic ? binValue(value) : value, count);
    if (!this.logarithmic && this.bins.size > MAX_EXACT_BINS) this.collapse();
    if (this.logarithmic && this.bins.size > MAX_LOG_BINS) this.collapseLowest();
  }

  /**
   * Adds every bin of `other`. Bounding after each bin sorted all the keys
   * again for every bin past the cap, so a merge of two full logarithmic
   * sketches cost hundreds of sorts. A merge lets the bins grow to twice the
   * cap and then collapses once; `toJson` bounds them to the cap.
   */
  merge(other: Sketch): void {
    if (other.logarithmic && !this.logarithmic) this.collapse();
    for (const [value, count] of other.bins) {
      if (count > 0) this.addBin(this.logarithmic ? binValue(value) : value, count);
    }
    if (!this.logarithmic && this.bins.size > MAX_EXACT_BINS) this.collapse();
    else if (this.logarithmic && this.bins.size > 2 * MAX_LOG_BINS) this.collapseLowest();
  }

  clone(): Sketch {
    return Sketch.fromJson(this.toJson());
  }

  /**
   * Returns the nearest-rank percentile: the smallest stored value whose
   * cumulative count reaches `ceil(fraction * count)`, clamped to
   * [minimum, maximum] because a bin's representative may lie outside them.
   */
  percentile(fraction: number, minimum: number, maximum: number): number | undefined {
    if (this.total === 0) return undefined;
    const rank = Math.max(1, Math.ceil(fraction * this.total));
    const values = [...this.bins.keys()].sort((a, b) => a - b);
    let seen = 0;
    for (const value of values) {
      seen += this.bins.get(value)!;
      if (seen >= rank) return Math.min(maximum, Math.max(minimum, value));
    }
    return maximum;
  }

  /** Returns the stored form, with at most MAX_LOG_BINS logarithmic bins. */
  toJson(): SketchJson {
    if (this.logarithmic && this.bins.size > MAX_LOG_BINS) this.collapseLowest();
    return { logarithmic: this.logarithmic, bins: [...this.bins] };
  }

  private addBin(value: number, count: number): void {
    this.bins.set(value, (this.bins.get(value) ?? 0) + count);
    this.total += count;
  }

  private collapse(): void {
    const exact = [...this.bins];
    this.bins.clear();
    this.total = 0;
    this.logarithmic = true;
    for (const [value, count] of exact) this.addBin(binValue(value), count);
    if (this.bins.size > MAX_LOG_BINS) this.collapseLowest();
  }

  /**
   * Merges the lowest bins into the lowest of the MAX_LOG_BINS highest ones.
   * NOTE: percentiles that fall in the merged range come out too high, up to
   * that bin's value; they stay within [minimum, maximum].
   */
  private collapseLowest(): void {
    const values = [...this.bins.keys()].sort((a, b) => a - b);
    const excess = values.length - MAX_LOG_BINS;
    const target = values[excess]!;
    let merged = 0;
    for (const value of values.slice(0, excess)) {
      merged += this.bins.get(value)!;
      this.bins.delete(value);
    }
    this.bins.set(target, this.bins.get(target)! + merged);
  }
}

/** Maps a value to its logarithmic bin's representative value. */
function binValue(value: number): number {
  if (value === 0) return 0;
  const magnitude = Math.abs(value);
  if (magnitude < MIN_BINNED_MAGNITUDE) return 0;
  const representative = binRepresentative(binIndex(magnitude));
  return value < 0 ? -representative : representative;
}

/** Returns the index of the logarithmic bin that contains a positive magnitude: the bin covers (GAMMA^(index-1), GAMMA^index]. */
function binIndex(magnitude: number): number {
  return Math.ceil(Math.log(magnitude) / LOG_GAMMA);
}

/** Returns the representative value of a bin, the point within RELATIVE_ACCURACY of both of its edges. */
function binRepresentative(index: number): number {
  return (2 * Math.pow(GAMMA, index)) / (GAMMA + 1);
}

/** Added to a bin index so that every index of a magnitude at or above MIN_BINNED_MAGNITUDE becomes at least 1. */
const BIN_KEY_OFFSET = 1 - binIndex(MIN_BINNED_MAGNITUDE);

/**
 * Returns a small signed integer that stands for a logarithmic bin's
 * representative value: 0 for 0, plus or minus (index + BIN_KEY_OFFSET)
 * otherwise, so that keys sort as the values do. Returns undefined for a
 * value that `binValue` does not produce, which the caller stores as it is.
 */
export function logBinKey(value: number): number | undefined {
  if (value === 0) return 0;
  const magnitude = Math.abs(value);
  const index = binIndex(magnitude);
  // The representative lies about half a bin below the upper edge, so the
  // index comes back exactly; the equality check guards against anything else.
  if (binRepresentative(index) !== magnitude || index + BIN_KEY_OFFSET < 1) return undefined;
  return value < 0 ? -(index + BIN_KEY_OFFSET) : index + BIN_KEY_OFFSET;
}

/**
 * Returns the representative value of a key from `logBinKey`. It is the
 * number `binValue` computes when Math.pow returns the same result. A runtime
 * whose Math.pow differed in the last bit would split such a bin in two.
 */
export function logBinValue(key: number): number {
  if (key === 0) return 0;
  const representative = binRepresentative(Math.abs(key) - BIN_KEY_OFFSET);
  return key < 0 ? -representative : representative;
}
