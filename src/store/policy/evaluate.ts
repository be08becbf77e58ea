import type { Principal } from "../../api/auth/principal.js";
import { evaluateCondition, type ConditionContext } from "./conditions.js";
import type { BucketPolicy, PolicyStatement, PrincipalSpec } from "./document.js";
import { matchesWildcard } from "./wildcard.js";

/** One request as the policy sees it. */
export interface PolicyRequest {
  /** An IAM action such as `s3:GetObject`. */
  action: string;
  /** `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`. */
  resource: string;
  principal: Principal;
  context: ConditionContext;
}

export type PolicyDecision =
  | { effect: "allow"; statement: string }
  | { effect: "deny"; statement: string }
  | { effect: "implicit-deny" };

/**
 * Evaluates a bucket policy: an explicit Deny in any matching statement wins,
 * else a matching Allow allows, else the request is implicitly denied ("Policy
 * evaluation logic", AWS IAM user guide).
 */
export function evaluatePolicy(policy: BucketPolicy | undefined, request: PolicyRequest): PolicyDecision {
  if (!policy) return { effect: "implicit-deny" };
  let allowedBy: string | undefined;
  for (const statement of policy.statements) {
    if (!statementApplies(statement, request)) continue;
    if (statement.effect === "Deny") return { effect: "deny", statement: statement.label };
    allowedBy ??= statement.label;
  }
  return allowedBy === undefined ? { effect: "implicit-deny" } : { effect: "allow", statement: allowedBy };
}

function statementApplies(statement: PolicyStatement, request: PolicyRequest): boolean {
  const principalMatches = principalMatchesSpec(statement.principal.spec, request.principal, statement.effect);
  if (principalMatches === statement.principal.negated) return false;

  const actionMatches = statement.action.patterns.some((pattern) => matchesWildcard(pattern, request.action, true));
  if (actionMatches === statement.action.negated) return false;

  const resourceMatches = statement.resource.patterns.some((pattern) => matchesWildcard(pattern, request.resource));
  if (resourceMatches === statement.resource.negated) return false;

  return statement.conditions.every((clause) => evaluateCondition(clause, request.context));
}

/**
 * Matches a request's principal against a Principal element. An account
 * principal (the 12-digit id or `arn:aws:iam::<account>:root`) stands for the
 * root and, in a Deny, for every identity of the account. In an Allow it only
 * delegates to the account, so an IAM user would also need an identity-based
 * policy ("AWS account principals", IAM user guide); Portico has none, so an
 * Allow reaches a user only through its own ARN or `*`.
 */
function principalMatchesSpec(spec: PrincipalSpec, principal: Principal, effect: "Allow" | "Deny"): boolean {
  if (spec === "*") return true;
  if (spec.AWS.includes("*")) return true;
  switch (principal.type) {
    case "anonymous":
      return false;
    case "service":
      return spec.Service.includes(principal.service);
    case "root":
      return spec.AWS.some((entry) => isAccountPrincipal(entry, principal.accountId));
    case "user":
      return spec.AWS.some(
        (entry) => entry === principal.arn || (effect === "Deny" && isAccountPrincipal(entry, principal.accountId)),
      );
  }
}

function isAccountPrincipal(entry: string, accountId: string): boolean {
  return entry === accountId || entry === `arn:aws:iam::${accountId}:root`;
}

/**
 * Returns why no Allow statement applies to a request, for logs and for the
 * edge: the Allow statement that came closest, and the first of its elements
 * that failed (principal, then action, resource and condition), or that the
 * bucket has no policy or no Allow statement at all.
 */
export function explainImplicitDeny(policy: BucketPolicy | undefined, request: PolicyRequest): string {
  if (!policy) return "the bucket has no policy";
  let closest: { stage: number; reason: string } | undefined;
  for (const statement of policy.statements) {
    if (statement.effect !== "Allow") continue;
    const failure = firstFailure(statement, request);
    if (failure !== undefined && (closest === undefined || failure.stage > closest.stage)) closest = failure;
  }
  return closest?.reason ?? "the bucket policy has no Allow statement";
}

function firstFailure(statement: PolicyStatement, request: PolicyRequest): { stage: number; reason: string } | undefined {
  const label = statement.label;
  const principalMatches = principalMatchesSpec(statement.principal.spec, request.principal, statement.effect);
  if (principalMatches === statement.principal.negated) {
    return { stage: 0, reason: `statement ${label} does not name the principal ${principalName(request.principal)}` };
  }
  const actionMatches = statement.action.patterns.some((pattern) => matchesWildcard(pattern, request.action, true));
  if (actionMatches === statement.action.negated) {
    return { stage: 1, reason: `statement ${label} does not cover the action ${request.action}` };
  }
  const resourceMatches = statement.resource.patterns.some((pattern) => matchesWildcard(pattern, request.resource));
  if (resourceMatches === statement.resource.negated) {
    return { stage: 2, reason: `statement ${label} does not cover the resource ${request.resource}` };
  }
  const failed = statement.conditions.find((clause) => !evaluateCondition(clause, request.context));
  if (failed === undefined) return undefined;
  const values = request.context.get(failed.key);
  const has = values === undefined || values.length === 0 ? "has no value" : `has ${values.join(", ")}`;
  return {
    stage: 3,
    reason: `statement ${label} has a ${failed.operator.name} condition on ${failed.keyName} that the request does not meet (the request ${has})`,
  };
}

function principalName(principal: Principal): string {
  switch (principal.type) {
    case "anonymous":
      return "anonymous";
    case "service":
      return `service ${principal.service}`;
    case "root":
    case "user":
      return principal.arn;
  }
}
