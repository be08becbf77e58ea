import { createHash, randomUUID } from "node:crypto";
import type {
  CacheBehavior,
  CachePolicyConfig,
  DefaultCacheBehavior,
  DistributionConfig,
  OriginRequestPolicyConfig,
  ResponseHeadersPolicyConfig,
} from "@aws-sdk/client-cloudfront";
import { checkIfMatch, newEtag, pageSize, type ControlContext } from "./context.js";
import { cloudFrontError, controlErrors } from "./errors.js";
import {
  MANAGED_CACHE_POLICIES,
  MANAGED_ORIGIN_REQUEST_POLICIES,
  MANAGED_RESPONSE_HEADERS_POLICIES,
} from "./managed-policies.js";
import {
  validateCachePolicyConfig,
  validateOriginRequestPolicyConfig,
  validateResponseHeadersPolicyConfig,
} from "./policy-validation.js";
import type { PolicyKind, PolicyRecord } from "./store.js";

/** The settings that differ between cache, origin request and response headers policies. */
interface PolicyKindSpec<Config> {
  kind: PolicyKind;
  /** The AWS name of the resource, such as `CachePolicy`. */
  resource: string;
  /** The cache behavior member that names a policy of this kind. */
  behaviorField: "CachePolicyId" | "OriginRequestPolicyId" | "ResponseHeadersPolicyId";
  managed: Readonly<Record<string, Config>>;
  validate(config: Config): Config;
}

export const CACHE_POLICY_KIND: PolicyKindSpec<CachePolicyConfig> = {
  kind: "cache",
  resource: "CachePolicy",
  behaviorField: "CachePolicyId",
  managed: MANAGED_CACHE_POLICIES,
  validate: validateCachePolicyConfig,
};

export const ORIGIN_REQUEST_POLICY_KIND: PolicyKindSpec<OriginRequestPolicyConfig> = {
  kind: "origin-request",
  resource: "OriginRequestPolicy",
  behaviorField: "OriginRequestPolicyId",
  managed: MANAGED_ORIGIN_REQUEST_POLICIES,
  validate: validateOriginRequestPolicyConfig,
};

export const RESPONSE_HEADERS_POLICY_KIND: PolicyKindSpec<ResponseHeadersPolicyConfig> = {
  kind: "response-headers",
  resource: "ResponseHeadersPolicy",
  behaviorField: "ResponseHeadersPolicyId",
  managed: MANAGED_RESPONSE_HEADERS_POLICIES,
  validate: validateResponseHeadersPolicyConfig,
};

/** Managed policies never change here, so each has a fixed ETag (a digest of its id) and a fixed LastModifiedTime. */
const MANAGED_LAST_MODIFIED_MS = Date.UTC(2020, 6, 22);
function managedEtag(id: string): string {
  return "E" + createHash("sha256").update(id).digest("hex").slice(0, 13).toUpperCase();
}

/** Returns every cache behavior of a config, the default one first. */
export function behaviorsOf(config: DistributionConfig): Array<CacheBehavior | DefaultCacheBehavior> {
  const behaviors: Array<CacheBehavior | DefaultCacheBehavior> = [];
  if (config.DefaultCacheBehavior) behaviors.push(config.DefaultCacheBehavior);
  behaviors.push(...(config.CacheBehaviors?.Items ?? []));
  return behaviors;
}

/** A policy as the API returns it: `{ Id, LastModifiedTime, <Resource>Config }`. */
export type PolicyResource = Record<string, unknown>;

/**
 * Cache, origin request or response headers policies: AWS-managed ones,
 * read-only, and customer ones stored in SQLite. Updating a policy
 * republishes every distribution whose behaviors name it.
 */
export class PolicyService<Config extends { Name?: string | undefined }> {
  constructor(
    private readonly context: ControlContext,
    private readonly spec: PolicyKindSpec<Config>,
    /** Republishes the distributions that name a changed policy. */
    private readonly republish: (kind: PolicyKind, policyId: string) => Promise<void>,
  ) {}

  /** Returns a policy's config, managed or stored, or undefined. */
  lookup(id: string): Config | undefined {
    const managed = this.spec.managed[id];
    if (managed) return managed;
    return this.context.store.getPolicy(this.spec.kind, id)?.config as Config | undefined;
  }

  create(input: Config): { policy: PolicyResource; etag: string } {
    const { store, log } = this.context;
    const config = this.spec.validate(input);
    const record = store.transaction(() => {
      const name = config.Name ?? "";
      if (store.findPolicyIdByName(this.spec.kind, name) !== undefined || this.managedIdByName(name)) {
        throw cloudFrontError(`${this.spec.resource}AlreadyExists`, `A ${this.spec.resource} named '${name}' already exists.`);
      }
      const created: PolicyRecord = { kind: this.spec.kind, id: randomUUID(), config, etag: newEtag(), lastModifiedMs: Date.now() };
      store.putPolicy(created);
      return created;
    });
    log.info({ policyKind: this.spec.kind, policyId: record.id }, "policy created");
    return { policy: this.toResource(record), etag: record.etag };
  }

  get(id: string): { policy: PolicyResource; etag: string } {
    const record = this.require(id);
    return { policy: this.toResource(record), etag: record.etag };
  }

  async update(id: string, input: Config, ifMatch: string | undefined): Promise<{ policy: PolicyResource; etag: string }> {
    const { store, log } = this.context;
    if (this.spec.managed[id]) throw this.managedIsReadOnly(id);
    const config = this.spec.validate(input);
    const record = store.transaction(() => {
      const current = this.requireStored(id);
      checkIfMatch(ifMatch, current.etag);
      const name = config.Name ?? "";
      const owner = store.findPolicyIdByName(this.spec.kind, name);
      if ((owner !== undefined && owner !== id) || this.managedIdByName(name)) {
        throw cloudFrontError(`${this.spec.resource}AlreadyExists`, `A ${this.spec.resource} named '${name}' already exists.`);
      }
      const updated: PolicyRecord = { ...current, config, etag: newEtag(), lastModifiedMs: Date.now() };
      store.putPolicy(updated);
      return updated;
    });
    log.info({ policyKind: this.spec.kind, policyId: id }, "policy updated");
    await this.republish(this.spec.kind, id);
    return { policy: this.toResource(record), etag: record.etag };
  }

  delete(id: string, ifMatch: string | undefined): void {
    const { store, log } = this.context;
    if (this.spec.managed[id]) throw this.managedIsReadOnly(id);
    store.transaction(() => {
      const current = this.requireStored(id);
      checkIfMatch(ifMatch, current.etag);
      const users = this.distributionsUsing(id);
      if (users.length > 0) {
        throw cloudFrontError(
          `${this.spec.resource}InUse`,
          `${this.spec.resource} ${id} is used by distribution ${users.slice(0, 5).join(", ")}; detach it from every cache behavior first.`,
        );
      }
      store.deletePolicy(this.spec.kind, id);
    });
    log.info({ policyKind: this.spec.kind, policyId: id }, "policy deleted");
  }

  /** Lists managed then custom policies, as ListCachePolicies and its siblings page them. */
  list(type: string | undefined, marker: string | undefined, maxItems: number | undefined) {
    if (type !== undefined && type !== "managed" && type !== "custom") {
      throw controlErrors.invalidArgument(`Type '${type}' is not valid; use managed or custom.`);
    }
    const limit = pageSize(maxItems);
    const entries: Array<{ type: "managed" | "custom"; record: PolicyRecord }> = [];
    if (type !== "custom") {
      for (const id of Object.keys(this.spec.managed)) entries.push({ type: "managed", record: this.managedRecord(id)! });
    }
    if (type !== "managed") {
      for (const record of this.context.store.listPolicies(this.spec.kind)) entries.push({ type: "custom", record });
    }
    let start = 0;
    if (marker) {
      const index = entries.findIndex((entry) => entry.record.id === marker);
      if (index < 0) throw controlErrors.invalidArgument(`Marker '${marker}' is not a ${this.spec.resource} id; pass the NextMarker of the previous page.`);
      start = index + 1;
    }
    const page = entries.slice(start, start + limit);
    const isTruncated = start + limit < entries.length;
    return {
      ...(isTruncated ? { NextMarker: page[page.length - 1]!.record.id } : {}),
      MaxItems: limit,
      Quantity: page.length,
      Items: page.map((entry) => ({ Type: entry.type, [this.spec.resource]: this.toResource(entry.record) })),
    };
  }

  /** Lists the ids of distributions whose behaviors name this policy (ListDistributionsBy<Resource>Id). */
  distributionIdList(policyId: string, marker: string | undefined, maxItems: number | undefined) {
    this.require(policyId);
    const limit = pageSize(maxItems);
    const ids = this.distributionsUsing(policyId);
    let start = 0;
    if (marker) {
      const index = ids.indexOf(marker);
      if (index < 0) throw controlErrors.invalidArgument(`Marker '${marker}' is not a distribution that uses ${policyId}.`);
      start = index + 1;
    }
    const page = ids.slice(start, start + limit);
    const isTruncated = start + limit < ids.length;
    return {
      Marker: marker ?? "",
      ...(isTruncated ? { NextMarker: page[page.length - 1] } : {}),
      MaxItems: limit,
      IsTruncated: isTruncated,
      Quantity: page.length,
      Items: page,
    };
  }

  /** Ids of the distributions, in creation order, with a behavior that names `policyId`. */
  distributionsUsing(policyId: string): string[] {
    return this.context.store
      .allDistributions()
      .filter((record) => behaviorsOf(record.config).some((behavior) => behavior[this.spec.behaviorField] === policyId))
      .map((record) => record.id);
  }

  private managedIdByName(name: string): string | undefined {
    return Object.keys(this.spec.managed).find((id) => this.spec.managed[id]!.Name === name);
  }

  private managedRecord(id: string): PolicyRecord | undefined {
    const config = this.spec.managed[id];
    if (!config) return undefined;
    return { kind: this.spec.kind, id, config, etag: managedEtag(id), lastModifiedMs: MANAGED_LAST_MODIFIED_MS };
  }

  private require(id: string): PolicyRecord {
    return this.managedRecord(id) ?? this.requireStored(id);
  }

  private requireStored(id: string): PolicyRecord {
    const record = this.context.store.getPolicy(this.spec.kind, id);
    if (!record) throw cloudFrontError(`NoSuch${this.spec.resource}`, `The ${this.spec.resource} ${id} does not exist.`);
    return record;
  }

  private managedIsReadOnly(id: string) {
    return cloudFrontError("AccessDenied", `${this.spec.resource} ${id} is managed by AWS and cannot be changed or deleted.`);
  }

  private toResource(record: PolicyRecord): PolicyResource {
    return {
      Id: record.id,
      LastModifiedTime: new Date(record.lastModifiedMs),
      [`${this.spec.resource}Config`]: record.config,
    };
  }
}
