import { TOKEN } from "./http1/parser.js";

/**
 * Recognises a plain HTTP/1.x request sent to the TLS port, so that the edge
 * responds with 400 instead of closing the connection without a response.
 * nginx does the same, with a page titled "The plain HTTP request was sent
 * to HTTPS port".
 */

/** The outcome of scanning the first bytes of a connection that are not a ClientHello. */
export type PlainRequestScan =
  /** More bytes are needed to decide. */
  | "incomplete"
  /** A method token and a space, then the end of the head or as many bytes as a head may have. */
  | "head"
  /** Anything else, which gets no response. */
  | "other";

/** Maximum length of the method token that starts a plain request. A longer token is not taken for HTTP. */
const MAX_METHOD_BYTES = 64;
const SP = 0x20;
const HEAD_END = Buffer.from("\r\n\r\n", "latin1");
const BARE_LF_HEAD_END = Buffer.from("\n\n", "latin1");

const BODY = "Bad Request: a plain HTTP request was sent to the HTTPS port\n";

/** The response to a plain HTTP request on the TLS port. */
export const PLAIN_HTTP_RESPONSE =
  "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n" +
  `content-length: ${Buffer.byteLength(BODY)}\r\nconnection: close\r\n\r\n${BODY}`;

/**
 * Scans the first bytes of a connection for the start of an HTTP/1.x request:
 * a method token (RFC 9110 section 9.1) followed by a space. Returns "head"
 * once the head has ended or `maxHeadBytes` have arrived, so the caller waits
 * for no more than a head. `scannedBytes`, the length of the previous scan's
 * data, lets the search for the end of the head skip what it already searched.
 */
export function scanPlainRequest(data: Buffer, maxHeadBytes: number, scannedBytes = 0): PlainRequestScan {
  const limit = Math.min(data.length, MAX_METHOD_BYTES + 1);
  let position = 0;
  while (position < limit && TOKEN[data[position]!] === 1) position++;
  if (position === limit) return data.length > MAX_METHOD_BYTES ? "other" : "incomplete";
  if (position === 0 || data[position] !== SP) return "other";

  // An end that straddles the previous data starts at most 3 bytes before its end.
  const searchFrom = Math.max(0, scannedBytes - HEAD_END.length + 1);
  const headEnded = data.includes(HEAD_END, searchFrom) || data.includes(BARE_LF_HEAD_END, searchFrom);
  return headEnded || data.length >= maxHeadBytes ? "head" : "incomplete";
}
