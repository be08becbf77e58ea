/** Byte ranges (RFC 9110 section 14), as the edge serves them from whole objects. */

export type RangeDecision =
  | { kind: "full" }
  | { kind: "partial"; start: number; end: number }
  | { kind: "unsatisfiable" };

/** One range-spec of a `Range` header, before the representation's length is known. */
export type RangeSpec =
  /** `first-last` or `first-` (an int-range). `end` is inclusive, and undefined for an open range. */
  | { kind: "from"; start: number; end: number | undefined }
  /** `-length` (a suffix-range): the last `length` bytes. */
  | { kind: "suffix"; length: number };

const INT_RANGE = /^(\d+)-(\d*)$/;
const SUFFIX_RANGE = /^-(\d+)$/;
const LEADING_OWS = /^[ \t]+/;
const TRAILING_OWS = /[ \t]+$/;

/**
 * Parses a `Range` header by the grammar of RFC 9110 section 14.1.1:
 * `bytes=` (the unit compared case-insensitively, nothing around the `=`)
 * followed by a comma-separated list of `first-last`, `first-` or
 * `-length`. Optional whitespace is allowed only around the commas, and
 * empty list elements are skipped (section 5.6.1.2). Returns undefined for
 * another unit, invalid syntax, an int-range whose last position is below
 * its first, or a list without a range, so the caller ignores the header.
 * Field values arrive without whitespace at their ends, as both front ends
 * strip or reject it.
 */
export function parseRangeHeader(header: string): RangeSpec[] | undefined {
  if (header.charCodeAt(5) !== 0x3d || header.slice(0, 5).toLowerCase() !== "bytes") return undefined;
  const elements = header.slice(6).split(",");
  const specs: RangeSpec[] = [];
  for (let i = 0; i < elements.length; i++) {
    let element = elements[i]!;
    // `1#range-spec` puts OWS only between an element and a comma.
    if (i > 0) element = element.replace(LEADING_OWS, "");
    if (i < elements.length - 1) element = element.replace(TRAILING_OWS, "");
    if (element === "") continue;

    const suffix = SUFFIX_RANGE.exec(element);
    if (suffix !== null) {
      specs.push({ kind: "suffix", length: Number(suffix[1]) });
      continue;
    }
    const intRange = INT_RANGE.exec(element);
    if (intRange === null) return undefined;
    const start = Number(intRange[1]);
    const end = intRange[2] === "" ? undefined : Number(intRange[2]);
    if (end !== undefined && end < start) return undefined;
    specs.push({ kind: "from", start, end });
  }
  return specs.length === 0 ? undefined : specs;
}

/**
 * Resolves a `Range` header against an object of `length` bytes. Invalid
 * syntax, other units and multiple ranges are ignored, so the whole object
 * is sent (RFC 9110 section 14.2 allows a server to ignore Range).
 */
export function resolveRange(header: string | undefined, length: number): RangeDecision {
  if (header === undefined) return { kind: "full" };
  const specs = parseRangeHeader(header);
  if (specs === undefined || specs.length !== 1) return { kind: "full" };
  const spec = specs[0]!;

  if (spec.kind === "suffix") {
    // A suffix range selects the last N bytes, so `-0` selects none (section 14.1.1).
    if (spec.length === 0 || length === 0) return { kind: "unsatisfiable" };
    return { kind: "partial", start: Math.max(0, length - spec.length), end: length - 1 };
  }

  if (spec.start >= length) return { kind: "unsatisfiable" };
  return { kind: "partial", start: spec.start, end: spec.end === undefined ? length - 1 : Math.min(spec.end, length - 1) };
}

/** Returns `Content-Range` for a partial response. */
export function contentRange(start: number, end: number, length: number): string {
  return `bytes ${start}-${end}/${length}`;
}

/** More ranges than this in one request and the whole object is sent instead, as nginx's max_ranges does. */
export const MAX_RANGES = 16;

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

export type RangesDecision =
  | { kind: "full" }
  | { kind: "partial"; ranges: ByteRange[] }
  | { kind: "unsatisfiable" };

/**
 * Resolves a `Range` header with one or more ranges (RFC 9110 section 14.1.2)
 * against `length` bytes. Invalid syntax, other units and more than
 * MAX_RANGES ranges mean the whole object. Unsatisfiable ranges are dropped,
 * overlapping or adjacent ones are merged (section 14.2 allows it), and when
 * none remains the request is unsatisfiable.
 */
export function resolveRanges(header: string | undefined, length: number, maxRanges = MAX_RANGES): RangesDecision {
  if (header === undefined) return { kind: "full" };
  const specs = parseRangeHeader(header);
  if (specs === undefined || specs.length > maxRanges) return { kind: "full" };

  const ranges: ByteRange[] = [];
  for (const spec of specs) {
    if (spec.kind === "suffix") {
      if (spec.length > 0 && length > 0) ranges.push({ start: Math.max(0, length - spec.length), end: length - 1 });
      continue;
    }
    if (spec.start >= length) continue;
    ranges.push({ start: spec.start, end: spec.end === undefined ? length - 1 : Math.min(spec.end, length - 1) });
  }
  if (ranges.length === 0) return { kind: "unsatisfiable" };

  // Merging keeps a many-small-ranges request from multiplying the response size.
  const sorted = ranges.length === 1 ? ranges : [...ranges].sort((a, b) => a.start - b.start);
  const merged: ByteRange[] = [];
  for (const range of sorted) {
    const previous = merged[merged.length - 1];
    if (previous !== undefined && range.start <= previous.end + 1) previous.end = Math.max(previous.end, range.end);
    else merged.push({ ...range });
  }
  return { kind: "partial", ranges: merged };
}

/** The framing of a multipart/byteranges body (RFC 9110 section 14.6): a head before each part, and the closing line. */
export interface MultipartFraming {
  heads: Buffer[];
  tail: Buffer;
  /** Bytes of the whole body, parts included. */
  totalBytes: number;
}

/** Returns the framing of a multipart/byteranges body for `ranges` of an object of `length` bytes. */
export function multipartFraming(
  ranges: readonly ByteRange[],
  contentType: string | undefined,
  boundary: string,
  length: number,
): MultipartFraming {
  const heads: Buffer[] = [];
  let totalBytes = 0;
  for (const range of ranges) {
    let head = `\r\n--${boundary}\r\n`;
    if (contentType !== undefined) head += `content-type: ${contentType}\r\n`;
    head += `content-range: ${contentRange(range.start, range.end, length)}\r\n\r\n`;
    const bytes = Buffer.from(head);
    heads.push(bytes);
    totalBytes += bytes.length + range.end - range.start + 1;
  }
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return { heads, tail, totalBytes: totalBytes + tail.length };
}

/** Builds a multipart/byteranges body (RFC 9110 section 14.6) for `ranges` of `body`. */
export function multipartByteranges(
  body: Buffer,
  ranges: readonly ByteRange[],
  contentType: string | undefined,
  boundary: string,
): Buffer {
  const framing = multipartFraming(ranges, contentType, boundary, body.length);
  const parts: Buffer[] = [];
  ranges.forEach((range, index) => parts.push(framing.heads[index]!, body.subarray(range.start, range.end + 1)));
  parts.push(framing.tail);
  return Buffer.concat(parts, framing.totalBytes);
}
