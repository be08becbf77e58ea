import type { IncomingHttpHeaders } from "node:http";

/**
 * A strict HTTP/1.1 request-head parser (RFC 9112) for the edge's hot path.
 * It reads one request line and its header section from a buffer and
 * rejects every ambiguity that lets two parsers disagree on where a request
 * ends: conflicting or repeated framing headers, obs-fold, bare CR or LF,
 * whitespace before the colon, and bytes outside the grammar.
 */

export interface Http1Limits {
  /** Maximum request line length, CRLF excluded. Longer ones get 414. */
  maxRequestLineBytes: number;
  /** Maximum head size (request line and header section). Larger ones get 431. */
  maxHeadBytes: number;
  /** Maximum header fields in one request. More get 431. */
  maxHeaderCount: number;
}

export const DEFAULT_HTTP1_LIMITS: Http1Limits = {
  maxRequestLineBytes: 8 * 1024,
  maxHeadBytes: 32 * 1024,
  maxHeaderCount: 100,
};

/** The framing of a request body (RFC 9112 section 6.3). */
export type BodyFraming = { kind: "none" } | { kind: "length"; bytes: number } | { kind: "chunked" };

export interface ParsedHead {
  method: string;
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minorVersion: 0 | 1;
  headers: IncomingHttpHeaders;
  framing: BodyFraming;
  /** Whether the connection stays open after the response (RFC 9112 section 9.3). */
  keepAlive: boolean;
  expectContinue: boolean;
  /** Bytes the head took in the buffer, final CRLF included. */
  headBytes: number;
}

/** A request the edge rejects, with the status to send before closing the connection. */
export class HeadError extends Error {
  constructor(
    readonly status: 400 | 414 | 417 | 431 | 501 | 505,
    message: string,
  ) {
    super(message);
    this.name = "HeadError";
  }
}

export type ParseResult = ParsedHead | "incomplete";

/** tchar (RFC 9110 section 5.6.2), indexed by byte. */
export const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TOKEN[c.charCodeAt(0)] = 1;
}

/** Bytes allowed in a field value: VCHAR, SP, HTAB and obs-text (RFC 9110 section 5.5). */
const FIELD_VALUE = new Uint8Array(256);
for (let byte = 0; byte < 256; byte++) {
  FIELD_VALUE[byte] = byte === 0x09 || (byte >= 0x20 && byte !== 0x7f) ? 1 : 0;
}

/** Bytes allowed in a request-target: visible ASCII except `#` and `\`, checked again by the path rules. */
const TARGET = new Uint8Array(256);
for (let byte = 0x21; byte < 0x7f; byte++) TARGET[byte] = byte === 0x23 || byte === 0x5c ? 0 : 1;

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
/** Empty lines accepted before a request line. RFC 9112 section 2.2 says a server SHOULD skip at least one. */
const MAX_LEADING_EMPTY_LINES = 4;

/** Fields that must not appear twice, since two copies could be read two ways. */
const SINGLE_FIELDS = new Set(["host", "content-length", "authorization", "if-none-match", "range"]);

/** Offsets of the fields of the head being parsed: name start, name end, value start, value end. */
let fieldOffsets = new Int32Array(4 * 128);

/**
 * Parses one request head at `buffer[start..]`. Returns "incomplete" when
 * the head has not fully arrived and is still within the limits, and
 * throws HeadError for a request to reject.
 *
 * It walks the bytes once, checking each against the grammar, and only then
 * makes strings: one latin1 decode of the whole head, cut into the method,
 * target and values, with common field names taken from a table of
 * lower-case constants. An invalid byte is rejected as soon as it arrives,
 * before the rest of its line.
 */
export function parseRequestHead(buffer: Buffer, start: number, limits: Http1Limits): ParseResult {
  const end = buffer.length;
  let position = start;

  for (let skipped = 0; ; skipped++) {
    if (position + 1 >= end) return "incomplete";
    if (buffer[position] !== CR || buffer[position + 1] !== LF) break;
    if (skipped === MAX_LEADING_EMPTY_LINES) throw new HeadError(400, "too many empty lines before the request line");
    position += 2;
  }
  const headStart = position;

  const line = scanRequestLine(buffer, position, limits);
  if (line === undefined) return "incomplete";
  position = line.next;

  if (fieldOffsets.length < 4 * limits.maxHeaderCount) fieldOffsets = new Int32Array(4 * limits.maxHeaderCount);
  const offsets = fieldOffsets;
  let fieldCount = 0;
  const headLimit = headStart + limits.maxHeadBytes;
  const scanEnd = Math.min(end, headLimit);
  // Bytes ran out before the head ended: wait for more, unless the limit is reached.
  const outOfBytes = (): "incomplete" => {
    if (end >= headLimit) throw new HeadError(431, "request header section too large");
    return "incomplete";
  };

  for (;;) {
    if (position >= scanEnd) return outOfBytes();
    const first = buffer[position]!;
    if (first === CR) {
      if (position + 1 >= scanEnd) return outOfBytes();
      if (buffer[position + 1] !== LF) throw new HeadError(400, "header line not ended by CRLF");
      position += 2;
      break;
    }
    if (first === LF) throw new HeadError(400, "header line not ended by CRLF");
    // RFC 9112 section 5.2: obs-fold in a request is rejected with 400.
    if (first === SP || first === HTAB) throw new HeadError(400, "obsolete line folding");
    if (fieldCount === limits.maxHeaderCount) throw new HeadError(431, "too many header fields");

    const nameStart = position;
    while (position < scanEnd && TOKEN[buffer[position]!] === 1) position++;
    if (position >= scanEnd) return outOfBytes();
    // RFC 9112 section 5.1: no whitespace between the field name and the colon.
    if (position === nameStart || buffer[position] !== 0x3a) throw new HeadError(400, "invalid header field name");
    const nameEnd = position;
    position++;

    while (position < scanEnd && (buffer[position] === SP || buffer[position] === HTAB)) position++;
    const valueStart = position;
    let valueEnd = position;
    for (;;) {
      if (position >= scanEnd) return outOfBytes();
      const byte = buffer[position]!;
      if (FIELD_VALUE[byte] === 1) {
        position++;
        // Trailing whitespace is not part of the value (RFC 9110 section 5.5).
        if (byte !== SP && byte !== HTAB) valueEnd = position;
        continue;
      }
      if (byte === LF) throw new HeadError(400, "header line not ended by CRLF");
      if (byte !== CR) throw new HeadError(400, "invalid character in a header field value");
      if (position + 1 >= scanEnd) return outOfBytes();
      // A CR not followed by LF is a bare CR inside the value.
      if (buffer[position + 1] !== LF) throw new HeadError(400, "invalid character in a header field value");
      position += 2;
      break;
    }
    const slot = fieldCount * 4;
    offsets[slot] = nameStart;
    offsets[slot + 1] = nameEnd;
    offsets[slot + 2] = valueStart;
    offsets[slot + 3] = valueEnd;
    fieldCount++;
  }

  // Every byte of the head is valid: decode it once and cut it up.
  const text = buffer.toString("latin1", headStart, position);
  const method = methodName(buffer, headStart, line.methodEnd) ?? text.slice(0, line.methodEnd - headStart);
  const target = text.slice(line.targetStart - headStart, line.targetEnd - headStart);

  const headers: IncomingHttpHeaders = {};
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  for (let i = 0; i < fieldCount; i++) {
    const slot = i * 4;
    const nameStart = offsets[slot]!;
    const nameEnd = offsets[slot + 1]!;
    const name =
      knownFieldName(buffer, nameStart, nameEnd) ?? text.slice(nameStart - headStart, nameEnd - headStart).toLowerCase();
    const value = text.slice(offsets[slot + 2]! - headStart, offsets[slot + 3]! - headStart);
    if (name === "content-length") {
      // RFC 9112 section 6.3: a repeated or list-valued Content-Length is a smuggling vector.
      if (contentLength !== undefined) throw new HeadError(400, "repeated Content-Length");
      contentLength = value;
    } else if (name === "transfer-encoding") {
      transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
    }
    addField(headers, name, value);
  }

  const minorVersion = line.minorVersion;
  if (minorVersion === 1 && headers.host === undefined) {
    // RFC 9112 section 3.2: an HTTP/1.1 request without Host gets 400.
    throw new HeadError(400, "missing Host header");
  }

  const framing = bodyFraming(contentLength, transferEncoding, minorVersion);
  const connection = headers.connection?.toLowerCase();
  const keepAlive =
    minorVersion === 1 ? !hasToken(connection, "close") : hasToken(connection, "keep-alive") && !hasToken(connection, "close");

  let expectContinue = false;
  const expect = headers.expect;
  if (expect !== undefined) {
    // RFC 9110 section 10.1.1: 100-continue is the only expectation defined.
    if (expect.toLowerCase() !== "100-continue") throw new HeadError(417, "unsupported expectation");
    expectContinue = minorVersion === 1 && framing.kind !== "none";
  }

  return { method, target, minorVersion, headers, framing, keepAlive, expectContinue, headBytes: position - start };
}

/** Offsets of a request line's parts. */
interface RequestLine {
  methodEnd: number;
  targetStart: number;
  targetEnd: number;
  minorVersion: 0 | 1;
  /** Offset of the first byte after the line's CRLF. */
  next: number;
}

/** The bytes of `HTTP/`. */
const HTTP_SLASH = [0x48, 0x54, 0x54, 0x50, 0x2f];

/**
 * Checks `method SP request-target SP HTTP-version CRLF` (RFC 9112 section 3)
 * byte by byte. Returns undefined while the line is incomplete.
 */
function scanRequestLine(buffer: Buffer, start: number, limits: Http1Limits): RequestLine | undefined {
  const end = buffer.length;
  // The line is at most maxRequestLineBytes long, CRLF excluded.
  const scanEnd = Math.min(end, start + limits.maxRequestLineBytes + 2);
  const outOfBytes = (): undefined => {
    if (end - start > limits.maxRequestLineBytes + 1) throw new HeadError(414, "request line too long");
    return undefined;
  };

  let position = start;
  while (position < scanEnd && TOKEN[buffer[position]!] === 1) position++;
  if (position >= scanEnd) return outOfBytes();
  if (position === start || buffer[position] !== SP) throw new HeadError(400, "invalid request method");
  const methodEnd = position;

  const targetStart = ++position;
  while (position < scanEnd && TARGET[buffer[position]!] === 1) position++;
  if (position >= scanEnd) return outOfBytes();
  if (position === targetStart || buffer[position] !== SP) throw new HeadError(400, "invalid request-target");
  const targetEnd = position;
  const versionStart = position + 1;

  // HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 section 2.3): eight bytes, then CRLF.
  if (versionStart + 9 >= scanEnd) {
    // Wait for the version and CRLF, unless a line end already came.
    for (let i = versionStart; i < scanEnd; i++) if (buffer[i] === LF) return shortVersion(buffer, versionStart, i);
    return outOfBytes();
  }
  for (let i = versionStart; i < versionStart + 9; i++) if (buffer[i] === LF) shortVersion(buffer, versionStart, i);
  if (buffer[versionStart + 8] !== CR) throw new HeadError(400, "invalid HTTP version");
  if (buffer[versionStart + 9] !== LF) throw new HeadError(400, "request line not ended by CRLF");
  for (let i = 0; i < HTTP_SLASH.length; i++) {
    if (buffer[versionStart + i] !== HTTP_SLASH[i]) throw new HeadError(400, "invalid HTTP version");
  }
  const major = buffer[versionStart + 5]!;
  const dot = buffer[versionStart + 6]!;
  const minor = buffer[versionStart + 7]!;
  if (dot !== 0x2e || major < 0x30 || major > 0x39 || minor < 0x30 || minor > 0x39) {
    throw new HeadError(400, "invalid HTTP version");
  }
  if (major !== 0x31 || (minor !== 0x30 && minor !== 0x31)) throw new HeadError(505, "unsupported HTTP version");
  return { methodEnd, targetStart, targetEnd, minorVersion: minor === 0x31 ? 1 : 0, next: versionStart + 10 };
}

/** Returns the error for a request line that ended at `lineFeed`, before a whole version. */
function shortVersion(buffer: Buffer, versionStart: number, lineFeed: number): never {
  const afterCr = lineFeed > versionStart && buffer[lineFeed - 1] === CR;
  throw new HeadError(400, afterCr ? "invalid HTTP version" : "request line not ended by CRLF");
}

/** Returns "GET" or "HEAD" as constants, for the methods of nearly every request. */
function methodName(buffer: Buffer, start: number, end: number): string | undefined {
  const length = end - start;
  if (length === 3 && buffer[start] === 0x47 && buffer[start + 1] === 0x45 && buffer[start + 2] === 0x54) return "GET";
  const isHead =
    length === 4 &&
    buffer[start] === 0x48 &&
    buffer[start + 1] === 0x45 &&
    buffer[start + 2] === 0x41 &&
    buffer[start + 3] === 0x44;
  return isHead ? "HEAD" : undefined;
}

/** Field names that browsers, proxies and load generators send, in lower case, grouped by length. */
const KNOWN_FIELD_NAMES: ReadonlyArray<readonly string[] | undefined> = (() => {
  const names = [
    "te", "dnt", "host", "date", "range", "accept", "cookie", "origin", "expect", "pragma", "referer",
    "upgrade", "if-range", "if-match", "sec-ch-ua", "connection", "user-agent", "keep-alive",
    "content-type", "x-request-id", "cache-control", "authorization", "if-none-match", "content-length",
    "accept-charset", "sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest", "sec-fetch-user",
    "accept-encoding", "accept-language", "x-forwarded-for", "x-forwarded-proto", "sec-ch-ua-mobile",
    "transfer-encoding", "if-modified-since", "sec-ch-ua-platform", "if-unmodified-since",
    "upgrade-insecure-requests", "access-control-request-method", "access-control-request-headers",
  ];
  const byLength: string[][] = [];
  for (const name of names) (byLength[name.length] ??= []).push(name);
  return byLength;
})();

/**
 * Returns the lower-case constant for a well-known field name in any case,
 * so that common fields make no new string. The names contain only letters
 * and `-`. `byte | 0x20` folds A-Z onto a-z and keeps `-`, and the only other
 * byte it maps onto `-` is CR, which is not a token byte.
 */
function knownFieldName(buffer: Buffer, start: number, end: number): string | undefined {
  const candidates = KNOWN_FIELD_NAMES[end - start];
  if (candidates === undefined) return undefined;
  for (const candidate of candidates) {
    let i = 0;
    while (i < candidate.length && (buffer[start + i]! | 0x20) === candidate.charCodeAt(i)) i++;
    if (i === candidate.length) return candidate;
  }
  return undefined;
}

function addField(headers: IncomingHttpHeaders, name: string, value: string): void {
  const previous = headers[name];
  if (previous === undefined) {
    headers[name] = name === "set-cookie" ? [value] : value;
    return;
  }
  if (SINGLE_FIELDS.has(name)) throw new HeadError(400, `repeated ${name} header`);
  if (Array.isArray(previous)) previous.push(value);
  // Cookie lines join with "; " (RFC 6265 section 5.4), other lists with ", " (RFC 9110 section 5.3).
  else headers[name] = name === "cookie" ? `${previous}; ${value}` : `${previous}, ${value}`;
}

function hasToken(list: string | undefined, token: string): boolean {
  if (list === undefined) return false;
  for (const item of list.split(",")) if (item.trim() === token) return true;
  return false;
}

/** Applies RFC 9112 section 6.3 strictly: one Content-Length of digits, or chunked last, never both. */
function bodyFraming(contentLength: string | undefined, transferEncoding: string | undefined, minorVersion: 0 | 1): BodyFraming {
  if (transferEncoding !== undefined) {
    if (contentLength !== undefined) throw new HeadError(400, "both Content-Length and Transfer-Encoding");
    // RFC 9112 section 6.1: Transfer-Encoding in HTTP/1.0 is treated as faulty framing.
    if (minorVersion === 0) throw new HeadError(400, "Transfer-Encoding in an HTTP/1.0 request");
    const codings = transferEncoding.split(",").map((coding) => coding.trim().toLowerCase());
    if (codings.length !== 1 || codings[0] !== "chunked") {
      // Only chunked alone is accepted: another coding would leave the body length unknown.
      if (codings.at(-1) !== "chunked") throw new HeadError(400, "Transfer-Encoding does not end with chunked");
      throw new HeadError(501, "unsupported transfer coding");
    }
    return { kind: "chunked" };
  }
  if (contentLength === undefined) return { kind: "none" };
  if (!/^\d{1,15}$/.test(contentLength)) throw new HeadError(400, "invalid Content-Length");
  const bytes = Number(contentLength);
  return bytes === 0 ? { kind: "none" } : { kind: "length", bytes };
}
