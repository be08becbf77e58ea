import { parseDictionary } from "structured-headers";
import type { CacheControl } from "./freshness.js";

/** The largest delta-seconds value kept, as RFC 9111 section 1.2.2 requires. */
const MAX_DELTA_SECONDS = 2 ** 31;

/** Returns a directive's value as delta-seconds, or undefined unless it is a non-negative Integer. */
function secondsOf(value: unknown): number | undefined {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) return undefined;
  return Math.min(value, MAX_DELTA_SECONDS);
}

/**
 * Parses a `CDN-Cache-Control` value (RFC 9213). The field is a Structured
 * Fields Dictionary (RFC 9651): repeated field lines form one list, and a key
 * given twice keeps its last value. A value that fails to parse makes the
 * whole field void: the function returns undefined, and Cache-Control
 * applies (section 2.1). A field that parses replaces Cache-Control even
 * when it has no directive this cache implements. Delta-seconds
 * directives take Integers; `no-cache`, `no-store`, `private` and the
 * revalidate directives count unless their value is the Boolean false.
 */
export function parseCdnCacheControl(value: string | undefined): CacheControl | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  let dictionary: ReturnType<typeof parseDictionary>;
  try {
    dictionary = parseDictionary(value);
  } catch {
    return undefined;
  }
  const present = (name: string): boolean => {
    const member = dictionary.get(name);
    return member !== undefined && member[0] !== false;
  };
  return {
    noCache: present("no-cache"),
    noStore: present("no-store"),
    isPrivate: present("private"),
    mustRevalidate: present("must-revalidate") || present("proxy-revalidate"),
    maxAgeSeconds: secondsOf(dictionary.get("max-age")?.[0]),
    sMaxAgeSeconds: secondsOf(dictionary.get("s-maxage")?.[0]),
    staleWhileRevalidateSeconds: secondsOf(dictionary.get("stale-while-revalidate")?.[0]),
    staleIfErrorSeconds: secondsOf(dictionary.get("stale-if-error")?.[0]),
  };
}
