/** Entity-tag comparison and conditional request evaluation (RFC 9110 sections 8.8.3 and 13). */

interface EntityTag {
  weak: boolean;
  /** The opaque tag including its quotes. */
  opaque: string;
}

/** Parses one entity-tag (`"x"` or `W/"x"`); undefined when malformed. */
export function parseEntityTag(value: string): EntityTag | undefined {
  const trimmed = value.trim();
  const weak = trimmed.startsWith("W/");
  const opaque = weak ? trimmed.slice(2) : trimmed;
  if (opaque.length < 2 || !opaque.startsWith('"') || !opaque.endsWith('"')) return undefined;
  if (opaque.slice(1, -1).includes('"')) return undefined;
  return { weak, opaque };
}

/** Strong comparison (RFC 9110 section 8.8.3.2): both tags strong and their opaque parts equal. */
export function strongMatch(a: string, b: string): boolean {
  const left = parseEntityTag(a);
  const right = parseEntityTag(b);
  return left !== undefined && right !== undefined && !left.weak && !right.weak && left.opaque === right.opaque;
}

/** Weak comparison (RFC 9110 section 8.8.3.2): opaque parts equal, weakness ignored. */
export function weakMatch(a: string, b: string): boolean {
  const left = parseEntityTag(a);
  const right = parseEntityTag(b);
  return left !== undefined && right !== undefined && left.opaque === right.opaque;
}

/**
 * Returns whether a 304 applies to a stored response (RFC 9111 section
 * 4.3.4). A 304 that sends an entity tag applies when the stored one matches
 * it by the weak comparison, so a stored copy whose tag the edge weakened
 * when it compressed the body still matches. Without an entity tag, a 304
 * that sends Last-Modified applies when the stored date is the same. A 304
 * without validators applies to the one stored response.
 */
export function notModifiedApplies(
  storedEtag: string | undefined,
  storedLastModified: string | undefined,
  sentEtag: string | undefined,
  sentLastModified: string | undefined,
): boolean {
  if (sentEtag !== undefined) return storedEtag !== undefined && weakMatch(storedEtag, sentEtag);
  if (sentLastModified === undefined || storedLastModified === undefined) return true;
  return Date.parse(sentLastModified) === Date.parse(storedLastModified);
}

/** Splits an entity-tag list on the commas outside quotes. */
function splitTagList(header: string): string[] {
  const tags: string[] = [];
  let current = "";
  let quoted = false;
  for (const char of header) {
    if (char === '"') quoted = !quoted;
    if (char === "," && !quoted) {
      tags.push(current);
      current = "";
    } else {
      current += char;
    }
  }
  tags.push(current);
  return tags.map((tag) => tag.trim()).filter((tag) => tag !== "");
}

/** Returns whether If-None-Match matches the representation's tag: `*`, or any tag by weak comparison (RFC 9110 section 13.1.2). */
export function ifNoneMatchMatches(header: string, etag: string | undefined): boolean {
  if (etag === undefined) return false;
  if (header.trim() === "*") return true;
  return splitTagList(header).some((candidate) => weakMatch(candidate, etag));
}

/**
 * Evaluates the viewer's If-None-Match, else If-Modified-Since, for a GET or
 * HEAD (RFC 9110 section 13.2.2): true means 304 Not Modified.
 */
export function isNotModified(
  ifNoneMatch: string | undefined,
  ifModifiedSince: string | undefined,
  etag: string | undefined,
  lastModifiedMs: number,
): boolean {
  if (ifNoneMatch !== undefined) return ifNoneMatchMatches(ifNoneMatch, etag);
  if (ifModifiedSince === undefined || Number.isNaN(lastModifiedMs)) return false;
  const sinceMs = Date.parse(ifModifiedSince);
  return Number.isFinite(sinceMs) && lastModifiedMs <= sinceMs;
}

/**
 * Returns whether If-Range lets a Range apply (RFC 9110 section 13.1.5): an
 * entity-tag must match strongly, a date must equal Last-Modified exactly.
 */
export function ifRangeAllows(ifRange: string | undefined, etag: string | undefined, lastModified: string | undefined): boolean {
  if (ifRange === undefined) return true;
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith("W/")) return etag !== undefined && strongMatch(value, etag);
  return lastModified !== undefined && value === lastModified;
}
