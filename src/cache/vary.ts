/**
 * Secondary cache keys from the origin's `Vary` (RFC 9111 section 4.1). A
 * stored response is used only for a request whose selecting header values
 * match the ones of the request that produced it. The values compared are
 * those of the origin request, after the behavior's key and origin request
 * policy chose what to forward, since the origin can only vary on what it saw.
 */

/** The parsed `Vary` of a response. */
export type VarySpec = { kind: "none" } | { kind: "star" } | { kind: "headers"; names: readonly string[] };

/** Parses `Vary` into sorted lower-case field names; `*` anywhere wins (RFC 9110 section 12.5.5). */
export function parseVary(value: string | undefined): VarySpec {
  if (value === undefined) return { kind: "none" };
  const names = new Set<string>();
  for (const part of value.split(",")) {
    const name = part.trim().toLowerCase();
    if (name === "") continue;
    if (name === "*") return { kind: "star" };
    names.add(name);
  }
  return names.size === 0 ? { kind: "none" } : { kind: "headers", names: [...names].sort() };
}

/**
 * Returns the secondary key for `names`: each header's value as sent to the
 * origin, with whitespace around commas normalized (RFC 9111 section 4.1
 * allows normalizing before comparing). An absent header and an empty one differ.
 */
export function varySignature(names: readonly string[], originHeaders: Readonly<Record<string, string>>): string {
  let signature = "";
  for (const name of names) {
    const value = originHeaders[name];
    signature += value === undefined ? `\nv:${name}` : `\nv:${name}=${value.split(",").map((item) => item.trim()).join(",")}`;
  }
  return signature;
}

/** Upper bound on the primary keys whose Vary names are remembered; the oldest are forgotten first. */
const MAX_VARY_RECORDS = 100_000;

/**
 * The Vary names last seen for each primary key, so that a lookup can build
 * the full key before it has a stored variant in hand. Forgetting a record
 * only costs a miss: the next response records it again.
 */
export class VaryIndex {
  private readonly namesByKey = new Map<string, readonly string[]>();

  /** Returns the full key for a lookup: the primary key plus the secondary key when the resource varies. */
  fullKey(primaryKey: string, originHeaders: Readonly<Record<string, string>>): string {
    const names = this.namesByKey.get(primaryKey);
    return names === undefined ? primaryKey : primaryKey + varySignature(names, originHeaders);
  }

  /** Records the Vary names of a stored response and returns its full key. */
  record(primaryKey: string, names: readonly string[], originHeaders: Readonly<Record<string, string>>): string {
    if (names.length === 0) {
      this.namesByKey.delete(primaryKey);
      return primaryKey;
    }
    this.namesByKey.delete(primaryKey);
    this.namesByKey.set(primaryKey, names);
    if (this.namesByKey.size > MAX_VARY_RECORDS) {
      const oldest = this.namesByKey.keys().next().value;
      if (oldest !== undefined) this.namesByKey.delete(oldest);
    }
    return primaryKey + varySignature(names, originHeaders);
  }

  /** Returns whether responses for `primaryKey` were last seen varying on request headers. */
  varies(primaryKey: string): boolean {
    return this.namesByKey.has(primaryKey);
  }

  get size(): number {
    return this.namesByKey.size;
  }
}
