import { ApiError } from "../../api/errors.js";
import { matchesWildcard } from "./wildcard.js";
import { parseConditionOperator, validateConditionValue, type ConditionClause } from "./conditions.js";

/** Bucket policies are limited to 20 KB ("Bucket policy examples", Amazon S3 user guide). */
export const MAX_POLICY_BYTES = 20 * 1024;

/** A principal element: everyone, or lists of principals by kind. */
export type PrincipalSpec = "*" | { AWS: string[]; Service: string[]; CanonicalUser: string[]; Federated: string[] };

export interface PolicyStatement {
  /** The Sid, or `Statement[<index>]` when the statement has none, for logs. */
  label: string;
  effect: "Allow" | "Deny";
  principal: { spec: PrincipalSpec; negated: boolean };
  action: { patterns: string[]; negated: boolean };
  resource: { patterns: string[]; negated: boolean };
  conditions: ConditionClause[];
}

export interface BucketPolicy {
  statements: PolicyStatement[];
}

const STATEMENT_FIELDS = new Set([
  "Sid",
  "Effect",
  "Principal",
  "NotPrincipal",
  "Action",
  "NotAction",
  "Resource",
  "NotResource",
  "Condition",
]);

function malformed(message: string): ApiError {
  return new ApiError("MalformedPolicy", 400, message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringList(value: unknown, element: string): string[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) throw malformed(`${element} must not be empty`);
  for (const item of list) {
    if (typeof item !== "string" || item === "") throw malformed(`${element} must be a string or an array of strings`);
  }
  return list as string[];
}

/**
 * Parses and validates a bucket policy for `bucket`, raising MalformedPolicy
 * with a message naming the element at fault, as S3 does.
 */
export function parseBucketPolicy(text: string, bucket: string): BucketPolicy {
  if (Buffer.byteLength(text, "utf8") > MAX_POLICY_BYTES) {
    throw new ApiError("PolicyTooLarge", 400, `Policies must be less than ${MAX_POLICY_BYTES / 1024} KB`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw malformed(`Policies must be valid JSON: ${(error as Error).message}`);
  }
  if (!isRecord(document)) throw malformed("Policies must be a JSON object");
  for (const field of Object.keys(document)) {
    if (field !== "Version" && field !== "Id" && field !== "Statement") throw malformed(`Unknown field ${field}`);
  }
  if (document.Version !== undefined && document.Version !== "2012-10-17" && document.Version !== "2008-10-17") {
    throw malformed("The policy must contain a valid version string");
  }
  if (document.Statement === undefined) throw malformed("Missing required field Statement");
  const rawStatements = Array.isArray(document.Statement) ? document.Statement : [document.Statement];
  if (rawStatements.length === 0) throw malformed("Missing required field Statement");
  return { statements: rawStatements.map((raw, index) => parseStatement(raw, index, bucket)) };
}

function parseStatement(raw: unknown, index: number, bucket: string): PolicyStatement {
  if (!isRecord(raw)) throw malformed(`Statement[${index}] must be a JSON object`);
  for (const field of Object.keys(raw)) {
    if (!STATEMENT_FIELDS.has(field)) throw malformed(`Unknown field ${field} in Statement[${index}]`);
  }
  if (raw.Sid !== undefined && typeof raw.Sid !== "string") throw malformed("Statement Sid must be a string");
  const label = typeof raw.Sid === "string" && raw.Sid !== "" ? raw.Sid : `Statement[${index}]`;

  if (raw.Effect !== "Allow" && raw.Effect !== "Deny") {
    throw malformed(`Invalid effect in ${label}: ${JSON.stringify(raw.Effect ?? null)}; use Allow or Deny`);
  }

  const principal = pickOne(raw, "Principal", "NotPrincipal", label);
  const action = pickOne(raw, "Action", "NotAction", label);
  const resource = pickOne(raw, "Resource", "NotResource", label);

  const actionPatterns = stringList(action.value, action.name);
  for (const pattern of actionPatterns) {
    if (pattern !== "*" && !/^s3:[A-Za-z0-9*?]+$/i.test(pattern)) throw malformed("Policy has invalid action");
  }

  const resourcePatterns = stringList(resource.value, resource.name);
  for (const pattern of resourcePatterns) {
    if (!isResourceOfBucket(pattern, bucket)) throw malformed("Policy has invalid resource");
  }

  return {
    label,
    effect: raw.Effect,
    principal: { spec: parsePrincipal(principal.value), negated: principal.name === "NotPrincipal" },
    action: { patterns: actionPatterns, negated: action.name === "NotAction" },
    resource: { patterns: resourcePatterns, negated: resource.name === "NotResource" },
    conditions: parseConditions(raw.Condition, label),
  };
}

function pickOne(
  raw: Record<string, unknown>,
  positive: string,
  negative: string,
  label: string,
): { name: string; value: unknown } {
  const hasPositive = raw[positive] !== undefined;
  const hasNegative = raw[negative] !== undefined;
  if (hasPositive && hasNegative) throw malformed(`${label} must not have both ${positive} and ${negative}`);
  if (!hasPositive && !hasNegative) throw malformed(`Missing required field ${positive} in ${label}`);
  return hasPositive ? { name: positive, value: raw[positive] } : { name: negative, value: raw[negative] };
}

/** A resource of a bucket policy must name the bucket itself or objects in it. */
function isResourceOfBucket(pattern: string, bucket: string): boolean {
  if (pattern === "*") return true;
  const prefix = "arn:aws:s3:::";
  if (!pattern.startsWith(prefix)) return false;
  const rest = pattern.slice(prefix.length);
  const slash = rest.indexOf("/");
  const bucketPattern = slash < 0 ? rest : rest.slice(0, slash);
  return matchesWildcard(bucketPattern, bucket) || (slash < 0 && matchesWildcard(rest, `${bucket}/`));
}

const ACCOUNT_PRINCIPAL = /^(\d{12}|arn:aws:iam::\d{12}:(root|user\/.+|role\/.+))$/;

function parsePrincipal(value: unknown): PrincipalSpec {
  if (value === "*") return "*";
  if (!isRecord(value)) throw malformed("Invalid principal in policy");
  const spec = { AWS: [] as string[], Service: [] as string[], CanonicalUser: [] as string[], Federated: [] as string[] };
  for (const [kind, entries] of Object.entries(value)) {
    if (kind !== "AWS" && kind !== "Service" && kind !== "CanonicalUser" && kind !== "Federated") {
      throw malformed("Invalid principal in policy");
    }
    const list = stringList(entries, "Principal");
    if (kind === "AWS") {
      for (const entry of list) {
        if (entry !== "*" && !ACCOUNT_PRINCIPAL.test(entry)) throw malformed("Invalid principal in policy");
      }
    }
    spec[kind] = list;
  }
  if (spec.AWS.length + spec.Service.length + spec.CanonicalUser.length + spec.Federated.length === 0) {
    throw malformed("Invalid principal in policy");
  }
  return spec;
}

function parseConditions(raw: unknown, label: string): ConditionClause[] {
  if (raw === undefined) return [];
  if (!isRecord(raw)) throw malformed(`Condition in ${label} must be a JSON object`);
  const clauses: ConditionClause[] = [];
  for (const [operatorName, block] of Object.entries(raw)) {
    const operator = parseConditionOperator(operatorName);
    if (!operator) throw malformed(`Invalid Condition type : ${operatorName}`);
    if (!isRecord(block)) throw malformed(`Condition ${operatorName} in ${label} must map condition keys to values`);
    for (const [key, rawValues] of Object.entries(block)) {
      const list = Array.isArray(rawValues) ? rawValues : [rawValues];
      const values: string[] = [];
      for (const item of list) {
        if (typeof item !== "string" && typeof item !== "number" && typeof item !== "boolean") {
          throw malformed(`Condition ${operatorName} key ${key} in ${label} must have string, number or boolean values`);
        }
        const value = String(item);
        const problem = validateConditionValue(operator.base, value);
        if (problem) throw malformed(`Invalid value for ${operatorName} key ${key} in ${label}: ${problem}`);
        values.push(value);
      }
      clauses.push({ operator, key: key.toLowerCase(), keyName: key, values });
    }
  }
  return clauses;
}
