import { ApiError } from "../api/errors.js";
import { storeErrors } from "./errors.js";

/** S3 limits a key to 1024 bytes of UTF-8. */
export const MAX_KEY_BYTES = 1024;

/**
 * Checks a bucket name against the S3 general purpose bucket naming rules
 * ("Bucket naming rules", Amazon S3 user guide) and raises InvalidBucketName.
 */
export function validateBucketName(name: string): void {
  const fail = (reason: string): never => {
    throw storeErrors.invalidBucketName(name, reason);
  };
  if (name.length < 3 || name.length > 63) fail("a bucket name must be 3 to 63 characters long");
  if (!/^[a-z0-9.-]+$/.test(name)) fail("only lower-case letters, digits, dots and hyphens are allowed");
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) fail("a bucket name must begin and end with a letter or digit");
  if (name.includes("..")) fail("a bucket name must not contain two adjacent periods");
  if (/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)) fail("a bucket name must not be formatted as an IP address");
  if (name.startsWith("xn--") || name.startsWith("sthree-") || name.startsWith("amzn-s3-demo-")) {
    fail("the prefix is reserved");
  }
  if (name.endsWith("-s3alias") || name.endsWith("--ol-s3") || name.endsWith(".mrap") || name.endsWith("--x-s3")) {
    fail("the suffix is reserved");
  }
}

/** Checks an object key: at most 1024 UTF-8 bytes, not empty, no NUL character. */
export function validateObjectKey(key: string): void {
  if (key.length === 0) {
    throw new ApiError("InvalidArgument", 400, "An object key must not be empty.");
  }
  if (Buffer.byteLength(key, "utf8") > MAX_KEY_BYTES) {
    throw new ApiError("KeyTooLongError", 400, "Your key is too long", {
      details: { MaxSizeAllowed: String(MAX_KEY_BYTES), Size: String(Buffer.byteLength(key, "utf8")) },
    });
  }
  if (key.includes("\0")) {
    throw new ApiError("InvalidArgument", 400, "An object key must not contain the NUL character (U+0000).", {
      details: { ArgumentName: "key" },
    });
  }
  // A lone surrogate cannot be stored as UTF-8 and would read back as U+FFFD.
  if (/[\uD800-\uDFFF]/u.test(key)) {
    throw new ApiError("InvalidURI", 400, "Couldn't parse the specified URI: the key is not valid UTF-8.");
  }
}
