import { randomUpperAlphanumeric, randomString } from "../common/ids.js";
import { iamErrors } from "./errors.js";

/** IAM allows two access keys per user ("IAM and AWS STS quotas", IAM user guide). */
export const MAX_ACCESS_KEYS_PER_USER = 2;
/** IAM allows 50 tags per user. */
export const MAX_TAGS_PER_USER = 50;

export type AccessKeyStatus = "Active" | "Inactive";

export interface Tag {
  Key: string;
  Value: string;
}

const SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Returns a new unique user id as IAM forms them: `AIDA` and 17 upper-case alphanumerics. */
export function newUserId(): string {
  return "AIDA" + randomUpperAlphanumeric(17);
}

/** Returns a new long-term access key id: `AKIA` and 16 upper-case alphanumerics. */
export function newAccessKeyId(): string {
  return "AKIA" + randomUpperAlphanumeric(16);
}

/** Returns a new 40-character secret access key, the length AWS issues. */
export function newSecretAccessKey(): string {
  return randomString(SECRET_ALPHABET, 40);
}

/** Returns the ARN of a user: `arn:aws:iam::<account>:user<path><name>`, the path starting and ending with `/`. */
export function userArn(accountId: string, path: string, userName: string): string {
  return `arn:aws:iam::${accountId}:user${path}${userName}`;
}

/**
 * Raises ValidationError in the form IAM uses: "1 validation error detected:
 * Value 'x' at 'userName' failed to satisfy constraint: ...".
 */
function constraintFailed(value: string, member: string, constraint: string): never {
  throw iamErrors.validation(
    `1 validation error detected: Value '${value}' at '${member}' failed to satisfy constraint: ${constraint}`,
  );
}

function checkLength(value: string, member: string, min: number, max: number): void {
  if (value.length < min || value.length > max) {
    constraintFailed(value, member, `Member must have length between ${min} and ${max}`);
  }
}

/** User names: 1 to 64 characters of `[\w+=,.@-]` (the userNameType shape of the IAM API reference). */
export function validateUserName(value: string, member = "userName"): void {
  checkLength(value, member, 1, 64);
  if (!/^[\w+=,.@-]+$/.test(value)) {
    constraintFailed(value, member, "Member must satisfy regular expression pattern: [\\w+=,.@-]+");
  }
}

/** Paths: `/` alone, or `/` + printable ASCII + `/`, at most 512 characters (the pathType shape). */
export function validatePath(value: string, member = "path"): void {
  checkLength(value, member, 1, 512);
  if (!/^(\/|\/[\u0021-\u007E]+\/)$/.test(value)) {
    constraintFailed(value, member, "Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)");
  }
}

/** Path prefixes of ListUsers: `/` followed by printable ASCII (the pathPrefixType shape). */
export function validatePathPrefix(value: string, member = "pathPrefix"): void {
  checkLength(value, member, 1, 512);
  if (!/^\/[\u0021-\u007F]*$/.test(value)) {
    constraintFailed(value, member, "Member must satisfy regular expression pattern: \\u002F[\\u0021-\\u007F]*");
  }
}

/** Access key ids: 16 to 128 word characters (the accessKeyIdType shape). */
export function validateAccessKeyId(value: string, member = "accessKeyId"): void {
  checkLength(value, member, 16, 128);
  if (!/^\w+$/.test(value)) {
    constraintFailed(value, member, "Member must satisfy regular expression pattern: [\\w]+");
  }
}

/** UpdateAccessKey takes Active or Inactive (the statusType enum). */
export function parseAccessKeyStatus(value: string, member = "status"): AccessKeyStatus {
  if (value !== "Active" && value !== "Inactive") {
    constraintFailed(value, member, "Member must satisfy enum value set: [Active, Inactive]");
  }
  return value;
}

/** Tag keys: 1 to 128 characters of letters, spaces, digits and `_.:/=+-@`; values up to 256 characters. */
export function validateTags(tags: Tag[]): void {
  if (tags.length > MAX_TAGS_PER_USER) {
    constraintFailed(`${tags.length} tags`, "tags", `Member must have length less than or equal to ${MAX_TAGS_PER_USER}`);
  }
  const seen = new Set<string>();
  for (const [index, tag] of tags.entries()) {
    checkLength(tag.Key, `tags.${index + 1}.member.key`, 1, 128);
    if (!/^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$/u.test(tag.Key)) {
      constraintFailed(tag.Key, `tags.${index + 1}.member.key`, "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+");
    }
    checkLength(tag.Value, `tags.${index + 1}.member.value`, 0, 256);
    const folded = tag.Key.toLowerCase();
    if (seen.has(folded)) throw iamErrors.validation(`Duplicate tag keys found: ${tag.Key}. Tag keys are case insensitive.`);
    seen.add(folded);
  }
}
