import { controlErrors } from "./errors.js";

/**
 * Visible ASCII, with spaces and tabs inside: the field values that every
 * HTTP/1.1 and HTTP/2 peer accepts (RFC 9110 section 5.5, RFC 9113 section
 * 8.2.1). CR and LF would end the field on HTTP/1.1 and let a value add
 * fields of its own, and a value with a space at either end is malformed on
 * HTTP/2.
 */
const FIELD_VALUE = /^(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?$/;

/** Throws InvalidArgument unless `value` can be sent as an HTTP field value as it is. */
export function checkHeaderValue(value: string | undefined, where: string): void {
  if (value === undefined || FIELD_VALUE.test(value)) return;
  throw controlErrors.invalidArgument(
    `${where} '${value}' is not a valid header value: use visible ASCII characters, with spaces or tabs only between them.`,
  );
}
