import { BlockList, isIP } from "node:net";
import { matchesArn, matchesWildcard } from "./wildcard.js";

/** Condition operators of the IAM policy language, without qualifiers. */
const BASE_OPERATORS = [
  "StringEquals",
  "StringNotEquals",
  "StringEqualsIgnoreCase",
  "StringNotEqualsIgnoreCase",
  "StringLike",
  "StringNotLike",
  "NumericEquals",
  "NumericNotEquals",
  "NumericLessThan",
  "NumericLessThanEquals",
  "NumericGreaterThan",
  "NumericGreaterThanEquals",
  "DateEquals",
  "DateNotEquals",
  "DateLessThan",
  "DateLessThanEquals",
  "DateGreaterThan",
  "DateGreaterThanEquals",
  "Bool",
  "BinaryEquals",
  "IpAddress",
  "NotIpAddress",
  "ArnEquals",
  "ArnLike",
  "ArnNotEquals",
  "ArnNotLike",
  "Null",
] as const;
type BaseOperator = (typeof BASE_OPERATORS)[number];

/**
 * Negated operators hold when no policy value matches ("IAM JSON policy
 * elements: Condition operators"), so they also hold when the key is absent.
 */
const NEGATED: Partial<Record<BaseOperator, BaseOperator>> = {
  StringNotEquals: "StringEquals",
  StringNotEqualsIgnoreCase: "StringEqualsIgnoreCase",
  StringNotLike: "StringLike",
  NumericNotEquals: "NumericEquals",
  DateNotEquals: "DateEquals",
  NotIpAddress: "IpAddress",
  ArnNotEquals: "ArnEquals",
  ArnNotLike: "ArnLike",
};

export interface ConditionOperator {
  name: string;
  base: BaseOperator;
  ifExists: boolean;
  set: "ForAnyValue" | "ForAllValues" | undefined;
}

export interface ConditionClause {
  operator: ConditionOperator;
  /** The condition key in lower case, because condition keys are case-insensitive. */
  key: string;
  /** The condition key as written, for messages. */
  keyName: string;
  values: string[];
}

/** Condition keys and their values for one request; keys in lower case, absent keys missing. */
export type ConditionContext = Map<string, string[]>;

export function parseConditionOperator(name: string): ConditionOperator | undefined {
  let rest = name;
  let set: ConditionOperator["set"];
  if (rest.startsWith("ForAnyValue:")) {
    set = "ForAnyValue";
    rest = rest.slice("ForAnyValue:".length);
  } else if (rest.startsWith("ForAllValues:")) {
    set = "ForAllValues";
    rest = rest.slice("ForAllValues:".length);
  }
  let ifExists = false;
  if (rest.endsWith("IfExists") && rest !== "IfExists") {
    ifExists = true;
    rest = rest.slice(0, -"IfExists".length);
  }
  const base = BASE_OPERATORS.find((operator) => operator === rest);
  if (base === undefined) return undefined;
  if (base === "Null" && (ifExists || set !== undefined)) return undefined;
  return { name, base, ifExists, set };
}

/** Returns why a policy value cannot be used with an operator, or undefined when it can. */
export function validateConditionValue(base: BaseOperator, value: string): string | undefined {
  const positive = NEGATED[base] ?? base;
  if (positive.startsWith("Numeric") && !Number.isFinite(Number(value))) return `${value} is not a number`;
  if (positive.startsWith("Date") && parseDateMs(value) === undefined) return `${value} is not a date`;
  if (positive === "IpAddress" && parseCidr(value) === undefined) return `${value} is not an IP address or CIDR block`;
  if ((positive === "Bool" || positive === "Null") && !/^(true|false)$/i.test(value)) return `${value} is not true or false`;
  return undefined;
}

function parseDateMs(value: string): number | undefined {
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

function parseCidr(value: string): { address: string; prefix: number; family: "ipv4" | "ipv6" } | undefined {
  const [address = "", prefixText] = value.split("/");
  const version = isIP(address);
  if (version === 0) return undefined;
  const family = version === 4 ? "ipv4" : "ipv6";
  const maxPrefix = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? maxPrefix : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > maxPrefix) return undefined;
  return { address, prefix, family };
}

function ipInBlock(requestValue: string, policyValue: string): boolean {
  const block = parseCidr(policyValue);
  const address = requestValue.startsWith("::ffff:") && isIP(requestValue.slice(7)) === 4 ? requestValue.slice(7) : requestValue;
  const version = isIP(address);
  if (!block || version === 0) return false;
  const list = new BlockList();
  list.addSubnet(block.address, block.prefix, block.family);
  return list.check(address, version === 4 ? "ipv4" : "ipv6");
}

function compareNumbers(requestValue: string, policyValue: string): number | undefined {
  const a = Number(requestValue);
  const b = Number(policyValue);
  if (requestValue.trim() === "" || !Number.isFinite(a) || !Number.isFinite(b)) return undefined;
  return a - b;
}

function compareDates(requestValue: string, policyValue: string): number | undefined {
  const a = parseDateMs(requestValue);
  const b = parseDateMs(policyValue);
  if (a === undefined || b === undefined) return undefined;
  return a - b;
}

/** Returns whether one request value matches one policy value under a positive operator. */
function matchesValue(base: BaseOperator, requestValue: string, policyValue: string): boolean {
  switch (base) {
    case "StringEquals":
      return requestValue === policyValue;
    case "StringEqualsIgnoreCase":
      return requestValue.toLowerCase() === policyValue.toLowerCase();
    case "StringLike":
      return matchesWildcard(policyValue, requestValue);
    case "ArnEquals":
    case "ArnLike":
      return matchesArn(policyValue, requestValue);
    case "Bool":
      return requestValue.toLowerCase() === policyValue.toLowerCase();
    case "BinaryEquals":
      return requestValue === policyValue;
    case "IpAddress":
      return ipInBlock(requestValue, policyValue);
    default:
      break;
  }
  const ordered = base.startsWith("Numeric") ? compareNumbers(requestValue, policyValue) : compareDates(requestValue, policyValue);
  if (ordered === undefined) return false;
  if (base.endsWith("LessThanEquals")) return ordered <= 0;
  if (base.endsWith("LessThan")) return ordered < 0;
  if (base.endsWith("GreaterThanEquals")) return ordered >= 0;
  if (base.endsWith("GreaterThan")) return ordered > 0;
  return ordered === 0;
}

/** Evaluates one condition clause against the request's condition keys. */
export function evaluateCondition(clause: ConditionClause, context: ConditionContext): boolean {
  const requestValues = context.get(clause.key) ?? [];
  const { base, ifExists, set } = clause.operator;

  if (base === "Null") {
    const wantsAbsent = clause.values.some((value) => value.toLowerCase() === "true");
    return wantsAbsent === (requestValues.length === 0);
  }

  const positive = NEGATED[base];
  const isNegated = positive !== undefined;
  const positiveBase = positive ?? base;
  const anyPolicyValue = (requestValue: string): boolean =>
    clause.values.some((policyValue) => matchesValue(positiveBase, requestValue, policyValue));

  if (requestValues.length === 0) {
    // ForAllValues holds on an empty set; other forms need the key unless IfExists or negated.
    if (set === "ForAllValues") return true;
    if (set === "ForAnyValue") return ifExists;
    return ifExists || isNegated;
  }

  if (set === "ForAllValues") {
    return requestValues.every((value) => (isNegated ? !anyPolicyValue(value) : anyPolicyValue(value)));
  }
  if (set === "ForAnyValue") {
    return requestValues.some((value) => (isNegated ? !anyPolicyValue(value) : anyPolicyValue(value)));
  }
  const matched = requestValues.some(anyPolicyValue);
  return isNegated ? !matched : matched;
}
