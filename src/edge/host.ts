let lastHostHeader = "";
let lastHostName = "";

/**
 * Returns the lower-case host name of a Host header, without port. The last
 * result is reused for the same header, which also keeps one string object
 * for routing lookups, so its hash is computed once.
 */
export function hostNameOf(host: string | undefined): string {
  if (host === undefined) return "";
  if (host === lastHostHeader) return lastHostName;
  const name = parseHostName(host);
  lastHostHeader = host;
  lastHostName = name;
  return name;
}

function parseHostName(host: string): string {
  const trimmed = host.trim().toLowerCase();
  if (trimmed.startsWith("[")) {
    const close = trimmed.indexOf("]");
    return close < 0 ? trimmed : trimmed.slice(0, close + 1);
  }
  const colon = trimmed.indexOf(":");
  const name = colon < 0 ? trimmed : trimmed.slice(0, colon);
  return name.endsWith(".") ? name.slice(0, -1) : name;
}
