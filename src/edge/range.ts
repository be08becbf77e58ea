/** Single byte ranges (RFC 9110 section 14), as the edge serves them from whole objects. */

export type RangeDecision =
  | { kind: "full" }
  | { kind: "partial"; start: number; end: number }
  | { kind: "unsatisfiable" };

/**
 * Resolves a `Range` header against an object of `length` bytes. Invalid
 * syntax, other units and multiple ranges are ignored, so the whole object
 * is sent (RFC 9110 section 14.2 allows a server to ignore Range).
 */
export function resolveRange(header: string | undefined, length: number): RangeDecision {
  if (header === undefined) return { kind: "full" };
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (match === null) return { kind: "full" };
  const [, first, last] = match as unknown as [string, string, string];
  if (first === "" && last === "") return { kind: "full" };

  if (first === "") {
    // A suffix range: the last N bytes.
    const suffixLength = Number(last);
    if (suffixLength === 0 || length === 0) return { kind: "unsatisfiable" };
    return { kind: "partial", start: Math.max(0, length - suffixLength), end: length - 1 };
  }

  const start = Number(first);
  const end = last === "" ? length - 1 : Math.min(Number(last), length - 1);
  if (last !== "" && Number(last) < start) return { kind: "full" };
  if (start >= length) return { kind: "unsatisfiable" };
  return { kind: "partial", start, end };
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
  const match = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (match === null) return { kind: "full" };
  const specs = match[1]!.split(",").map((spec) => spec.trim()).filter((spec) => spec !== "");
  if (specs.length === 0 || specs.length > maxRanges) return { kind: "full" };

  const ranges: ByteRange[] = [];
  for (const spec of specs) {
    const parts = /^(\d*)\s*-\s*(\d*)$/.exec(spec);
    if (parts === null) return { kind: "full" };
    const [, first, last] = parts as unknown as [string, string, string];
    if (first === "" && last === "") return { kind: "full" };
    if (first === "") {
      const suffixLength = Number(last);
      if (suffixLength > 0 && length > 0) ranges.push({ start: Math.max(0, length - suffixLength), end: length - 1 });
      continue;
    }
    const start = Number(first);
    if (last !== "" && Number(last) < start) return { kind: "full" };
    if (start >= length) continue;
    ranges.push({ start, end: last === "" ? length - 1 : Math.min(Number(last), length - 1) });
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

/** Builds a multipart/byteranges body (RFC 9110 section 14.6) for `ranges` of `body`. */
export function multipartByteranges(
  body: Buffer,
  ranges: readonly ByteRange[],
  contentType: string | undefined,
  boundary: string,
): Buffer {
  const parts: Buffer[] = [];
  for (const range of ranges) {
    let head = `\r\n--${boundary}\r\n`;
    if (contentType !== undefined) head += `content-type: ${contentType}\r\n`;
    head += `content-range: ${contentRange(range.start, range.end, body.length)}\r\n\r\n`;
    parts.push(Buffer.from(head), body.subarray(range.start, range.end + 1));
  }
  parts.push(Buffer.from(`\r\n--${boundary}--\r\n`));
  return Buffer.concat(parts);
}
