/**
 * Normalises a request path before the cache key and the origin path are
 * built from it, so that two requests share a cache entry only when the
 * origin would receive the same bytes for both.
 *
 * - Percent-encoded unreserved characters are decoded and other triplets
 *   get upper-case hex (RFC 3986 section 6.2.2.1 and 6.2.2.2). Reserved
 *   characters stay encoded, so `%2F` never becomes a separator.
 * - Dot-segments, written plainly or as `%2E`, are removed (RFC 3986
 *   section 5.2.4). A path whose dot-segments climb above the root is
 *   rejected instead of being clamped, since the viewer meant another path.
 * - A backslash is rejected: some origins read it as `/`, and RFC 3986
 *   does not allow it unencoded. Empty segments (`//`) pass unchanged.
 */

export type NormalizedPath = { ok: true; path: string } | { ok: false; reason: string };

const HEX = "0123456789ABCDEF";

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

/** unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986 section 2.3). */
function isUnreserved(code: number): boolean {
  return (
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x30 && code <= 0x39) ||
    code === 0x2d ||
    code === 0x2e ||
    code === 0x5f ||
    code === 0x7e
  );
}

/** Returns whether a path needs no work: no `%`, no dot-segment, no backslash. */
function isPlain(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const code = path.charCodeAt(i);
    if (code === 0x25 || code === 0x5c) return false;
    // A "." right after "/" may start a dot-segment.
    if (code === 0x2e && path.charCodeAt(i - 1) === 0x2f) return false;
  }
  return true;
}

/** Normalises an origin-form path (it starts with `/` and has no query). */
export function normalizePath(path: string): NormalizedPath {
  if (path.charCodeAt(0) !== 0x2f) return { ok: false, reason: "path does not start with /" };
  if (isPlain(path)) return { ok: true, path };

  let decoded = "";
  for (let i = 0; i < path.length; i++) {
    const code = path.charCodeAt(i);
    if (code === 0x5c) return { ok: false, reason: "backslash in path" };
    if (code !== 0x25) {
      decoded += path[i];
      continue;
    }
    const high = hexValue(path.charCodeAt(i + 1));
    const low = hexValue(path.charCodeAt(i + 2));
    if (high < 0 || low < 0) return { ok: false, reason: "invalid percent-encoding in path" };
    const byte = high * 16 + low;
    decoded += isUnreserved(byte) ? String.fromCharCode(byte) : `%${HEX[high]}${HEX[low]}`;
    i += 2;
  }
  return removeDotSegments(decoded);
}

/** RFC 3986 section 5.2.4 on an absolute path, failing where the input climbs above `/`. */
function removeDotSegments(path: string): NormalizedPath {
  // Splitting on "/" keeps empty segments, so "//" survives as it was sent.
  const input = path.split("/");
  const output: string[] = [];
  for (let i = 1; i < input.length; i++) {
    const segment = input[i]!;
    const last = i === input.length - 1;
    if (segment === ".") {
      if (last) output.push("");
      continue;
    }
    if (segment === "..") {
      if (output.length === 0) return { ok: false, reason: "path climbs above the root" };
      output.pop();
      if (last) output.push("");
      continue;
    }
    output.push(segment);
  }
  return { ok: true, path: `/${output.join("/")}` };
}
