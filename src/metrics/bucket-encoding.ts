/**
 * Binary encoding of stored metric buckets. A bucket row has two blobs:
 * `data` with the counts, sums and bounds, and `histograms` with the
 * percentile sketches, or NULL when the bucket has none. Keeping the sketches
 * in their own column lets pruning drop them with one UPDATE and no decoding.
 *
 * Whole numbers up to 2^50 in magnitude take a varint (1 byte from -32 to 31);
 * other numbers take a tag byte and a float64. Sketch bins of logarithmic
 * sketches are stored as delta-coded bin keys instead of float64 values.
 * Rows written before this encoding hold JSON text in `data`, which the
 * decoders still read.
 */
import {
  countersFromJson,
  emptyCounters,
  mergeCounters,
  TRACKED_STATUSES,
  type DistributionCounters,
} from "./distribution-counters.js";
import { logBinKey, logBinValue, Sketch } from "./sketch.js";
import { mergeStatSet, statSetFromJson, type StatSet } from "./stat-set.js";

/** First byte of every `data` blob. Another value is an encoding this build does not read. */
const BUCKET_FORMAT = 1;

/** Largest magnitude stored as a varint: zigzag and the tag bit double it twice, within 2^53. */
const MAX_VARINT_NUMBER = 2 ** 50;

const SKETCH_LOGARITHMIC = 1;
const SKETCH_KEYED_BINS = 2;
const SKETCH_VARINT_COUNTS = 4;

/** Appends bytes to a buffer that grows as needed. */
export class ByteWriter {
  private buffer = Buffer.allocUnsafe(64);
  private length = 0;

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + bytes));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }

  byte(value: number): void {
    this.reserve(1);
    this.buffer[this.length++] = value;
  }

  /** Appends a non-negative whole number up to 2^53 in base-128 groups, lowest first. */
  varint(value: number): void {
    this.reserve(8);
    let rest = value;
    while (rest >= 128) {
      this.buffer[this.length++] = (rest % 128) | 128;
      rest = Math.floor(rest / 128);
    }
    this.buffer[this.length++] = rest;
  }

  float64(value: number): void {
    this.reserve(8);
    this.buffer.writeDoubleLE(value, this.length);
    this.length += 8;
  }

  /**
   * Appends any number losslessly. A whole number up to MAX_VARINT_NUMBER in
   * magnitude becomes the varint of twice its zigzag form, so its first byte
   * is even. Any other number, -0, infinities and NaN included, becomes the
   * byte 1 and a float64.
   */
  number(value: number): void {
    if (Number.isInteger(value) && Math.abs(value) <= MAX_VARINT_NUMBER && !Object.is(value, -0)) {
      this.varint(zigzag(value) * 2);
    } else {
      this.byte(1);
      this.float64(value);
    }
  }

  /** Returns a copy of the bytes written so far. */
  finish(): Buffer {
    return Buffer.from(this.buffer.subarray(0, this.length));
  }
}

/** Reads what ByteWriter wrote. A read past the end throws. */
export class ByteReader {
  private offset = 0;

  constructor(private readonly buffer: Buffer) {}

  get remaining(): number {
    return this.buffer.length - this.offset;
  }

  byte(): number {
    if (this.offset >= this.buffer.length) throw truncated();
    return this.buffer[this.offset++]!;
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (;;) {
      const byte = this.byte();
      value += (byte & 127) * scale;
      if (byte < 128) return value;
      scale *= 128;
      if (scale >= 2 ** 56) throw new Error("invalid metrics bucket: varint longer than 8 bytes");
    }
  }

  float64(): number {
    if (this.remaining < 8) throw truncated();
    const value = this.buffer.readDoubleLE(this.offset);
    this.offset += 8;
    return value;
  }

  number(): number {
    if (this.offset >= this.buffer.length) throw truncated();
    if ((this.buffer[this.offset]! & 1) === 1) {
      this.offset += 1;
      return this.float64();
    }
    return unzigzag(this.varint() / 2);
  }
}

function truncated(): Error {
  return new Error("invalid metrics bucket: the encoding ends early");
}

function zigzag(value: number): number {
  return value >= 0 ? value * 2 : -value * 2 - 1;
}

function unzigzag(value: number): number {
  return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
}

/**
 * Appends a sketch: a flags byte, the bin count, the bin values in ascending
 * order, then their counts. Logarithmic bins are written as zigzag varint
 * deltas of their `logBinKey`, exact values as float64. Counts are varints
 * when every count is a whole number, else float64.
 */
export function writeSketch(writer: ByteWriter, sketch: Sketch): void {
  const { logarithmic, bins } = sketch.toJson();
  bins.sort((a, b) => a[0] - b[0]);

  let keys: number[] | undefined;
  if (logarithmic) {
    keys = [];
    for (const [value] of bins) {
      const key = logBinKey(value);
      if (key === undefined) {
        keys = undefined;
        break;
      }
      keys.push(key);
    }
  }
  const varintCounts = bins.every(([, count]) => Number.isSafeInteger(count) && count > 0);

  let flags = 0;
  if (logarithmic) flags |= SKETCH_LOGARITHMIC;
  if (keys !== undefined) flags |= SKETCH_KEYED_BINS;
  if (varintCounts) flags |= SKETCH_VARINT_COUNTS;
  writer.byte(flags);
  writer.varint(bins.length);

  if (keys !== undefined) {
    let previous = 0;
    for (const key of keys) {
      writer.varint(zigzag(key - previous));
      previous = key;
    }
  } else {
    for (const [value] of bins) writer.float64(value);
  }
  for (const [, count] of bins) {
    if (varintCounts) writer.varint(count);
    else writer.float64(count);
  }
}

export function readSketch(reader: ByteReader): Sketch {
  const flags = reader.byte();
  const binCount = reader.varint();
  // Every bin takes at least two bytes, which bounds the allocation below by the blob's size.
  if (binCount * 2 > reader.remaining) throw truncated();
  const values: number[] = [];
  let key = 0;
  for (let i = 0; i < binCount; i++) {
    if ((flags & SKETCH_KEYED_BINS) !== 0) {
      key += unzigzag(reader.varint());
      values.push(logBinValue(key));
    } else {
      values.push(reader.float64());
    }
  }
  const bins: Array<[number, number]> = values.map((value) => [
    value,
    (flags & SKETCH_VARINT_COUNTS) !== 0 ? reader.varint() : reader.float64(),
  ]);
  return Sketch.fromJson({ logarithmic: (flags & SKETCH_LOGARITHMIC) !== 0, bins });
}

/** Appends sample count, sum, minimum and maximum. An empty set takes two bytes. */
function writeStatSet(writer: ByteWriter, set: StatSet): void {
  writer.number(set.sampleCount);
  if (set.sampleCount === 0) {
    const isEmpty = set.sum === 0 && set.minimum === Infinity && set.maximum === -Infinity;
    writer.byte(isEmpty ? 0 : 1);
    if (isEmpty) return;
  }
  writer.number(set.sum);
  writer.number(set.minimum);
  writer.number(set.maximum);
}

/** Reads a stat set without its sketch. */
function readStatSet(reader: ByteReader): StatSet {
  const sampleCount = reader.number();
  if (sampleCount === 0 && reader.byte() === 0) {
    return { sampleCount: 0, sum: 0, minimum: Infinity, maximum: -Infinity, sketch: undefined };
  }
  const sum = reader.number();
  const minimum = reader.number();
  const maximum = reader.number();
  return { sampleCount, sum, minimum, maximum, sketch: undefined };
}

/**
 * Returns the histograms blob of some stat sets: a byte whose bit i is set
 * when set i has a non-empty sketch, then those sketches. Returns null when
 * none has one, because a NULL column keeps the row out of the pruning index.
 */
function encodeHistograms(sets: StatSet[]): Buffer | null {
  let mask = 0;
  sets.forEach((set, i) => {
    if (set.sketch !== undefined && set.sketch.count > 0) mask |= 1 << i;
  });
  if (mask === 0) return null;
  const writer = new ByteWriter();
  writer.byte(mask);
  sets.forEach((set, i) => {
    if ((mask & (1 << i)) !== 0) writeSketch(writer, set.sketch!);
  });
  return writer.finish();
}

function decodeHistograms(blob: Buffer, sets: StatSet[]): void {
  const reader = new ByteReader(blob);
  const mask = reader.byte();
  sets.forEach((set, i) => {
    if ((mask & (1 << i)) !== 0) set.sketch = readSketch(reader);
  });
}

function readFormat(reader: ByteReader): void {
  const format = reader.byte();
  if (format !== BUCKET_FORMAT) {
    throw new Error(`invalid metrics bucket: encoding ${format} is unknown to this Portico; upgrade Portico`);
  }
}

/** The two columns of one bucket row. */
export interface EncodedBucket {
  data: Buffer;
  histograms: Buffer | null;
}

/** The stored columns as SQLite returns them: `data` is JSON text in rows from before the binary encoding. */
export interface StoredBucketColumns {
  data: Buffer | string;
  histograms: Buffer | null;
}

export function encodeCustomBucket(set: StatSet): EncodedBucket {
  const writer = new ByteWriter();
  writer.byte(BUCKET_FORMAT);
  writeStatSet(writer, set);
  return { data: writer.finish(), histograms: encodeHistograms([set]) };
}

export function decodeCustomBucket(columns: StoredBucketColumns): StatSet {
  if (typeof columns.data === "string") return statSetFromJson(JSON.parse(columns.data));
  const reader = new ByteReader(columns.data);
  readFormat(reader);
  const set = readStatSet(reader);
  if (columns.histograms !== null) decodeHistograms(columns.histograms, [set]);
  return set;
}

function counterSets(counters: DistributionCounters): StatSet[] {
  return [counters.bytesDownloaded, counters.bytesUploaded, counters.originLatencyMs];
}

export function encodeDistributionBucket(counters: DistributionCounters): EncodedBucket {
  const writer = new ByteWriter();
  writer.byte(BUCKET_FORMAT);
  writer.number(counters.requests);
  writer.number(counters.status4xx);
  writer.number(counters.status5xx);
  for (const status of TRACKED_STATUSES) writer.number(counters.statusCounts[status]);
  writer.number(counters.cacheable);
  writer.number(counters.hits);
  for (const set of counterSets(counters)) writeStatSet(writer, set);
  return { data: writer.finish(), histograms: encodeHistograms(counterSets(counters)) };
}

export function decodeDistributionBucket(columns: StoredBucketColumns): DistributionCounters {
  if (typeof columns.data === "string") return countersFromJson(JSON.parse(columns.data));
  const reader = new ByteReader(columns.data);
  readFormat(reader);
  const counters = emptyCounters();
  counters.requests = reader.number();
  counters.status4xx = reader.number();
  counters.status5xx = reader.number();
  for (const status of TRACKED_STATUSES) counters.statusCounts[status] = reader.number();
  counters.cacheable = reader.number();
  counters.hits = reader.number();
  counters.bytesDownloaded = readStatSet(reader);
  counters.bytesUploaded = readStatSet(reader);
  counters.originLatencyMs = readStatSet(reader);
  if (columns.histograms !== null) decodeHistograms(columns.histograms, counterSets(counters));
  return counters;
}

/** Decoding, merging and encoding of one kind of bucket. */
export interface BucketCodec<T> {
  decode(columns: StoredBucketColumns): T;
  merge(target: T, source: T): void;
  encode(value: T): EncodedBucket;
}

export const DISTRIBUTION_BUCKETS: BucketCodec<DistributionCounters> = {
  decode: decodeDistributionBucket,
  merge: mergeCounters,
  encode: encodeDistributionBucket,
};

export const CUSTOM_BUCKETS: BucketCodec<StatSet> = {
  decode: decodeCustomBucket,
  merge: mergeStatSet,
  encode: encodeCustomBucket,
};
