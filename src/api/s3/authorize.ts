import type { ApiRequest } from "../context.js";
import { ApiError } from "../errors.js";
import type { BucketRecord } from "../../store/metadata.js";
import type { ConditionContext } from "../../store/policy/conditions.js";
import { parseBucketPolicy, type BucketPolicy } from "../../store/policy/document.js";
import { evaluatePolicy, explainImplicitDeny } from "../../store/policy/evaluate.js";
import type { S3Operation } from "./router.js";

/** The IAM action that each operation is authorized as ("Actions, resources, and condition keys for Amazon S3"). */
export const IAM_ACTIONS: Record<S3Operation, string> = {
  ListBuckets: "s3:ListAllMyBuckets",
  CreateBucket: "s3:CreateBucket",
  HeadBucket: "s3:ListBucket",
  DeleteBucket: "s3:DeleteBucket",
  GetBucketLocation: "s3:GetBucketLocation",
  GetBucketPolicy: "s3:GetBucketPolicy",
  PutBucketPolicy: "s3:PutBucketPolicy",
  DeleteBucketPolicy: "s3:DeleteBucketPolicy",
  ListObjects: "s3:ListBucket",
  ListObjectsV2: "s3:ListBucket",
  ListMultipartUploads: "s3:ListBucketMultipartUploads",
  DeleteObjects: "s3:DeleteObject",
  PutObject: "s3:PutObject",
  CopyObject: "s3:PutObject",
  GetObject: "s3:GetObject",
  HeadObject: "s3:GetObject",
  DeleteObject: "s3:DeleteObject",
  CreateMultipartUpload: "s3:PutObject",
  UploadPart: "s3:PutObject",
  CompleteMultipartUpload: "s3:PutObject",
  AbortMultipartUpload: "s3:AbortMultipartUpload",
  ListParts: "s3:ListMultipartUploadParts",
};

/**
 * The registry of bucket owners among IAM users. Buckets that the root
 * created have no entry and belong to the account root.
 */
export interface BucketOwnership {
  /** Returns the owning user's unique id (`AIDA...`), or undefined when the account root owns the bucket. */
  ownerOf(bucket: BucketRecord): string | undefined;
  /** Records that a user created `bucket` and so owns it. */
  recordOwner(bucket: BucketRecord, userId: string): void;
}

/** Operations on the policy itself, which the bucket owner may always run so that a bad policy cannot lock it out. */
const POLICY_OPERATIONS = new Set<string>(["s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"]);

const parsedPolicies = new Map<string, BucketPolicy>();
const MAX_CACHED_POLICIES = 256;

/** Returns the parsed policy of a bucket, parsing each distinct document once. */
export function bucketPolicyOf(bucket: BucketRecord): BucketPolicy | undefined {
  if (bucket.policyJson === undefined) return undefined;
  const cacheKey = `${bucket.name}\0${bucket.policyJson}`;
  let policy = parsedPolicies.get(cacheKey);
  if (!policy) {
    policy = parseBucketPolicy(bucket.policyJson, bucket.name);
    if (parsedPolicies.size >= MAX_CACHED_POLICIES) parsedPolicies.clear();
    parsedPolicies.set(cacheKey, policy);
  }
  return policy;
}

function headerText(request: ApiRequest, name: string): string | undefined {
  const value = request.raw.headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}

/** Builds the condition keys of a request, in lower case as policies match them case-insensitively. */
export function conditionContext(request: ApiRequest, nowMs: number): ConditionContext {
  const context: ConditionContext = new Map();
  const set = (key: string, value: string | undefined): void => {
    if (value !== undefined) context.set(key, [value]);
  };
  const sourceIp = request.sourceIp.startsWith("::ffff:") ? request.sourceIp.slice(7) : request.sourceIp;
  set("aws:sourceip", sourceIp === "" ? undefined : sourceIp);
  set("aws:securetransport", String(request.secure));
  set("aws:referer", headerText(request, "referer"));
  set("aws:useragent", headerText(request, "user-agent"));
  set("aws:currenttime", new Date(nowMs).toISOString());
  set("aws:epochtime", String(Math.floor(nowMs / 1000)));

  const principal = request.principal;
  switch (principal.type) {
    case "anonymous":
      set("aws:principaltype", "Anonymous");
      break;
    case "root":
      set("aws:principaltype", "Account");
      set("aws:principalaccount", principal.accountId);
      set("aws:principalarn", principal.arn);
      set("aws:userid", principal.accountId);
      break;
    case "user":
      set("aws:principaltype", "User");
      set("aws:principalaccount", principal.accountId);
      set("aws:principalarn", principal.arn);
      set("aws:username", principal.userName);
      set("aws:userid", principal.userId);
      break;
    case "service":
      set("aws:principalservicename", principal.service);
      set("aws:sourcearn", principal.sourceArn);
      // arn:aws:cloudfront::<account>:distribution/<id>: the account is the fifth field.
      set("aws:sourceaccount", principal.sourceArn?.split(":")[4] || undefined);
      break;
  }
  set("aws:principalisawsservice", String(principal.type === "service"));

  for (const [name, value] of request.query) {
    if (name === "prefix") set("s3:prefix", value);
    if (name === "delimiter") set("s3:delimiter", value);
    if (name === "max-keys") set("s3:max-keys", value);
  }
  return context;
}

/** Returns the ARN of a bucket or of an object in it. */
export function resourceArn(bucket: string, key?: string): string {
  return key === undefined ? `arn:aws:s3:::${bucket}` : `arn:aws:s3:::${bucket}/${key}`;
}

/**
 * The ownership registry of each S3 request. The S3 service binds it once on
 * arrival, so every authorization of that request uses it, including
 * CopyObject's source and each key of DeleteObjects.
 */
const ownershipByRequest = new WeakMap<ApiRequest, BucketOwnership>();

export function bindBucketOwnership(request: ApiRequest, owners: BucketOwnership | undefined): void {
  if (owners !== undefined) ownershipByRequest.set(request, owners);
}

/**
 * Returns whether the request's principal owns `bucket`: the account root owns
 * every bucket, and a user owns the buckets it created. A request with no
 * bound registry gives users no bucket.
 */
export function ownsBucket(request: ApiRequest, bucket: BucketRecord | undefined): boolean {
  const principal = request.principal;
  if (principal.type === "root") return true;
  if (principal.type !== "user" || bucket === undefined) return false;
  return ownershipByRequest.get(request)?.ownerOf(bucket) === principal.userId;
}

/** Records the user that sent `request` as the owner of the bucket it just created. */
export function recordBucketOwner(request: ApiRequest, bucket: BucketRecord): void {
  if (request.principal.type !== "user") return;
  ownershipByRequest.get(request)?.recordOwner(bucket, request.principal.userId);
}

/**
 * Raises AccessDenied unless the request may run `action` on `resource`. The
 * bucket owner (the account root, or the user that created the bucket) is
 * allowed unless a statement denies it explicitly. Anyone else, other users
 * included, needs a statement that allows it and none that denies it.
 */
export function authorize(request: ApiRequest, bucket: BucketRecord | undefined, action: string, resource: string): void {
  const denial = denialOf(request, bucket, action, resource, true);
  if (denial !== undefined) throw accessDenied(request, denial);
}

/**
 * Returns S3's AccessDenied, whose message is only "Access Denied". The
 * edge signs as the CloudFront service principal with a key that only it
 * has, so only the edge also receives `reason`, which it logs with the
 * denied distribution.
 */
export function accessDenied(request: ApiRequest, reason: string): ApiError {
  const headers: Record<string, string> =
    request.principal.type === "service" ? { "x-amz-error-detail": asHeaderValue(reason) } : {};
  return new ApiError("AccessDenied", 403, "Access Denied", { headers });
}

/** Percent-encodes what a header value may not carry as is, such as a key's non-ASCII characters. */
function asHeaderValue(text: string): string {
  return text.replace(/[^\x20-\x7e]/gu, (char) => encodeURIComponent(char));
}

/** Like `authorize`, but returns the decision; `log` controls whether a denial is logged. */
export function isAllowed(
  request: ApiRequest,
  bucket: BucketRecord | undefined,
  action: string,
  resource: string,
  log: boolean,
): boolean {
  return denialOf(request, bucket, action, resource, log) === undefined;
}

/** Returns why the request may not run `action` on `resource`, or undefined when it may. */
export function denialOf(
  request: ApiRequest,
  bucket: BucketRecord | undefined,
  action: string,
  resource: string,
  log: boolean,
): string | undefined {
  const principal = request.principal;
  const isOwner = ownsBucket(request, bucket);
  if (isOwner && POLICY_OPERATIONS.has(action)) return undefined;

  const policy = bucket === undefined ? undefined : bucketPolicyOf(bucket);
  const policyRequest = { action, resource, principal, context: conditionContext(request, Date.now()) };
  const decision = evaluatePolicy(policy, policyRequest);
  if (decision.effect === "deny") {
    const reason = `statement ${decision.statement} of the bucket policy denies ${action} on ${resource}`;
    if (log) {
      request.log.info(
        { action, resource, principalType: principal.type, statement: decision.statement, reason },
        "request denied by a bucket policy statement",
      );
    }
    return reason;
  }
  if (isOwner || decision.effect === "allow") return undefined;
  const reason = `no bucket policy statement allows ${action} on ${resource}: ${explainImplicitDeny(policy, policyRequest)}`;
  if (log) {
    request.log.info(
      { action, resource, principalType: principal.type, hasPolicy: policy !== undefined, reason },
      "no bucket policy statement allowed the request",
    );
  }
  return reason;
}
