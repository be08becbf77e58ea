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
