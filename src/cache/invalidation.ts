/**
 * Matching of invalidation paths against cached request paths. CloudFront
 * compares paths percent-encoded and case-sensitively. A path that ends in
 * `*` matches every path with the same prefix; `*` elsewhere is literal.
 */

const HEX = "0123456789ABCDEF";

function isUnreserved(code: number): boolean {
  return (
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x30 && code <= 0x39) ||
    code === 0x2d ||
    code === 0x2e ||
    code === 0x5f ||
    code === 0x7e
  );
}

/**
 * Returns a path in one canonical percent-encoding so that equivalent forms
 * compare equal: escapes of unreserved characters are decoded, other escapes
 * get upper-case hex (RFC 3986 section 6.2.2), and characters outside the
 * URI syntax, such as spaces or non-ASCII in an API-given path, are encoded
 * as UTF-8. `%2F` stays encoded, so it never equals `/`.
 */
export function canonicalizePath(path: string): string {
  let out = "";
  for (let i = 0; i < path.length; i++) {
    const char = path[i]!;
    if (char === "%" && i + 2 < path.length && /^[0-9a-fA-F]{2}$/.test(path.slice(i + 1, i + 3))) {
      const code = parseInt(path.slice(i + 1, i + 3), 16);
      out += isUnreserved(code) ? String.fromCharCode(code) : "%" + path.slice(i + 1, i + 3).toUpperCase();
      i += 2;
      continue;
    }
    const code = char.charCodeAt(0);
    if (code > 0x20 && code < 0x7f && char !== "%") {
      out += char;
      continue;
    }
    const codePoint = path.codePointAt(i)!;
    if (codePoint > 0xffff) i++;
    for (const byte of Buffer.from(String.fromCodePoint(codePoint), "utf8")) {
      out += "%" + HEX[byte >> 4]! + HEX[byte & 15]!;
    }
  }
  return out;
}

/** Compiles an invalidation's paths into one predicate over canonical request paths. */
export function compileInvalidationPaths(paths: readonly string[]): (invalidationPath: string) => boolean {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const path of paths) {
    if (path.endsWith("*")) prefixes.push(canonicalizePath(path.slice(0, -1)));
    else exact.add(canonicalizePath(path));
  }
  return (candidate) => exact.has(candidate) || prefixes.some((prefix) => candidate.startsWith(prefix));
}
