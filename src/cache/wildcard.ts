/**
 * Compiles a CloudFront wildcard pattern into an anchored regular
 * expression: `*` matches zero or more characters and `?` exactly one. Path
 * patterns and whitelisted cookie names use this syntax, case-sensitively.
 */
export function compileWildcard(pattern: string): RegExp {
  let source = "^";
  for (const char of pattern) {
    if (char === "*") source += "[\\s\\S]*";
    else if (char === "?") source += "[\\s\\S]";
    // With the `u` flag, only syntax characters and `/` may be escaped: `\-` would be invalid.
    else source += char.replace(/[.+^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(source + "$", "u");
}
