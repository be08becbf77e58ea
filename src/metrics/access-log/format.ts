import type { RequestRecord } from "../types.js";

/**
 * CloudFront's standard log file format (Developer Guide, "Standard log file
 * format"): W3C extended log format, two header lines, then one
 * tab-separated line of 33 fields per viewer request, `-` for an empty field.
 */
export const LOG_FIELDS = [
  "date",
  "time",
  "x-edge-location",
  "sc-bytes",
  "c-ip",
  "cs-method",
  "cs(Host)",
  "cs-uri-stem",
  "sc-status",
  "cs(Referer)",
  "cs(User-Agent)",
  "cs-uri-query",
  "cs(Cookie)",
  "x-edge-result-type",
  "x-edge-request-id",
  "x-host-header",
  "cs-protocol",
  "cs-bytes",
  "time-taken",
  "x-forwarded-for",
  "ssl-protocol",
  "ssl-cipher",
  "x-edge-response-result-type",
  "cs-protocol-version",
  "fle-status",
  "fle-encrypted-fields",
  "c-port",
  "time-to-first-byte",
  "x-edge-detailed-result-type",
  "sc-content-type",
  "sc-content-len",
  "sc-range-start",
  "sc-range-end",
] as const;

export const LOG_FILE_HEADER = `#Version: 1.0\n#Fields: ${LOG_FIELDS.join(" ")}\n`;

/** Per-distribution settings for formatting log lines. */
export interface LogLineOptions {
  /** The distribution's domain name, for `cs(Host)`. */
  domainName: string;
  /** Logging.IncludeCookies: without it, `cs(Cookie)` is `-`. */
  includeCookies: boolean;
}

/**
 * Characters that CloudFront writes URL-encoded in field values: codes 0 to
 * 32 and 127 and above, and `< > " # % { } | \ ^ ~ [ ] \` '`.
 */
const NEEDS_ENCODING = /[\x00-\x20\x7f-\uffff<>"#%{}|\\^~[\]`']/;
const ENCODED_CHARACTERS = /[\x00-\x20\x7f<>"#%{}|\\^~[\]`']|[\x80-\uffff]+/g;

/**
 * Encodes a field value the way CloudFront does, byte by byte. Request lines
 * and header values arrive as latin1 strings, one character per received
 * byte, so characters up to 255 are encoded as that byte. Characters above,
 * which no HTTP parser produces, are encoded as their UTF-8 bytes. A value that is
 * already percent-encoded (a path or query as received) is passed with
 * `keepPercent`, so that `%2F` stays `%2F` rather than becoming `%252F`.
 */
export function encodeLogField(value: string | undefined, keepPercent = false): string {
  if (value === undefined || value === "") return "-";
  if (!NEEDS_ENCODING.test(value)) return value;
  return value.replace(ENCODED_CHARACTERS, (match) => {
    if (keepPercent && match === "%") return "%";
    if (match.length === 1 && match.charCodeAt(0) < 0x80) {
      return "%" + match.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0");
    }
    let out = "";
    for (const character of match) {
      const code = character.codePointAt(0)!;
      const bytes = code <= 0xff ? [code] : Buffer.from(character, "utf8");
      for (const byte of bytes) out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
    }
    return out;
  });
}

function twoDigits(value: number): string {
  return value < 10 ? `0${value}` : String(value);
}

/** Formats seconds with three decimals, as `time-taken` is written. */
function seconds(ms: number): string {
  return ms >= 0 && Number.isFinite(ms) ? (ms / 1000).toFixed(3) : "-";
}

function integerOrDash(value: number | undefined): string {
  return value === undefined ? "-" : String(value);
}

/** Formats one record as a log line, ending with a line feed. */
export function formatLogLine(record: RequestRecord, options: LogLineOptions): string {
  const at = new Date(record.timestampMs);
  const date = `${at.getUTCFullYear()}-${twoDigits(at.getUTCMonth() + 1)}-${twoDigits(at.getUTCDate())}`;
  const time = `${twoDigits(at.getUTCHours())}:${twoDigits(at.getUTCMinutes())}:${twoDigits(at.getUTCSeconds())}`;
  // CloudFront writes 000 when the viewer closed the connection before a response.
  const status = record.status === 0 ? "000" : String(record.status);
  const fields = [
    date,
    time,
    encodeLogField(record.edgeId),
    String(record.bytesDownloaded),
    encodeLogField(record.clientIp),
    encodeLogField(record.method),
    encodeLogField(options.domainName),
    encodeLogField(record.path === "" ? "/" : record.path, true),
    status,
    encodeLogField(record.referer),
    encodeLogField(record.userAgent),
    encodeLogField(record.query, true),
    options.includeCookies ? encodeLogField(record.cookie) : "-",
    record.resultType,
    encodeLogField(record.requestId),
    encodeLogField(record.host),
    record.protocol,
    // cs-bytes counts the request head too; a record without it counts the body alone.
    String(record.requestBytes ?? record.bytesUploaded),
    seconds(record.durationMs),
    encodeLogField(Array.isArray(record.forwardedFor) ? record.forwardedFor.join(",") : record.forwardedFor),
    encodeLogField(record.tlsProtocol),
    encodeLogField(record.tlsCipher),
    record.resultType,
    record.httpVersion.startsWith("HTTP/") ? record.httpVersion : `HTTP/${record.httpVersion}`,
    // Field-level encryption is not built, so fle-status and fle-encrypted-fields stay empty.
    "-",
    "-",
    integerOrDash(record.clientPort),
    record.timeToFirstByteMs === undefined ? "-" : seconds(record.timeToFirstByteMs),
    record.resultType,
    encodeLogField(record.contentType),
    integerOrDash(record.contentLength),
    integerOrDash(record.rangeStart),
    integerOrDash(record.rangeEnd),
  ];
  return fields.join("\t") + "\n";
}

/** Formats the UTC hour of a log file name: `YYYY-MM-DD-HH`. */
export function logFileHour(timestampMs: number): string {
  const at = new Date(timestampMs);
  return (
    `${at.getUTCFullYear()}-${twoDigits(at.getUTCMonth() + 1)}-${twoDigits(at.getUTCDate())}` +
    `-${twoDigits(at.getUTCHours())}`
  );
}

/**
 * Builds a log file's object key as CloudFront names it:
 * `<prefix><distribution ID>.YYYY-MM-DD-HH.<unique ID>.gz`. The prefix is
 * prepended as given, so `logs/` makes a folder, as in the CloudFront API
 * Reference's LoggingConfig.Prefix example (`myprefix/`).
 */
export function logFileKey(prefix: string, distributionId: string, hourMs: number, uniqueId: string): string {
  return `${prefix}${distributionId}.${logFileHour(hourMs)}.${uniqueId}.gz`;
}
