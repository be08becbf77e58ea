import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * Headers sent with every dashboard response. The CSP allows scripts and
 * styles only from this origin, so no inline script runs even if a value
 * slips past escaping. frame-ancestors and X-Frame-Options stop clickjacking.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

/** The largest login form body read. */
const MAX_FORM_BYTES = 4096;

export function send(
  response: ServerResponse,
  status: number,
  contentType: string,
  body: string | Buffer,
  headers: Record<string, string | string[]> = {},
): void {
  response.writeHead(status, {
    ...SECURITY_HEADERS,
    "cache-control": "no-store",
    "content-type": contentType,
    "content-length": String(Buffer.byteLength(body)),
    ...headers,
  });
  response.end(body);
}

export function sendJson(response: ServerResponse, value: unknown): void {
  send(response, 200, "application/json; charset=utf-8", JSON.stringify(value));
}

/** Sends a 303 See Other, so the browser follows with a GET. */
export function redirect(response: ServerResponse, location: string, headers: Record<string, string | string[]> = {}): void {
  send(response, 303, "text/plain; charset=utf-8", `See ${location}\n`, { location, ...headers });
}

export function methodNotAllowed(response: ServerResponse, allowed: string): void {
  send(response, 405, "text/plain; charset=utf-8", "method not allowed\n", { allow: allowed });
}

/** Reads one cookie from the Cookie header, or undefined. */
export function readCookie(request: IncomingMessage, name: string): string | undefined {
  const header = request.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(";")) {
    const equals = part.indexOf("=");
    if (equals < 0) continue;
    if (part.slice(0, equals).trim() === name) return part.slice(equals + 1).trim();
  }
  return undefined;
}

/** Parses the query parameters of a request. */
export function queryOf(request: IncomingMessage): URLSearchParams {
  const target = request.url ?? "/";
  const start = target.indexOf("?");
  return new URLSearchParams(start < 0 ? "" : target.slice(start + 1));
}

/** Reads an `application/x-www-form-urlencoded` body; undefined when it is another type or too large. */
export async function readForm(request: IncomingMessage): Promise<URLSearchParams | undefined> {
  const contentType = String(request.headers["content-type"] ?? "").toLowerCase();
  if (!contentType.startsWith("application/x-www-form-urlencoded")) return undefined;
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_FORM_BYTES) return undefined;
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks, total).toString("utf8"));
}

/**
 * Tells whether a state-changing request comes from this site. Browsers send
 * Sec-Fetch-Site (Fetch Metadata), which then decides alone. Older browsers
 * send Origin on cross-site POSTs, which must then name this host. Clients
 * that send neither (curl, scripts) are not browsers carrying someone
 * else's cookies.
 */
export function isSameOrigin(request: IncomingMessage): boolean {
  const fetchSite = request.headers["sec-fetch-site"];
  if (fetchSite !== undefined) return fetchSite === "same-origin" || fetchSite === "none";
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  if (origin === "null") return false;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

/** Escapes text for an HTML text node or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}
