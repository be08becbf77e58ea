const compiled = new Map<string, RegExp>();
const MAX_CACHED_PATTERNS = 4096;

/**
 * Returns whether `value` matches an IAM wildcard pattern, where `*` matches
 * any run of characters and `?` any one character ("IAM JSON policy elements:
 * Resource", AWS IAM user guide).
 */
export function matchesWildcard(pattern: string, value: string, ignoreCase = false): boolean {
  const cacheKey = (ignoreCase ? "i" : "s") + pattern;
  let regex = compiled.get(cacheKey);
  if (!regex) {
    let source = "^";
    for (const char of pattern) {
      if (char === "*") source += "[\\s\\S]*";
      else if (char === "?") source += "[\\s\\S]";
      else source += char.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    }
    regex = new RegExp(source + "$", ignoreCase ? "iu" : "u");
    if (compiled.size >= MAX_CACHED_PATTERNS) compiled.clear();
    compiled.set(cacheKey, regex);
  }
  return regex.test(value);
}

/**
 * Matches ARNs the way ArnLike and ArnEquals do: each of the six
 * colon-separated parts is compared on its own, each may hold wildcards, and
 * the resource part keeps any further colons.
 */
export function matchesArn(pattern: string, arn: string): boolean {
  const patternParts = splitArn(pattern);
  const arnParts = splitArn(arn);
  if (patternParts === undefined || arnParts === undefined) return false;
  return patternParts.every((part, index) => matchesWildcard(part, arnParts[index]!));
}

function splitArn(value: string): string[] | undefined {
  const parts = value.split(":");
  if (parts.length < 6) return undefined;
  return [...parts.slice(0, 5), parts.slice(5).join(":")];
}
