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
const TOKEN = new Uint8Array(256);
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

/** Finds the next LF at or after `from`, before `end`; returns -1 when none. */
function findLineEnd(buffer: Buffer, from: number, end: number): number {
  const index = buffer.indexOf(LF, from);
  return index < 0 || index >= end ? -1 : index;
}

/**
 * Parses one request head at `buffer[start..]`. Returns "incomplete" when
 * the head has not fully arrived and is still within the limits, and
 * throws HeadError for a request to reject.
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

  const lineEnd = findLineEnd(buffer, position, Math.min(end, position + limits.maxRequestLineBytes + 2));
  if (lineEnd < 0) {
    if (end - position > limits.maxRequestLineBytes + 1) throw new HeadError(414, "request line too long");
    return "incomplete";
  }
  if (lineEnd === position || buffer[lineEnd - 1] !== CR) throw new HeadError(400, "request line not ended by CRLF");
  const { method, target, minorVersion } = parseRequestLine(buffer, position, lineEnd - 1);
  position = lineEnd + 1;

  const headers: IncomingHttpHeaders = {};
  let fieldCount = 0;
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  const headLimit = headStart + limits.maxHeadBytes;

  for (;;) {
    const fieldEnd = findLineEnd(buffer, position, Math.min(end, headLimit));
    if (fieldEnd < 0) {
      if (end >= headLimit) throw new HeadError(431, "request header section too large");
      return "incomplete";
    }
    if (fieldEnd === position || buffer[fieldEnd - 1] !== CR) throw new HeadError(400, "header line not ended by CRLF");
    const contentEnd = fieldEnd - 1;
    if (contentEnd === position) {
      position = fieldEnd + 1;
      break;
    }
    // RFC 9112 section 5.2: obs-fold in a request is rejected with 400.
    const first = buffer[position]!;
    if (first === SP || first === HTAB) throw new HeadError(400, "obsolete line folding");
    if (++fieldCount > limits.maxHeaderCount) throw new HeadError(431, "too many header fields");

    let colon = position;
    while (colon < contentEnd && TOKEN[buffer[colon]!] === 1) colon++;
    // RFC 9112 section 5.1: no whitespace between the field name and the colon.
    if (colon === position || colon === contentEnd || buffer[colon] !== 0x3a) {
      throw new HeadError(400, "invalid header field name");
    }
    let valueStart = colon + 1;
    let valueEnd = contentEnd;
    while (valueStart < valueEnd && (buffer[valueStart] === SP || buffer[valueStart] === HTAB)) valueStart++;
    while (valueEnd > valueStart && (buffer[valueEnd - 1] === SP || buffer[valueEnd - 1] === HTAB)) valueEnd--;
    for (let i = valueStart; i < valueEnd; i++) {
      if (FIELD_VALUE[buffer[i]!] !== 1) throw new HeadError(400, "invalid character in a header field value");
    }

    const name = buffer.toString("latin1", position, colon).toLowerCase();
    const value = buffer.toString("latin1", valueStart, valueEnd);
    position = fieldEnd + 1;

    if (name === "content-length") {
      // RFC 9112 section 6.3: a repeated or list-valued Content-Length is a smuggling vector.
      if (contentLength !== undefined) throw new HeadError(400, "repeated Content-Length");
      contentLength = value;
    } else if (name === "transfer-encoding") {
      transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
    }
    addField(headers, name, value);
  }

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

function parseRequestLine(
  buffer: Buffer,
  start: number,
  end: number,
): { method: string; target: string; minorVersion: 0 | 1 } {
  let position = start;
  while (position < end && TOKEN[buffer[position]!] === 1) position++;
  if (position === start || buffer[position] !== SP) throw new HeadError(400, "invalid request method");
  const method = buffer.toString("latin1", start, position);

  const targetStart = ++position;
  while (position < end && TARGET[buffer[position]!] === 1) position++;
  if (position === targetStart || buffer[position] !== SP) throw new HeadError(400, "invalid request-target");
  const target = buffer.toString("latin1", targetStart, position);
  position++;

  // HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 section 2.3), then the line ends.
  if (end - position !== 8 || buffer.toString("latin1", position, position + 5) !== "HTTP/") {
    throw new HeadError(400, "invalid HTTP version");
  }
  const major = buffer[position + 5]!;
  const dot = buffer[position + 6]!;
  const minor = buffer[position + 7]!;
  if (dot !== 0x2e || major < 0x30 || major > 0x39 || minor < 0x30 || minor > 0x39) {
    throw new HeadError(400, "invalid HTTP version");
  }
  if (major !== 0x31 || (minor !== 0x30 && minor !== 0x31)) throw new HeadError(505, "unsupported HTTP version");
  return { method, target, minorVersion: minor === 0x31 ? 1 : 0 };
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
