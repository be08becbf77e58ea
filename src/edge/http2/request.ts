import type { IncomingHttpHeaders } from "node:http";
import type { HeaderField } from "./hpack.js";

/**
 * Checks a request's decoded header list against RFC 9113 sections 8.2 and
 * 8.3 and returns its parts, or the reason it is malformed. A malformed
 * request is a stream error of type PROTOCOL_ERROR (section 8.1.1).
 */

export interface Http2RequestHead {
  method: string;
  /** `:path` as received. */
  path: string;
  authority: string | undefined;
  /** Regular fields with lower-case names; repeated fields are joined, cookies with `; `. */
  headers: IncomingHttpHeaders;
  /** Content-Length when present, for checking the DATA frames against it. */
  contentLength: number | undefined;
}

export type ParsedRequest = { ok: true; head: Http2RequestHead } | { ok: false; reason: string };

/** tchar without upper-case letters: field names must be lower case in HTTP/2 (section 8.2.1). */
const NAME_CHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") NAME_CHAR[c.charCodeAt(0)] = 1;

/** Connection-specific fields, which make a request malformed (section 8.2.2). */
const CONNECTION_FIELDS = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

/** Fields that must not appear twice, since two copies could be read two ways. */
const SINGLE_FIELDS = new Set(["host", "content-length", "authorization", "if-none-match", "range"]);

function validName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code >= 128 || NAME_CHAR[code] !== 1) return false;
  }
  return true;
}

/** Section 8.2.1: no NUL, CR or LF anywhere, and no whitespace at either end. */
function validValue(value: string): boolean {
  const length = value.length;
  if (length === 0) return true;
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(length - 1);
  if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) return false;
  for (let i = 0; i < length; i++) {
    const code = value.charCodeAt(i);
    if (code === 0x00 || code === 0x0a || code === 0x0d) return false;
  }
  return true;
}

/**
 * Returns whether a field's name and value pass the character checks of parseRequestFields.
 * The HPACK decoder checks each field that enters its dynamic table once, so that blocks that
 * refer to it by index, as browsers usually do for `user-agent` or `cookie`, skip the
 * check.
 */
export function validTableField(field: HeaderField): boolean {
  const name = field[0];
  return validValue(field[1]) && (name.charCodeAt(0) === 0x3a || validName(name));
}

/**
 * Checks a decoded header list. Bit i of `validBits` marks field i as already checked for
 * invalid characters (the decoder's validBits).
 */
export function parseRequestFields(fields: readonly HeaderField[], validBits = 0): ParsedRequest {
  let method: string | undefined;
  let scheme: string | undefined;
  let path: string | undefined;
  let authority: string | undefined;
  let regularSeen = false;
  const headers: IncomingHttpHeaders = {};

  for (let i = 0; i < fields.length; i++) {
    const name = fields[i]![0];
    const value = fields[i]![1];
    const checked = i < 31 && (validBits & (1 << i)) !== 0;
    if (!checked && !validValue(value)) return { ok: false, reason: `invalid value of ${name}` };
    if (name.charCodeAt(0) === 0x3a) {
      // Pseudo-header fields come first, once each, and only the defined ones (section 8.3).
      if (regularSeen) return { ok: false, reason: "pseudo-header field after a regular field" };
      if (name === ":method" && method === undefined) method = value;
      else if (name === ":scheme" && scheme === undefined) scheme = value;
      else if (name === ":path" && path === undefined) path = value;
      else if (name === ":authority" && authority === undefined) authority = value;
      else return { ok: false, reason: `unknown or repeated pseudo-header field ${name}` };
      continue;
    }
    regularSeen = true;
    if (!checked && !validName(name)) return { ok: false, reason: "invalid field name" };
    if (CONNECTION_FIELDS.has(name)) return { ok: false, reason: `connection-specific field ${name}` };
    if (name === "te" && value !== "trailers") return { ok: false, reason: "TE other than trailers" };
    const previous = headers[name];
    if (previous === undefined) {
      headers[name] = name === "set-cookie" ? [value] : value;
      continue;
    }
    if (SINGLE_FIELDS.has(name)) return { ok: false, reason: `repeated ${name} field` };
    if (Array.isArray(previous)) previous.push(value);
    // Section 8.2.3: cookie fields are joined with "; " before an HTTP/1.1 hop.
    else headers[name] = name === "cookie" ? `${previous}; ${value}` : `${previous}, ${value}`;
  }

  if (method === undefined || method === "") return { ok: false, reason: "missing :method" };
  if (method === "CONNECT") return { ok: false, reason: "CONNECT is not supported" };
  if (scheme === undefined || path === undefined || path === "") return { ok: false, reason: "missing :scheme or :path" };
  if (path === "*" && method !== "OPTIONS") return { ok: false, reason: "asterisk :path outside OPTIONS" };

  // Section 8.3.1: Host, when present, must name what :authority names.
  const host = headers.host;
  if (authority !== undefined && host !== undefined && host.toLowerCase() !== authority.toLowerCase()) {
    return { ok: false, reason: "Host differs from :authority" };
  }

  let contentLength: number | undefined;
  const lengthField = headers["content-length"];
  if (lengthField !== undefined) {
    if (!/^\d{1,15}$/.test(lengthField)) return { ok: false, reason: "invalid content-length" };
    contentLength = Number(lengthField);
  }
  return { ok: true, head: { method, path, authority, headers, contentLength } };
}
